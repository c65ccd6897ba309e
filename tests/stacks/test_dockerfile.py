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


def test_image_ships_the_rds_ca_bundle_where_the_ledger_dsn_points() -> None:
    # Issue 13 item 2: sslmode=verify-full needs the RDS CA bundle inside the image.
    text = (ROOT / "Dockerfile").read_text()
    assert "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem" in text
    copies = re.findall(r"^COPY --from=rds-ca\b.*\s(\S+)$", text, re.M)
    assert copies == [PLATFORM.rds_ca_bundle_path]
    assert text.index("AS rds-ca") < text.index("AS runtime") < text.index("COPY --from=rds-ca")
