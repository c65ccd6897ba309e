"""The docs stay true to the code: what README.md and docs/ name exists and works.

Checked in every ``*.md`` of ``docs/`` and in README.md:

- **paths** in inline code (``services/ledger/store.py``, ``tests/x.py::test_y``, ``migrations/*.sql``)
  and relative Markdown links exist; a bare file name (``routes.py``) exists in the service a
  section of docs/services.md is about, or anywhere in the repository elsewhere;
- **dotted names** (``services.ledger.verify.main``, ``python -m services.gateway``, and in a
  service's section ``schemas.MAX_AMOUNT``) name a module that exists and a name it defines;
- **ADR numbers** (``ADR 0025``) name a file of docs/adr/;
- **settings** (inline code that looks like an environment variable, ``NAME`` or ``NAME=value``
  or ``PREFIX_*``) are read by the settings loader or one of the other readers its docstring
  names, or are an upper-case constant the code defines or an AWS identifier stacks/ uses as a
  string, or are listed in ``NOT_SETTINGS`` below with the reason; a default stated as
  ``NAME`` (8000) is the settings loader's;
- **commands**: in tests/test_docs_commands.py.

Names that are about the future or about AWS only are whitelisted explicitly, with the reason; a
failure names the document, the line and what to do. Two claims in code are kept true too:
shared/settings/'s docstring lists exactly the modules of shared/ and services/ that read the
environment besides it, and every package of services/ is one of the modules import-linter keeps
independent (the docs say no service imports another; the contract is what makes that true).
"""

from __future__ import annotations

import ast
import os
import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SKIP_DIRS = {".git", ".venv", ".local", "build", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}

NOT_REPO_PATHS = {
    "../shared/spec/": "the starting spec outside this repository (issue 15 item 2 brings the API reference in)",
    "public-api.md": "the starting spec outside this repository (issue 15 item 2 brings the API reference in)",
    ".local/": "created by ./scripts/run and ./scripts/test at run time, never committed",
    "build/": "written by ./scripts/synth and the benchmarks, never committed",
}
"""Path prefixes that are not expected in a clone, with the reason."""

NOT_SETTINGS = {
    **dict.fromkeys(["OTEL_BSP_*", "OTEL_BSP_SCHEDULE_DELAY"], "read by the OpenTelemetry SDK, not by our code"),
    "UPDATE_SNAPSHOTS": "read by tests/stacks/test_snapshot.py, not by the services",
    "TEST_WORKERS": "read by cli/test.py (./scripts/test), not by the services",
    **dict.fromkeys(
        ["ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED"],
        "CloudFormation stack statuses the runbooks name (AWS only)",
    ),
    "EX_CONFIG": "the sysexits.h name of exit status 78",
}
"""Upper-case names in inline code that are not our settings, and why."""

SECTION_HOMES = {
    ("docs/services.md", "Ledger service"): "services/ledger",
    ("docs/services.md", "Gateway"): "services/gateway",
    ("docs/services.md", "Session service"): "services/session",
}
"""Level-2 sections whose bare file names (``routes.py``) are files of one service."""

SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+(?:_\*)?$|^[A-Z][A-Z0-9]*_\*$")
ENV_ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=\S*$")
DEFAULT = re.compile(r"`([A-Z][A-Z0-9_]+)` \((\d+(?:\.\d+)?)(?=[),])")
ADR = re.compile(r"\bADRs? ((?:\d{4}(?:, | and | or |/))*\d{4})")
DOTTED = re.compile(r"^((?:shared|services|stacks|cli|tests)(?:\.\w+)+)(?:\(\))?$")
CODE_DIRS = ("shared", "services", "stacks", "cli", "tests")


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def lines_of(doc: Path) -> Iterator[tuple[int, str, str, bool]]:
    """(line number, text, level-2 section title, inside a fenced block) of each line."""
    section, fenced = "", False
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced and line.startswith("## "):
            section = line[3:].strip()
        yield number, line, section, fenced


