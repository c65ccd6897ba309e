"""The commands the docs name work as written (the rest of the docs check is tests/test_docs.py).

Every ``./scripts/<cmd>`` named in README.md or docs/ answers ``--help`` with exit 0 and a usage
(``./scripts/run`` and ``./scripts/test`` included: both print theirs and start nothing), a word
after a command with sub-commands (``./scripts/admin verify``) is one of them, and every ``--flag``
named after it appears in its help. Each script names the module it runs, and that module exists.
Commands that documents describe as future are listed below with the reason.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.test_docs import DOCS, ROOT, SPAN, lines_of, relative

ALWAYS_CHECKED = ("run", "test")
"""The two commands of the README's first section: their --help is checked even if no document named
them any more."""

FUTURE = {
    "./scripts/admin move-tenant": "future: ADR 0109 'What it would take', not built",
    "./scripts/deploy --cell": "future: ADR 0109 'A stack set per cell', not built",
}
"""Commands that documents describe as not built yet."""

COMMAND = re.compile(r"(?<![\w/.])\./scripts/([\w-]+)((?:[ \t]+(?!\./scripts/)[^\s`|;&]+)*)")


def command_mentions() -> list[tuple[str, int, str, list[str]]]:
    """(document, line, command, the words after it) for every ``./scripts/<cmd>`` named."""
    found = []
    for doc in DOCS:
        for number, line, _, fenced in lines_of(doc):
            # Words after a command count inside inline code and fenced blocks; in prose only the name.
            segments = [line] if fenced else [m.group(1) for m in SPAN.finditer(line)]
            prose = "" if fenced else SPAN.sub(" ", line)
            for segment, with_words in [*((s, True) for s in segments), (prose, False)]:
                for match in COMMAND.finditer(segment):
                    words = match.group(2).split() if with_words else []
                    found.append((f"{relative(doc)}:{number}", number, match.group(1), words))
    return found


def run_help(argv: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [f"./scripts/{argv[0]}", *argv[1:], "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def helps() -> dict[tuple[str, ...], subprocess.CompletedProcess[str]]:
    """``--help`` of every command and sub-command the docs name, run once each, side by side."""
    wanted: set[tuple[str, ...]] = {(command,) for command in ALWAYS_CHECKED}
    for _, _, command, _words in command_mentions():
        if not (ROOT / "scripts" / command).exists():
            continue  # a missing script is reported by the test
        wanted.add((command,))
    with ThreadPoolExecutor(max_workers=2) as pool:
        helps = dict(zip(sorted(wanted), pool.map(run_help, sorted(wanted)), strict=True))
    # A word after a command with sub-commands (argparse shows them as {a,b,...}) is a sub-command.
    subs = {
        (command, words[0])
        for _, _, command, words in command_mentions()
        if (command,) in helps
        and words
        and re.fullmatch(r"[a-z][a-z-]+", words[0])
        and re.search(r"\{[a-z,-]+\}", helps[(command,)].stdout)
        and f"./scripts/{command} {words[0]}" not in FUTURE
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        helps.update(zip(sorted(subs), pool.map(run_help, sorted(subs)), strict=True))
    return helps


def test_commands_named_in_docs_answer_help_and_know_their_flags(helps: dict) -> None:
    problems = []
    for where, _, command, words in command_mentions():
        if not (ROOT / "scripts" / command).exists():
            problems.append(f"{where}: ./scripts/{command} does not exist")
            continue
        argv: tuple[str, ...] = (command,)
        if words and (command, words[0]) in helps:
            argv = (command, words[0])
        if f"./scripts/{command} {words[0] if words else ''}".strip() in FUTURE:
            continue
        result = helps[argv]
        shown = " ".join(("./scripts/" + argv[0], *argv[1:]))
        if result.returncode != 0:
            problems.append(f"{where}: `{shown} --help` exits {result.returncode}: {result.stderr.strip()[-300:]}")
            continue
        for flag in re.findall(r"--[a-z][a-z-]*", " ".join(words)):
            if f"{shown} {flag}" not in FUTURE and not re.search(rf"{flag}\b", result.stdout):
                problems.append(f"{where}: `{shown}` has no {flag} (not in its --help)")
    assert not problems, "\n".join(["commands named in the docs do not work as written:", *problems])


def test_run_and_test_print_their_usage_and_start_nothing(helps: dict) -> None:
    """``--help`` of ``./scripts/run`` and ``./scripts/test`` is a usage on stdout, exit 0, before any
    database is touched; ``./scripts/run`` refuses any other argument with its usage, exit 2."""
    for command in ALWAYS_CHECKED:
        result = helps[(command,)]
        assert result.returncode == 0 and result.stdout.startswith(f"usage: ./scripts/{command}"), result
        assert "[local]" not in result.stderr, f"./scripts/{command} --help started something: {result.stderr}"
    assert "--no-lint" in helps[("test",)].stdout and "lint-imports" in helps[("test",)].stdout
    run = subprocess.run(["./scripts/run", "--verbose"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.startswith("usage: ./scripts/run"), run.stderr


def test_scripts_name_the_modules_they_run() -> None:
    """Each ``scripts/<cmd>`` says where its logic lives and runs a module: both exist."""
    problems = []
    for script in sorted((ROOT / "scripts").glob("[!_]*")):
        text = script.read_text()
        for path in re.findall(r"\b((?:cli|stacks|shared|services)/[\w/]+\.py)\b", text):
            if not (ROOT / path).exists():
                problems.append(f"scripts/{script.name} names {path}, which does not exist")
        for module in re.findall(r"\s-m ([\w.]+)", text):
            base = ROOT.joinpath(*module.split("."))
            if not (base.with_suffix(".py").exists() or (base / "__main__.py").exists()):
                problems.append(f"scripts/{script.name} runs -m {module}, which does not exist")
    assert not problems, "\n".join(problems)


def test_future_commands_are_still_described_as_future() -> None:
    mentioned = {f"./scripts/{command} {word}" for _, _, command, words in command_mentions() for word in words}
    stale = [future for future in FUTURE if future not in mentioned]
    assert not stale, f"FUTURE entries no document names any more (built, or dropped): {stale}"
