"""Runs one scenario: the load generator as a child process, with a progress display and /proc samples.

Around the load it resets and then reads each service's peak RSS (whole process tree, so server
workers count), the services' CPU time, and the machine's CPU use, so a reader can tell whether the
load generator (its own CPU is in ``loadgen``) starved the services on a 2-core machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from cli.bench import procstat
from cli.bench.fixtures import CURRENCY, Fixture
from cli.bench.platform import BenchPlatform
from cli.bench.profile import Profiler
from cli.bench.progress import Progress
from cli.bench.scenarios import Scenario
from cli.local_services import ROOT


def loadgen_config(
    scenario: Scenario, platform: BenchPlatform, fixture: Fixture, duration: float, rate: float | None
) -> dict[str, Any]:
    service = platform.services[scenario.via]
    headers = fixture.gateway_headers() if scenario.via == "gateway" else fixture.ledger_headers()
    hot = scenario.pattern == "hot"
    # Without a sink the load generator picks random distinct pairs (random direction) of "accounts".
    accounts = {"hot": fixture.hot_sources, "contended": fixture.contended}.get(scenario.pattern, fixture.uniform)
    return {
        "host": "127.0.0.1",
        "port": service.port,
        "path": scenario.path,
        "headers": headers,
        "accounts": accounts,
        "hot_sink": fixture.hot_sink if hot else None,
        "currency": CURRENCY,
        "batch_size": scenario.batch_size,
        "mode": "open" if scenario.open_loop else "closed",
        "connections": scenario.clients,
        "rate": rate,
        "duration": duration,
        "warmup": min(2.0, duration * 0.2),
        "timeout": 30.0,
        "grace": 10.0,
    }


def group_sizes(log: Path, start_ms: float, end_ms: float) -> dict[str, Any] | None:
    """Mean ledger group size (requests per group transaction) from the EMF lines of a time window.

    Each EMF line carries up to 100 sampled ``GroupSize`` values of its second, so this is an
    estimate under load; ``transfers_committed`` is exact.
    """
    samples: list[float] = []
    committed = 0.0
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if not line.startswith('{"_aws"'):
            continue
        try:
            record = msgspec.json.decode(line)
        except msgspec.DecodeError:
            continue
        if not start_ms <= record["_aws"]["Timestamp"] <= end_ms:
            continue
        sizes = record.get("GroupSize", [])
        samples.extend(sizes if isinstance(sizes, list) else [sizes])
        committed += record.get("TransfersCommitted", 0)
    if not samples:
        return None
    return {"mean": round(sum(samples) / len(samples), 1), "max_sampled": max(samples),
            "transfers_committed": int(committed)}  # fmt: skip


def _pump_progress(stream: Any, progress: Progress) -> None:
    for raw in stream:
        parts = raw.decode(errors="replace").split()
        if len(parts) == 4 and parts[0] == "progress":
            progress.update(float(parts[1]), int(parts[2]), int(parts[3]))
        elif parts:
            progress.note(" ".join(parts))


def run_load(
    scenario: Scenario,
    platform: BenchPlatform,
    fixture: Fixture,
    duration: float,
    progress: Progress,
    rate: float | None = None,
    profiler: Profiler | None = None,
) -> dict[str, Any]:
    """Drive ``scenario`` for ``duration`` seconds; the load generator's result plus /proc figures."""
    config = loadgen_config(scenario, platform, fixture, duration, rate)
    trees = {name: procstat.process_tree(service.pid) for name, service in platform.services.items()}
    peaks_reset = all(procstat.reset_peak_rss(pids) for pids in trees.values())
    cpu0 = {name: procstat.sample_tree(service.pid).cpu_s for name, service in platform.services.items()}
    backends = platform.backend_pids()
    pg0 = sum(procstat.cpu_seconds(pid) for pid in backends)
    aux = procstat.postgres_aux_pids()
    redis_pid = platform.redis_pid()
    aux0 = sum(procstat.cpu_seconds(pid) for pid in aux)
    redis0 = procstat.cpu_seconds(redis_pid) if redis_pid else 0.0
    busy0, total0 = procstat.machine_cpu_ticks()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.bench.loadgen"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    pump = threading.Thread(target=_pump_progress, args=(process.stderr, progress), daemon=True)
    pump.start()
    started = time.monotonic()
    started_ms = time.time() * 1000
    if profiler is not None:
        profiled = ["ledger"] if scenario.via == "ledger" else ["gateway", "ledger"]
        profiler.start(scenario.name, {name: platform.services[name].pid for name in profiled}, duration)
    try:
        stdout, _ = process.communicate(msgspec.json.encode(config), timeout=duration + config["grace"] + 30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise RuntimeError(f"the load generator of {scenario.name} did not finish in time") from None
    pump.join(timeout=2)
    wall = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError(f"the load generator of {scenario.name} failed ({process.returncode})")
    busy1, total1 = procstat.machine_cpu_ticks()
    pg1 = sum(procstat.cpu_seconds(pid) for pid in backends)
    aux1 = sum(procstat.cpu_seconds(pid) for pid in aux)
    redis1 = procstat.cpu_seconds(redis_pid) if redis_pid else 0.0
    result: dict[str, Any] = msgspec.json.decode(stdout.strip().splitlines()[-1])
    services = {}
    for name, service in platform.services.items():
        sample = procstat.sample_tree(service.pid)
        services[name] = {
            "processes": sample.processes,
            "rss_peak_mb": sample.rss_peak_mb,
            "rss_peak_total_mb": sample.rss_peak_total_mb,
            "cpu_percent": round(100 * (sample.cpu_s - cpu0[name]) / wall, 1),
        }
    result["services"] = services
    # EMF lines are stamped when flushed (every second): skip the warm-up, allow one late flush.
    time.sleep(1.2)
    result["ledger_group_size"] = group_sizes(
        platform.log_dir / "ledger.log", started_ms + 1000 * (config["warmup"] + 1), started_ms + 1000 * (duration + 1)
    )
    if profiler is not None:
        result["profile"] = profiler.collect()
    result["postgres_backends_cpu_percent"] = round(100 * (pg1 - pg0) / wall, 1)
    result["postgres_aux_cpu_percent"] = round(100 * max(0.0, aux1 - aux0) / wall, 1)
    result["redis_cpu_percent"] = round(100 * max(0.0, redis1 - redis0) / wall, 1)
    result["rss_peak_scope"] = "scenario" if peaks_reset else "since process start"
    result["machine_cpu_busy_percent"] = round(100 * (busy1 - busy0) / max(1, total1 - total0), 1)
    ours = result["loadgen"]["cpu_percent"] + result["postgres_backends_cpu_percent"]
    ours += result["postgres_aux_cpu_percent"] + result["redis_cpu_percent"]
    ours += sum(s["cpu_percent"] for s in services.values())
    nproc = os.cpu_count() or 1
    result["other_cpu_percent"] = round(max(0.0, result["machine_cpu_busy_percent"] * nproc - ours), 1)
    return result
