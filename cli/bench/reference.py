"""The pgbench reference, measured in the same run on the same PostgreSQL server.

A private scratch database (``bench_ref_<hex>``, dropped afterwards) gets ``pgbench/schema.sql``
(a plain PL/pgSQL transfer function); each scenario's script then runs as
``pgbench -M prepared -n -c CLIENTS -j THREADS -T DURATION`` with the scenario's account pattern
and client count (``-R RATE`` for the open-loop scenario). Latency percentiles come from pgbench's
per-transaction log; under ``-R`` they include the schedule lag, so they are corrected for
coordinated omission just as ours are.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from cli.bench import procstat
from cli.bench.platform import drop_database, with_database
from cli.local_services import find_binary

PGBENCH_DIR = Path(__file__).parent / "pgbench"
ACCOUNTS = 10_000
TRANSFERS_PER_TRANSACTION = {"uniform": 1, "hot": 1, "contended": 1, "batch": 1000}


def _percentile(sorted_values: list[float], pct: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(pct / 100.0 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def _log_latencies(prefix: str) -> tuple[list[float], int]:
    """Latencies (ms, schedule lag included) and failed transactions from pgbench's -l files."""
    values: list[float] = []
    failed = 0
    for path in glob.glob(prefix + "*"):
        with open(path) as log:
            for line in log:
                parts = line.split()
                if len(parts) < 6:
                    continue
                if not parts[2].isdigit():
                    failed += 1
                    continue
                lag = int(parts[6]) if len(parts) > 6 and parts[6].isdigit() else 0
                values.append((int(parts[2]) + lag) / 1000.0)
    values.sort()
    return values, failed


class BackendCpu:
    """CPU of the PostgreSQL backends serving pgbench, sampled while it runs (they exit with it)."""

    def __init__(self, server_dsn: str, database: str) -> None:
        self.server_dsn, self.database = server_dsn, database
        self.first: tuple[float, float] | None = None
        self.last: tuple[float, float] | None = None

    def _pids(self) -> list[int]:
        async def query() -> list[int]:
            conn = await asyncpg.connect(with_database(self.server_dsn, "postgres"))
            try:
                rows = await conn.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pgbench'",
                    self.database,
                )
            finally:
                await conn.close()
            return [int(r["pid"]) for r in rows]

        return asyncio.run(query())

    def follow(self, process: subprocess.Popen[str], timeout: float) -> None:
        """Sample every 0.5 s until ``process`` exits (its output is read afterwards: it is small)."""
        deadline = time.monotonic() + timeout
        pids: list[int] = []
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            if not pids:
                pids = self._pids()
                if pids:
                    self.first = (time.perf_counter(), sum(procstat.cpu_seconds(p) for p in pids))
                continue
            cpu = sum(procstat.cpu_seconds(p) for p in pids)
            if process.poll() is None and (self.last is None or cpu >= self.last[1]):
                self.last = (time.perf_counter(), cpu)
        if process.poll() is None:
            process.kill()

    def percent(self) -> float | None:
        if self.first is None or self.last is None or self.last[0] <= self.first[0]:
            return None
        return round(100 * (self.last[1] - self.first[1]) / (self.last[0] - self.first[0]), 1)


@dataclass
class Reference:
    server_dsn: str
    run_id: str
    database: str = field(init=False)
    pgbench: str = field(init=False)
    cache: dict[tuple[str, int, float | None], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.database = f"bench_ref_{self.run_id}"
        found = find_binary("pgbench")
        if found is None:
            raise RuntimeError("pgbench is not installed (Debian: apt-get install postgresql-client)")
        self.pgbench = found

    @property
    def dsn(self) -> str:
        return with_database(self.server_dsn, self.database)

    def setup(self) -> Reference:
        async def create() -> None:
            admin = await asyncpg.connect(with_database(self.server_dsn, "postgres"))
            try:
                await admin.execute(f'CREATE DATABASE "{self.database}"')
            finally:
                await admin.close()
            conn = await asyncpg.connect(self.dsn)
            try:
                schema = (PGBENCH_DIR / "schema.sql").read_text().replace(":naccounts", str(ACCOUNTS))
                await conn.execute(schema)
                await conn.execute("VACUUM ANALYZE bench_accounts")
            finally:
                await conn.close()

        asyncio.run(create())
        return self

    def drop(self) -> None:
        asyncio.run(drop_database(self.server_dsn, self.database))

    def vacuum(self) -> None:
        """``VACUUM ANALYZE`` the reference tables (what pgbench itself does before its built-in runs)."""

        async def run() -> None:
            conn = await asyncpg.connect(self.dsn)
            try:
                await conn.execute("VACUUM ANALYZE bench_accounts, bench_transfers")
            finally:
                await conn.close()

        asyncio.run(run())

    def run(self, script: str, clients: int, duration: float, rate: float | None = None) -> dict[str, Any]:
        """Run ``pgbench/<script>.sql``; cached per (script, clients, rate) within one run."""
        key = (script, clients, rate)
        if key not in self.cache:
            self.cache[key] = self._run(script, clients, duration, rate)
        return self.cache[key]

    def _run(self, script: str, clients: int, duration: float, rate: float | None) -> dict[str, Any]:
        self.vacuum()
        seconds = max(1, round(duration))
        log_dir = tempfile.mkdtemp(prefix="bench-pgbench-")
        prefix = os.path.join(log_dir, "tx")
        command = [
            self.pgbench,
            "-M", "prepared",
            "-n",
            "-c", str(clients),
            "-j", str(min(clients, os.cpu_count() or 1)),
            "-T", str(seconds),
            "-D", f"naccounts={ACCOUNTS}",
            "-f", str(PGBENCH_DIR / f"{script}.sql"),
            "-l", f"--log-prefix={prefix}",
        ]  # fmt: skip
        if rate is not None:
            command += ["-R", f"{rate:.1f}"]
        command.append(self.dsn)
        usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            backends = BackendCpu(self.server_dsn, self.database)
            backends.follow(process, seconds + 60)
            stdout, stderr = process.communicate(timeout=60)
            result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
            wall = time.perf_counter() - started
            usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            if result.returncode != 0:
                raise RuntimeError(f"pgbench {script} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
            latencies, failed = _log_latencies(prefix)
        finally:
            shutil.rmtree(log_dir, ignore_errors=True)
        match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.stdout)
        tps = float(match.group(1)) if match else 0.0
        cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
        per = TRANSFERS_PER_TRANSACTION[script]
        return {
            "script": f"cli/bench/pgbench/{script}.sql",
            "clients": clients,
            "rate": rate,
            "duration_s": seconds,
            "transactions_per_s": round(tps, 1),
            "transfers_per_s": round(tps * per, 1),
            "failed": failed,
            "latency_ms": {
                "p50": _percentile(latencies, 50),
                "p99": _percentile(latencies, 99),
                "p99.9": _percentile(latencies, 99.9),
                "max": latencies[-1] if latencies else None,
            },
            "client_cpu_percent": round(100 * cpu / wall, 1),
            "backends_cpu_percent": backends.percent(),
            "command": " ".join(
                part if part != self.dsn else "<scratch db>" for part in command if not part.startswith("--log")
            ),
        }
