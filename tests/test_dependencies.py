"""Every package the code imports is declared in pyproject.toml, not just present by luck.

A package that arrives only as another one's dependency can vanish with that one's next release.
So: what ``shared/`` and ``services/`` import (the image's code) is a runtime dependency; what
``tests/``, ``cli/`` and ``stacks/`` import is a runtime or a dev dependency. Imports are read with
``ast`` (lazy ones inside functions included) and mapped to distributions by the installed metadata.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL = {"shared", "services", "stacks", "cli", "tests", "__future__"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[=<>!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


def declared() -> tuple[set[str], set[str]]:
    """(runtime, dev) distribution names from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = {_name(r) for r in project["project"]["dependencies"]}
    dev = {_name(r) for r in project["dependency-groups"]["dev"]}
    return runtime, dev


def imports(top: str) -> dict[str, set[str]]:
    """Third-party top-level module -> the files of ``top`` importing it."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / top).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for module in {name.split(".")[0] for name in names} - LOCAL - set(sys.stdlib_module_names):
                found.setdefault(module, set()).add(path.relative_to(ROOT).as_posix())
    return found


def undeclared(tops: tuple[str, ...], allowed: set[str]) -> list[str]:
    distributions = packages_distributions()
    problems = []
    for top in tops:
        for module, files in sorted(imports(top).items()):
            providers = {_name(d) for d in distributions.get(module, [])}
            if not providers & allowed:
                where = ", ".join(sorted(files)[:3])
                problems.append(f"{module} (from {sorted(providers) or 'nothing installed'}), imported by {where}")
    return problems


def test_the_services_import_only_runtime_dependencies() -> None:
    runtime, _ = declared()
    problems = undeclared(("shared", "services"), runtime)
    assert not problems, "add these to [project] dependencies with `uv add`:\n" + "\n".join(problems)


def test_tests_and_tools_import_only_declared_packages() -> None:
    runtime, dev = declared()
    problems = undeclared(("tests", "cli", "stacks"), runtime | dev)
    assert not problems, "add these to the dev group with `uv add --dev`:\n" + "\n".join(problems)