def spans(doc: Path) -> Iterator[tuple[int, str, str]]:
    """(line, inline code span, section) outside fenced blocks."""
    for number, line, section, fenced in lines_of(doc):
        if not fenced:
            for match in SPAN.finditer(line):
                yield number, match.group(1), section


@cache
def repo_files() -> frozenset[str]:
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        found.update(relative(Path(dirpath) / name) for name in filenames)
    return frozenset(found)


@cache
def defined_upper_names() -> frozenset[str]:
    """Upper-case names assigned anywhere in the code (constants, enum members, class attributes)."""
    names: set[str] = set()
    assignment = re.compile(r"^\s*([A-Z][A-Z0-9_]*)(?::[^=\n]*?)?\s=\s", re.M)
    for path in repo_files():
        if path.endswith(".py") and path.startswith(CODE_DIRS):
            names.update(assignment.findall((ROOT / path).read_text()))
    return frozenset(names)


@cache
def infrastructure_strings() -> frozenset[str]:
    """Upper-case string literals of stacks/ and cli/deploy.py: the AWS identifiers the code uses
    (Config managed rules, stack statuses, architectures), which docs name as AWS spells them."""
    paths = [path for path in repo_files() if path.startswith("stacks/") and path.endswith(".py")]
    found: set[str] = set()
    for path in [*paths, "cli/deploy.py"]:
        found.update(re.findall(r"[\"']([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)[\"']", (ROOT / path).read_text()))
    return frozenset(found)


def defines(module: Path, name: str) -> bool:
    source = module.read_text()
    return bool(re.search(rf"^\s*(?:async def|def|class)\s+{name}\b|^\s*{name}\s*(?::[^=\n]*)?=", source, re.M))


# -- which modules read the environment, and which names -------------------------------------------


def _reads_environment(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"} and getattr(node.value, "id", "") == "os"
        for node in ast.walk(tree)
    )


def _constants(tree: ast.Module) -> dict[str, str]:
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def environment_names(path: Path) -> set[str]:
    """Variables a module reads: first arguments of ``setting`` (the settings' declarations),
    ``os.environ.get``, ``.get`` on an environment mapping and ``os.getenv``, as literals, module
    constants or f-string suffixes."""
    tree = ast.parse(path.read_text())
    constants = _constants(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute | ast.Name)):
            continue
        func = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
        if func not in {"setting", "get", "getenv"}:
            continue
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            names.add(arg.value)
        elif isinstance(arg, ast.Name) and arg.id in constants:
            names.add(constants[arg.id])
        elif isinstance(arg, ast.JoinedStr) and isinstance(arg.values[-1], ast.Constant):
            names.add("*" + str(arg.values[-1].value))  # f"{name}_PREVIOUS": any name with that suffix
    return {name for name in names if re.fullmatch(r"\*?[A-Z][A-Z0-9_]*", name)}


SETTINGS = sorted((ROOT / "shared" / "settings").glob("*.py"))
"""The settings loader's modules: the groups declare each variable with ``setting(NAME, default)``."""


def other_readers() -> set[str]:
    """The modules shared/settings/'s docstring names as reading the environment too."""
    docstring = ast.get_docstring(ast.parse((ROOT / "shared" / "settings" / "__init__.py").read_text())) or ""
    return set(re.findall(r"``((?:shared|services)/[\w/]+\.py)``", docstring))


@cache
def known_settings() -> frozenset[str]:
    """Variables the settings loader and the readers its docstring names read, and the Dockerfile's
    build arguments and environment."""
    names = {name for module in SETTINGS for name in environment_names(module)}
    names |= set(re.findall(r"^(?:ARG|ENV)\s+([A-Z][A-Z0-9_]*)", (ROOT / "Dockerfile").read_text(), re.M))
    for module in other_readers():
        names |= environment_names(ROOT / module)
    return frozenset(names)


@cache
def numeric_defaults() -> dict[str, float]:
    """``NAME`` -> the default the settings loader gives it, for literal numeric defaults."""
    defaults = {}
    nodes = [node for module in SETTINGS for node in ast.walk(ast.parse(module.read_text()))]
    for node in nodes:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setting":
            name, default = node.args[0], node.args[1] if len(node.args) > 1 else None
            number = default.value if isinstance(default, ast.Constant) else None
            if isinstance(name, ast.Constant) and isinstance(number, int | float) and not isinstance(number, bool):
                defaults[str(name.value)] = float(number)
    return defaults


