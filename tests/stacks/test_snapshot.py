"""Deterministic output: the synthesized JSON is byte-identical across runs and interpreters and
equals the committed snapshots in tests/stacks/snapshots/.

An intended template change updates the snapshots in the same commit:

    UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/stacks/test_snapshot.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.synth import synthesize

SNAPSHOTS = Path(__file__).parent / "snapshots"
ROOT = Path(__file__).resolve().parents[2]


def test_synthesis_is_byte_identical_across_runs_and_hash_seeds(rendered: dict[str, str], tmp_path: Path) -> None:
    assert synthesize() == rendered
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "stacks.synth", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    for tier, text in rendered.items():
        assert (tmp_path / f"{tier}.json").read_text() == text, tier


def test_templates_match_the_committed_snapshots(rendered: dict[str, str]) -> None:
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        for tier, text in rendered.items():
            (SNAPSHOTS / f"{tier}.json").write_text(text)
        pytest.skip("snapshots regenerated (UPDATE_SNAPSHOTS=1); review and commit them")
    for tier, text in rendered.items():
        path = SNAPSHOTS / f"{tier}.json"
        assert path.exists(), f"missing {path}; run with UPDATE_SNAPSHOTS=1"
        assert path.read_text() == text, (
            f"{tier}.json differs from its snapshot; if intended, regenerate with UPDATE_SNAPSHOTS=1 and commit"
        )
