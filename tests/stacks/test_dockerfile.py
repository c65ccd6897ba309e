"""The image the task definitions run: multi-stage, locked runtime deps only, non-root with the uid the
task definitions declare. (No Docker engine runs here, so this reads the Dockerfile.)"""

from __future__ import annotations

import re
from pathlib import Path

from stacks.config import PLATFORM

ROOT = Path(__file__).resolve().parents[2]


def test_dockerfile_is_multi_stage_frozen_no_dev_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert "uv sync --frozen --no-dev" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] == PLATFORM.container_user  # the last stage runs as the task's user
    assert not users[-1].startswith("0") and users[-1] != "root"


def test_dockerignore_keeps_the_context_to_code_and_lockfile() -> None:
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("**")] == "**"
    assert {"!pyproject.toml", "!uv.lock", "!shared/**", "!services/**"} <= set(lines)
