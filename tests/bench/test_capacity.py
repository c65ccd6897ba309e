"""``./scripts/bench --from-json FILE --capacity`` through the CLI, on a fixture trimmed from a real run
(docs/performance.json: its ``uniform`` and ``hot`` scenarios, shape unchanged).

The figures asserted are arithmetic on the fixture's measurements (CPU-us per transfer), so a test
fails when the model stops reading what the bench measured, not when a price or assumption moves.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.bench.capacity_model import ASSUMPTIONS, RATES
from cli.bench.prices import AURORA_CLASSES, CACHE_CLASSES, PRICE_DATE, REGION
from cli.local_services import ROOT
from stacks.config import PLATFORM

FIXTURE = Path(__file__).parent / "fixtures" / "capacity_run.json"


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "cli.bench", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def page() -> str:
    result = _bench("--from-json", str(FIXTURE), "--capacity")
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _row(page: str, first_cell: str) -> list[str]:
    for line in page.splitlines():
        if line.startswith(f"| {first_cell} |"):
            return [cell.strip() for cell in line.strip("|").split("|")]
    raise AssertionError(f"no table row starting with {first_cell!r}")


def _num(cell: str) -> float:
    return float(re.sub(r"[^0-9.]", "", cell))


def _fixture() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def _cpu(scenario: str) -> dict[str, float]:
    return next(s for s in _fixture()["scenarios"] if s["name"] == scenario)["cpu_us_per_transfer"]["ours"]


def test_the_page_has_every_section(page: str) -> None:
    for heading in ("# Capacity and cost", "## Measured inputs", "## Transfers/s per vCPU", "## Fleet for a sustained",
                    "## One hot account", "## Redis, DynamoDB, NAT and endpoints", "## Monthly cost", "### dev",
                    "### prod", "## Cost per million transfers", "## Prices", "## Assumptions"):  # fmt: skip
        assert f"\n{heading}" in f"\n{page}", heading
    assert str(FIXTURE) in page, "the page names the run it was made from"


def test_transfers_per_vcpu_come_from_the_measured_cpu_per_transfer(page: str) -> None:
    cpu = _cpu("uniform")
    section = page.split("## Transfers/s per vCPU", 1)[1]
    for service in ("gateway", "ledger"):
        row = _row(section, service)
        assert _num(row[1]) == pytest.approx(cpu[service], abs=0.05)
        assert _num(row[2]) == pytest.approx(1e6 / cpu[service], abs=1)


def test_the_fleet_grows_with_the_load_and_names_a_priced_aurora_class(page: str) -> None:
    cpu = _cpu("uniform")
    previous = 0.0
    for rate in RATES:
        row = _row(page, f"{rate:,}")
        gateway_tasks, writer_vcpu = _num(row[1]), _num(row[4])
        per_task = 1e6 / cpu["gateway"] * min(PLATFORM.environment("prod").gateway.cpu / 1024, 1) * 0.7
        assert gateway_tasks == max(PLATFORM.environment("prod").gateway.min_tasks, math.ceil(rate / per_task))
        assert writer_vcpu == pytest.approx(rate * cpu["postgres"] / 1e6 / 0.7, abs=0.05)
        assert writer_vcpu >= previous
        previous = writer_vcpu
        assert row[5].split()[0] in {c.name for c in AURORA_CLASSES} or row[5].startswith("none")


def test_the_hot_ceiling_is_derived_from_the_hot_scenarios_postgres_cpu(page: str) -> None:
    pg = _cpu("hot")["postgres"]
    g, commit_ms = ASSUMPTIONS["max_group_items"].value, ASSUMPTIONS["hot_commit_ms"].value
    expected = g / (commit_ms / 1000 + g * pg / 1e6)
    found = re.search(r"Serial ceiling: about ([\d,]+) transfers/s", page)
    assert found and _num(found.group(1)) == pytest.approx(expected, abs=1)


def test_costs_state_region_date_and_source_and_add_up(page: str) -> None:
    assert REGION in page and PRICE_DATE in page
    prices = page.split("## Prices", 1)[1].split("## Assumptions", 1)[0]
    for line in prices.splitlines():
        if line.startswith("| ") and not line.startswith(("| key", "| class", "| ---")):
            assert "https://aws.amazon.com/" in line, f"a price without its source: {line}"
    for env in PLATFORM.environments:
        section = page.split(f"### {env.name}\n", 1)[1].split("\n#", 1)[0]
        rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
        total = _num(rows[-1].split("|")[5])
        assert sum(_num(r.split("|")[5]) for r in rows[:-1]) == pytest.approx(total, rel=0.01)
        for row in rows[:-1]:
            _item, quantity, _unit, unit_price, monthly = (c.strip() for c in row.strip("|").split("|"))
            assert _num(quantity) * _num(unit_price) == pytest.approx(_num(monthly), rel=0.01, abs=0.01), row
    assert {env.aurora_instance_class for env in PLATFORM.environments} <= {c.name for c in AURORA_CLASSES}
    assert {env.redis_node_type for env in PLATFORM.environments} <= {c.name for c in CACHE_CLASSES}


def test_cost_per_million_is_given_at_three_loads(page: str) -> None:
    section = page.split("All in, on a fleet", 1)[1]
    for rate in RATES:
        row = _row(section, f"{rate:,}")
        assert _num(row[1]) == pytest.approx(rate * 730 * 3600 / 1e6, abs=1)
        assert _num(row[3]) > 0


def test_every_assumption_is_printed_with_its_reason(page: str) -> None:
    for name, assumption in ASSUMPTIONS.items():
        assert f"| {name} |" in page and assumption.why in page


def test_a_run_without_the_hot_scenario_is_refused(tmp_path: Path) -> None:
    document = _fixture()
    document["scenarios"] = [s for s in document["scenarios"] if s["name"] != "hot"]
    path = tmp_path / "uniform-only.json"
    path.write_text(json.dumps(document))
    result = _bench("--from-json", str(path), "--capacity")
    assert result.returncode != 0
    assert "no 'hot' scenario" in result.stderr
