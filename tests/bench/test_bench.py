"""``./scripts/bench`` end to end, for a second or two: it runs, stops by itself, and writes the
documented JSON shape and a PNG. Behaviour only: no figure it measures is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.bench.report import judge, render, targets
from cli.bench.scenarios import SCENARIOS
from cli.local_services import ROOT, find_binary

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCENARIO_KEYS = {
    "name", "description", "via", "pattern", "clients", "mode", "rate", "duration_s", "transfers_per_s",
    "requests_per_s", "transfers_ok", "requests", "latency_ms", "errors", "loadgen", "services",
    "machine_cpu_busy_percent", "postgres_backends_cpu_percent", "reference", "ratio", "target",
}  # fmt: skip


def _bench(*args: str, timeout: float = 280) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "cli.bench", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench")
    pgbench = [] if find_binary("pgbench") else ["--no-pgbench"]
    # contended rides along in the same platform start: one more 1.5 s load, not another set-up.
    result = _bench("--scenario", "hot-ledger", "--scenario", "contended", "--scenario", "batch", "--duration", "1.5",
                    "--json", str(out / "bench.json"), "--plot", str(out / "bench.png"), *pgbench)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads((out / "bench.json").read_text()), out


def test_the_json_has_the_documented_shape(run: tuple[Any, dict[str, Any], Path]) -> None:
    _, document, _ = run
    assert document["schema"] == "bench/1"
    assert {"started_at", "finished_at", "command", "machine", "versions", "settings", "scenarios", "targets"} <= set(
        document
    )
    assert [s["name"] for s in document["scenarios"]] == ["hot-ledger", "contended", "batch"]
    for record in document["scenarios"]:
        assert set(record) >= SCENARIO_KEYS, SCENARIO_KEYS - set(record)
        assert set(record["latency_ms"]) >= {"p50", "p99", "p99.9"}
        assert set(record["services"]) == {"gateway", "ledger", "session"}
        for service in record["services"].values():
            assert service["processes"] >= 1 and service["rss_peak_mb"] > 0
        assert record["loadgen"]["cpu_percent"] > 0
        assert record["target"]["text"] == SCENARIOS[record["name"]].target_text
        assert isinstance(record["target"]["met"], bool)
        # pgbench is installed wherever PostgreSQL is (it is here): then every scenario has its reference.
        assert (record["reference"] is not None) == bool(find_binary("pgbench"))
        if record["reference"] is not None:
            assert record["reference"]["clients"] == record["clients"]
            assert record["ratio"] == pytest.approx(
                record["transfers_per_s"] / record["reference"]["transfers_per_s"], rel=1e-2
            )
    figures = [t["figure"] for t in document["targets"]]
    # One row per scenario and the RSS row: none of these three has a machine-busy target.
    assert any("RSS" in f for f in figures) and len(figures) == 4
    assert all(record["busy_target"] is None for record in document["scenarios"])


def test_the_load_went_through_without_errors(run: tuple[Any, dict[str, Any], Path]) -> None:
    _, document, _ = run
    hot, contended, batch = document["scenarios"]
    assert hot["transfers_ok"] > 0 and hot["errors"] == {}
    assert hot["clients"] == SCENARIOS["hot-ledger"].clients
    # Ten accounts without balance limits: contention slows transfers down but never refuses one.
    assert contended["transfers_ok"] > 0 and contended["errors"] == {}
    assert contended["clients"] == 20 and contended["via"] == "gateway"
    if contended["reference"] is not None:
        assert contended["reference"]["script"] == "cli/bench/pgbench/contended.sql"
        assert contended["reference"]["failed"] == 0
    assert batch["errors"] == {}
    assert batch["transfers_ok"] == 1000 * batch["requests"]


def test_table_and_plot(run: tuple[Any, dict[str, Any], Path]) -> None:
    result, _, out = run
    assert "hot-ledger" in result.stdout and "ratio" in result.stdout and "RSS" in result.stdout
    assert "[bench]" in result.stderr  # the progress display
    assert (out / "bench.png").read_bytes()[:8] == PNG_MAGIC


def test_replot_from_json_runs_nothing(run: tuple[Any, dict[str, Any], Path]) -> None:
    _, _, out = run
    result = _bench("--from-json", str(out / "bench.json"), "--plot", str(out / "again.png"), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "hot-ledger" in result.stdout
    assert (out / "again.png").read_bytes()[:8] == PNG_MAGIC
    assert "starting the platform" not in result.stderr


def _record(name: str, busy: float) -> dict[str, Any]:
    """The least of a scenario record that judge() and the tables read."""
    return {"name": name, "mode": "closed", "clients": 1, "transfers_per_s": 100.0, "reference": None,
            "errors": {}, "services": {}, "loadgen": {"cpu_percent": 1.0}, "machine_cpu_busy_percent": busy,
            "latency_ms": {"p50": 1.0, "p99": 2.0, "p99.9": 3.0}}  # fmt: skip


def test_machine_busy_is_judged_for_hot_and_uniform_only() -> None:
    records = [_record("hot", 95.0), _record("uniform", 58.0), _record("contended", 10.0)]
    for record in records:
        judge(record)
    assert records[0]["busy_target"] == {"text": ">= 90%", "value": 95.0, "met": True}
    assert records[1]["busy_target"] == {"text": ">= 90%", "value": 58.0, "met": False}
    assert records[2]["busy_target"] is None
    rows = targets(records)
    busy_rows = [row for row in rows if row["figure"].startswith("machine busy")]
    assert [(row["figure"], row["met"]) for row in busy_rows] == [
        ("machine busy during hot (% of all cores)", True),
        ("machine busy during uniform (% of all cores)", False),
    ]
    table = render({"scenarios": records, "targets": rows, "machine": {"nproc": 2}})
    line = next(line for line in table.splitlines() if line.startswith("machine busy during uniform"))
    assert ">= 90%" in line and "58.00" in line and line.endswith("MISSED")