def is_known_setting(name: str) -> bool:
    known = known_settings()
    if name.endswith("_*"):
        return any(setting.startswith(name[:-1]) for setting in known)
    return name in known or any(s.startswith("*") and name.endswith(s[1:]) and name != s[1:] for s in known)


# -- the checks ------------------------------------------------------------------------------------


def path_problem(doc: Path, token: str, section: str) -> str | None:
    """Why ``token`` (a path-like word of inline code) is not true, or None."""
    token = token.rstrip(".,;:)")
    token, _, test_name = token.partition("::")
    token = re.sub(r":\d+$", "", token)
    if any(token.startswith(prefix) for prefix in NOT_REPO_PATHS) or "://" in token or token.startswith(("$", "/")):
        return None
    if token.startswith("../"):
        return f"`{token}` points outside the repository"
    pattern = re.sub(r"<[^>]*>", "*", token).rstrip("/")
    if "/" in pattern:
        if pattern.split("/", 1)[0] not in os.listdir(ROOT):
            return None  # not a repository path (a media type, a URL path, an AWS name)
        matches = [pattern] if (ROOT / pattern).exists() else [relative(p) for p in ROOT.glob(pattern)]
        if not matches:
            return f"`{token}` does not exist"
        if test_name and not defines(ROOT / matches[0], test_name.split("[")[0]):
            return f"`{token}` defines no `{test_name}`"
        return None
    if not re.fullmatch(r"[\w.-]+\.(?:py|md|sql|json|toml|sh|lock|ya?ml)", pattern):
        return None
    home = SECTION_HOMES.get((relative(doc), section))
    if home and pattern.endswith(".py"):
        return None if (ROOT / home / pattern).exists() else f"`{token}` is not a file of {home}/"
    if not any(Path(p).match(pattern) for p in repo_files()):
        return f"no file is named `{token}`"
    return None


def dotted_problem(doc: Path, token: str, section: str) -> str | None:
    """Why a dotted name (``services.ledger.verify.main``; ``schemas.MAX_AMOUNT`` in a service's
    section) does not resolve to a module and a name it defines, or None."""
    match = DOTTED.match(token)
    home = SECTION_HOMES.get((relative(doc), section))
    if match:
        parts = match.group(1).split(".")
    elif home and not token.endswith(".py") and (local := re.fullmatch(r"(\w+)\.(\w+)(?:\.\w+)*(?:\(\))?", token)):
        if not (ROOT / home / f"{local.group(1)}.py").exists():
            return None  # an attribute access, not one of this service's modules
        parts = [*home.split("/"), *token.removesuffix("()").split(".")]
    else:
        return None
    for end in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:end])
        module = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        if module.exists():
            rest = parts[end:]
            if rest and not defines(module, rest[0]):
                return f"`{token}`: {relative(module)} defines no `{rest[0]}`"
            return None
    return f"`{token}` names no module"


def setting_problem(token: str) -> str | None:
    assignment = ENV_ASSIGNMENT.match(token)
    name = assignment.group(1) if assignment else token
    if not (assignment or ENV_NAME.match(name)):
        return None
    if is_known_setting(name) or name in NOT_SETTINGS or name in defined_upper_names() | infrastructure_strings():
        return None
    return (
        f"`{name}` is neither read by shared/settings/ (nor by a reader its docstring names) nor a "
        "constant of the code; fix the document, or add it to NOT_SETTINGS in tests/test_docs.py with the reason"
    )


