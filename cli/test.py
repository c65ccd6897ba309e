"""``./scripts/test``: lint, type-check, check the import layers and run the whole suite against real
services.

PostgreSQL and Redis are used where they listen (``DATABASE_URL``, ``REDIS_URL``); otherwise private
instances are started from the installed binaries and stopped afterwards. Arguments are passed to
pytest; ``--no-lint`` skips ruff, mypy and import-linter (for quick local iterations only: CI runs
everything); ``--help`` alone prints the usage and starts nothing.

import-linter checks the contracts of ``[tool.importlinter]`` in pyproject.toml (ADR 0004): shared/
imports no service, stack or command; no service imports another; stacks import no service. A
forbidden import fails the run before any test starts, naming the importing line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cli.local_services import ROOT, LocalServices, say
from shared.settings import get_settings

USAGE = """usage: ./scripts/test [--no-lint] [PYTEST ARGUMENTS ...]

Runs ruff, mypy and lint-imports (the layer contracts of pyproject.toml), then pytest against
real PostgreSQL and Redis (used where DATABASE_URL and REDIS_URL listen, else started privately).

  --no-lint   skip ruff, mypy and lint-imports (quick local iterations; CI runs everything)
  --help      print this and exit
  anything else goes to pytest, e.g. ./scripts/test tests/ledger -x

TEST_WORKERS=N sets the pytest-xdist workers (default 2; 0 or 1: one process)."""


WORKERS = os.environ.get("TEST_WORKERS", "2")
"""pytest-xdist workers: most of the suite waits on processes it started (services, moto, Redis,
PostgreSQL), so two workers keep both cores busy; more only add start-up CPU on a 2-core runner."""


def phases(pytest_args: list[str]) -> list[list[str]]:
    """The pytest runs: the suite in xdist workers, then alone the tests marked ``serial``.

    ``--dist loadgroup``: tests/conftest.py puts each file in one group (its module-scoped platforms
    start once) and orders the files longest first, which ``--no-loadscope-reorder`` keeps. The
    ``serial`` files (tests/conftest.py names them) hold timing budgets of a second or so that CPU
    contention from the other worker could break, so they run after, in one process. A caller who
    chose (``-n``, ``--dist``, ``-p no:xdist``, ``-m``) gets one plain run with their arguments."""
    chosen = any(arg.startswith(("-n", "--numprocesses", "--dist", "-m")) or arg == "no:xdist" for arg in pytest_args)
    if chosen or WORKERS in ("0", "1"):
        return [pytest_args]
    xdist = ["-n", WORKERS, "--dist", "loadgroup", "--no-loadscope-reorder"]
    return [[*xdist, "-m", "not serial", *pytest_args], ["-n", "0", "-m", "serial", *pytest_args]]


def pytest_env() -> dict[str, str]:
    """The environment minus ``PYTHONDONTWRITEBYTECODE``: the suite starts a few hundred Python
    processes (services, CLIs, moto), and without cached bytecode each one compiles every module it
    imports again, three times the CPU of a cached start (about 3 s against 1 s per service)."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def main(argv: list[str]) -> int:
    if argv in (["--help"], ["-h"]):  # with other arguments, --help is pytest's (./scripts/test --help -p x)
        print(USAGE)
        return 0
    lint = "--no-lint" not in argv
    pytest_args = [arg for arg in argv if arg != "--no-lint"]
    settings = get_settings()
    services = LocalServices()
    try:
        services.ensure_postgres(settings.database.url)
        services.ensure_redis(settings.redis.url)
        if lint:
            say("ruff")
            if subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT).returncode:
                return 1
            if subprocess.run([sys.executable, "-m", "ruff", "format", "--check", "."], cwd=ROOT).returncode:
                return 1
            say("mypy")
            if subprocess.run(
                [sys.executable, "-m", "mypy", "shared", "services", "stacks", "cli"], cwd=ROOT
            ).returncode:
                return 1
            say("lint-imports")
            # The console script beside the interpreter: import-linter has no ``python -m`` entry.
            lint_imports = str(Path(sys.executable).with_name("lint-imports"))
            if subprocess.run([lint_imports, "--no-cache"], cwd=ROOT).returncode:
                return 1
        say("pytest")
        codes = [
            subprocess.run([sys.executable, "-m", "pytest", *args], cwd=ROOT, env=pytest_env()).returncode
            for args in phases(pytest_args)
        ]
        # 5 is "no test selected": a phase may select nothing (./scripts/test tests/ledger has no
        # serial test), which is a failure only when no phase ran anything.
        failed = [code for code in codes if code not in (0, 5)]
        return failed[0] if failed else (5 if all(code == 5 for code in codes) else 0)
    finally:
        services.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
