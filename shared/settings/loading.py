"""How a setting is declared, read from the environment and checked.

A setting is a field of one of the frozen group dataclasses, declared with :func:`setting`: the
environment variable it is read from, its local default, optionally another default in AWS, and
the rule its value must keep. :func:`read_group` is the only code that reads those variables;
:func:`field_problems` applies the per-field rules (the rules that span fields are each group's
``problems()``). Problems are collected, never raised one by one, so a bad configuration is
reported whole, each line naming the variable and the rule.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

Check = Callable[[Any], str | None]
"""A rule on one value: None when it holds, else what the value must be ("must be positive")."""

Parse = Callable[[str], Any]
"""Turns a variable's non-empty text into the value; raises ValueError saying what it must be."""

_NO_AWS_DEFAULT = object()

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """The environment does not make valid settings; ``problems`` has one line per broken rule."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__("\n  ".join([f"invalid settings ({count}):", *problems]))


def setting(
    env: str,
    default: Any,
    *,
    aws: Any = _NO_AWS_DEFAULT,
    check: Check | None = None,
    parse: Parse | None = None,
    secret: bool = False,
) -> Any:
    """A field read from the variable ``env``: ``default`` when it is unset or empty (``aws`` instead
    when running in AWS, if given), converted by the field's type or ``parse``, kept to ``check``.
    A ``secret`` value (a credential, or a URL that may carry one) is left out of reprs and messages."""
    metadata = {"env": env, "aws": aws, "check": check, "parse": parse, "secret": secret}
    return dataclasses.field(default=default, repr=not secret, metadata=metadata)


# -- reading ---------------------------------------------------------------------------------------


def _parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("must be true or false (also 1/0, yes/no, on/off)")


def _parse_int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("must be an integer") from None


def _parse_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number") from None
    if not math.isfinite(value):  # float() takes "inf" and "nan", which no rule below would refuse
        raise ValueError("must be a finite number")
    return value


_PARSERS: dict[Any, Parse] = {bool: _parse_bool, int: _parse_int, float: _parse_float, str: str}

G = TypeVar("G")


def read_group(cls: type[G], environ: Mapping[str, str], *, in_aws: bool, problems: list[str]) -> G:
    """One group of settings from ``environ``. A value that does not parse is reported in
    ``problems`` and the default is kept in its place, so every other problem is found too."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        env = f.metadata.get("env")
        if env is None:
            continue
        aws_default = f.metadata["aws"]
        default = aws_default if in_aws and aws_default is not _NO_AWS_DEFAULT else f.default
        raw = environ.get(env)
        optional = type(None) in typing.get_args(hints[f.name])
        if raw is None or (raw == "" and not optional):
            values[f.name] = default
            continue
        if raw == "":
            values[f.name] = None  # an optional setting set but empty: explicitly none
            continue
        kind = typing.get_args(hints[f.name])[0] if optional else hints[f.name]
        parse = f.metadata["parse"] or _PARSERS[kind]
        try:
            values[f.name] = parse(raw)
        except ValueError as exc:
            problems.append(f"{env}{'' if f.metadata['secret'] else f'={raw!r}'}: {exc}")
    return cls(**values)


def field_problems(group: object) -> Iterator[str]:
    """The per-field rules a group's values break, as ``NAME=value: rule`` lines."""
    for f in dataclasses.fields(group):  # type: ignore[arg-type]
        check = f.metadata.get("check")
        value = getattr(group, f.name)
        if check is not None and value is not None and (rule := check(value)) is not None:
            shown = "" if f.metadata["secret"] else f"={value!r}"
            yield f"{f.metadata['env']}{shown}: {rule}"


# -- rules -----------------------------------------------------------------------------------------


def positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def non_negative(value: float) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def between(low: float, high: float, what: str = "") -> Check:
    suffix = f" ({what})" if what else ""
    return lambda value: None if low <= value <= high else f"must be between {low:g} and {high:g}{suffix}"


def at_least(low: float, why: str = "") -> Check:
    suffix = f" ({why})" if why else ""
    return lambda value: None if value >= low else f"must be at least {low:g}{suffix}"


def one_of(*choices: str) -> Check:
    """Case-insensitive, surrounding blanks ignored, as the code reading the value compares it."""
    return lambda value: None if value.strip().lower() in choices else f"must be one of {', '.join(choices)}"


def url(*schemes: str, empty: bool = False) -> Check:
    """A URL of one of ``schemes``; ``empty``: or the empty string (meaning a default URL)."""

    def check(value: str) -> str | None:
        if empty and value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme in schemes and (parts.netloc or parts.scheme == "unix"):
            return None
        return f"must be a {' or '.join(f'{s}://' for s in schemes)} URL"

    return check


PORT = between(1, 65535, "a TCP port")
RATIO = between(0, 1, "a share")