def document_problems(doc: Path) -> list[str]:
    problems = []
    for number, span, section in spans(doc):
        for token in span.split():
            for check in (path_problem, dotted_problem):
                if problem := check(doc, token, section):
                    problems.append(f"{relative(doc)}:{number}: {problem}")
        # A span of one word may be a setting's name; in longer spans (commands) only NAME=value
        # words are, the rest being placeholders such as TENANT_ID.
        words = span.split()
        assignments = [w for w in words if ENV_ASSIGNMENT.match(w) and not re.search(r"=[A-Z_]+$", w)]
        for token in words if len(words) == 1 else assignments:  # KEY=VALUE is a placeholder
            if problem := setting_problem(token.strip(",;()")):
                problems.append(f"{relative(doc)}:{number}: {problem}")
    for number, line, _, fenced in lines_of(doc):
        # "`NAME` (8000)" states a default: it must be the loader's.
        for name, value in [] if fenced else DEFAULT.findall(line):
            if name in numeric_defaults() and float(value) != numeric_defaults()[name]:
                problems.append(
                    f"{relative(doc)}:{number}: `{name}` ({value}), but shared/settings/'s default is "
                    f"{numeric_defaults()[name]:g}"
                )
        # NAME=value words that start a command line of a fenced block (shell variables are not).
        leading = re.match(r"\s*((?:[A-Z][A-Z0-9_]*=[^\s$()]*\s+)+)(?:\./scripts/|\.venv/|uv |python)", line)
        leading = leading if fenced else None
        for token in leading.group(1).split() if leading else []:
            if problem := setting_problem(token):
                problems.append(f"{relative(doc)}:{number}: {problem}")
        for match in ADR.finditer(line):
            for adr in re.findall(r"\d{4}", match.group(1)):
                if not list((ROOT / "docs" / "adr").glob(f"{adr}-*.md")):
                    problems.append(f"{relative(doc)}:{number}: ADR {adr} has no file in docs/adr/")
        links = [] if fenced else re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", line)
        for target in links:
            if ":" not in target and not (doc.parent / target).exists():
                problems.append(f"{relative(doc)}:{number}: link target `{target}` does not exist")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=relative)
def test_paths_settings_and_names_in_docs_exist(doc: Path) -> None:
    problems = document_problems(doc)
    assert not problems, "\n".join(["the document names things that do not exist:", *problems])


# -- the settings loader's docstring ---------------------------------------------------------------


def test_settings_docstring_names_every_other_reader_of_the_environment() -> None:
    readers = {
        relative(path)
        for top in ("shared", "services")
        for path in (ROOT / top).rglob("*.py")
        if _reads_environment(ast.parse(path.read_text()))
    } - {relative(module) for module in SETTINGS}
    assert readers == other_readers(), (
        f"modules reading os.environ: {sorted(readers)}; shared/settings/'s docstring names "
        f"{sorted(other_readers())}. Read the variable through Settings, or name the module there and why"
    )


def test_every_service_is_kept_independent_by_import_linter() -> None:
    """docs/services.md and ADR 0004 say no service imports another; import-linter (run by
    ./scripts/test) checks it only for the modules its independence contract lists, so a new package
    of services/ must be listed there, and the contracts the docs describe must still be there."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = {contract["id"]: contract for contract in config["contracts"]}
    services = {f"services.{p.name}" for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists()}
    assert set(contracts["services-independent"]["modules"]) == services, "list every service in the contract"
    assert contracts["services-independent"]["type"] == "independence"
    assert set(contracts["shared-is-the-bottom"]["forbidden_modules"]) == {"services", "stacks", "cli"}
    assert "services" in contracts["stacks-no-services"]["forbidden_modules"]


def test_the_exceptions_above_are_still_needed() -> None:
    """An exception no document needs any more is removed, so the lists stay short and true."""
    text = "\n".join(doc.read_text() for doc in DOCS)
    headings = {
        (relative(doc), line[3:].strip())
        for doc in DOCS
        for _, line, _, fenced in lines_of(doc)
        if not fenced and line.startswith("## ")
    }
    stale = [f"SECTION_HOMES: no section {key}" for key in SECTION_HOMES if key not in headings]
    stale += [f"NOT_SETTINGS: no document names `{name}`" for name in NOT_SETTINGS if name not in text]
    stale += [f"NOT_REPO_PATHS: no document names `{path}`" for path in NOT_REPO_PATHS if path not in text]
    assert not stale, "\n".join(stale)
