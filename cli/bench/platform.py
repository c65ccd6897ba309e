"""A private copy of the local platform for one benchmark run.

The same pieces ``./scripts/run`` starts, never a user's running platform: PostgreSQL and Redis
where they listen at ``DATABASE_URL`` / ``REDIS_URL`` (else private ones through
:class:`cli.local_services.LocalServices`, the machinery ``./scripts/run`` and ``./scripts/test``
use), but a private database (``bench_<hex>``, migrated here, dropped afterwards), a private Redis
key prefix (its keys deleted afterwards), a private DynamoDB endpoint (a moto server on a free
port) and the three services as child processes on free loopback ports with a random internal
credential. Their logs go to ``.local/bench/<run>/``. The processes are started, awaited and
stopped by cli/launcher.py, the launcher ``./scripts/run`` and the tests use too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis

from cli.launcher import Helper, ServiceProcess, drop_database, moto_command
from cli.local_services import ROOT, LocalServices, free_port, with_database
from services.ledger.migrate import migrate
from shared.settings import get_settings

SERVICES = ("session", "ledger", "gateway")
BENCH_ENV = {
    # The benchmark measures the transfer path, not the rate limiter's refusals.
    "RATE_LIMIT_PER_SECOND": "1000000",
    "RATE_LIMIT_BURST": "1000000",
    "SESSION_TTL_SECONDS": "7200",
    # The periodic verifier is not on the transfer path; a run landing mid-scenario would skew it.
    "VERIFIER_INTERVAL_SECONDS": "0",
    "BIND_HOST": "127.0.0.1",
    # One EMF line a second (instead of a minute) so the ledger's group sizes can be read per scenario.
    "METRICS_INTERVAL_SECONDS": "1",
}


KEEP_LOG_DIRS = 10
"""Log directories of earlier runs kept under .local/bench (the oldest are removed)."""


def _prune_logs(parent: Path, keep: int) -> None:
    runs = sorted((p for p in parent.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class BenchPlatform:
    """Start with :meth:`start`, always :meth:`stop` (it stops exactly what it started)."""

    overrides: dict[str, str] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    env: dict[str, str] = field(init=False, default_factory=dict)
    services: dict[str, ServiceProcess] = field(init=False, default_factory=dict)
    log_dir: Path = field(init=False)
    database: str = field(init=False)
    server_dsn: str = field(init=False)
    _local: LocalServices = field(init=False, default_factory=LocalServices)
    _moto: Helper | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        settings = get_settings()
        self.server_dsn = settings.database.url
        self.database = f"bench_{self.run_id}"
        self.log_dir = ROOT / ".local" / "bench" / self.run_id
        self.services = {
            name: ServiceProcess(name, free_port(), {}, self.log_dir / f"{name}.log", new_session=True)
            for name in SERVICES
        }
        self.env = {
            "DATABASE_URL": with_database(settings.database.url, self.database),
            "REDIS_URL": settings.redis.url,
            "REDIS_KEY_PREFIX": f"bench:{self.run_id}:",
            "DYNAMODB_TABLE_PREFIX": f"bench-{self.run_id}-",
            "AWS_REGION": settings.process.aws_region,
            "INTERNAL_TOKEN": secrets.token_urlsafe(24),
            **{f"{name.upper()}_PORT": str(service.port) for name, service in self.services.items()},
            **BENCH_ENV,
            **{key: value for key, value in self.overrides.items() if ":" not in key},
        }

    @property
    def gateway(self) -> ServiceProcess:
        return self.services["gateway"]

    @property
    def ledger(self) -> ServiceProcess:
        return self.services["ledger"]

    def start(self, say: Callable[[str], None] = print) -> BenchPlatform:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _prune_logs(self.log_dir.parent, keep=KEEP_LOG_DIRS)
        self._local.ensure_postgres(self.server_dsn)
        self._local.ensure_redis(self.env["REDIS_URL"])
        say(f"database {self.database}, Redis prefix {self.env['REDIS_KEY_PREFIX']}, logs {self.log_dir}")
        asyncio.run(migrate(self.env["DATABASE_URL"]))
        self._start_moto()
        for name in SERVICES:
            service = self.services[name]
            service.env = self.process_env(name)
            service.start(timeout=60.0)
        return self

    def _start_moto(self) -> None:
        port = free_port()
        self._moto = Helper("moto (DynamoDB endpoint)", port, moto_command(port), self.log_dir / "moto.log").start()
        self.env["DYNAMODB_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"

    def process_env(self, service: str | None = None) -> dict[str, str]:
        """The environment of a child; ``SERVICE:KEY`` overrides apply to that service only."""
        only = {key.split(":", 1)[1]: value for key, value in self.overrides.items() if key.startswith(f"{service}:")}
        return {**os.environ, **self.env, **only, "PYTHONPATH": str(ROOT)}

    def backend_pids(self) -> list[int]:
        """PostgreSQL backends serving this run's database (the ledger's pool connections)."""

        async def query() -> list[int]:
            conn = await asyncpg.connect(with_database(self.server_dsn, "postgres"))
            try:
                rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", self.database)
            finally:
                await conn.close()
            return [int(r["pid"]) for r in rows]

        return asyncio.run(query())

    def redis_pid(self) -> int | None:
        """The Redis server's pid (it may be shared with others: its CPU is reported on its own)."""
        try:
            client = redis.Redis.from_url(self.env["REDIS_URL"])
            pid = int(client.info("server")["process_id"])
            client.close()
        except (redis.RedisError, KeyError, ValueError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def settle(self) -> None:
        """Between phases: ``VACUUM ANALYZE`` the ledger's tables, then ``CHECKPOINT`` the server.

        ANALYZE is what autovacuum does on any normally configured server (this machine's shared
        PostgreSQL runs with ``autovacuum = off``); without it the ledger's cached plans never learn
        that ``transfers`` grew (see docs/performance.md). The checkpoint keeps one phase's dirty
        pages from being flushed during the next one.
        """

        async def run() -> None:
            conn = await asyncpg.connect(self.env["DATABASE_URL"])
            try:
                await conn.execute("VACUUM ANALYZE accounts, transfers")
                with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
                    await conn.execute("CHECKPOINT")
            finally:
                await conn.close()

        asyncio.run(run())

    def autovacuum(self) -> str:
        async def run() -> str:
            conn = await asyncpg.connect(self.env["DATABASE_URL"])
            try:
                return str(await conn.fetchval("SHOW autovacuum"))
            finally:
                await conn.close()

        return asyncio.run(run())

    def admin(self, *args: str) -> str:
        """``./scripts/admin`` against this platform (the real admin path); its stdout."""
        result = subprocess.run(
            [sys.executable, "-m", "cli.admin", *args],
            cwd=ROOT,
            env=self.process_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"admin {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def stop(self, keep_database: bool = False) -> None:
        for name in reversed(SERVICES):
            self.services[name].stop(timeout=30)
        if self._moto is not None:
            self._moto.stop()
        try:
            client = redis.Redis.from_url(self.env["REDIS_URL"])
            keys = list(client.scan_iter(match=f"{self.env['REDIS_KEY_PREFIX']}*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
            client.close()
        except redis.RedisError:
            pass
        if not keep_database:
            asyncio.run(drop_database(self.server_dsn, self.database))
        self._local.stop()
