"""A private copy of the local platform for one benchmark run.

The same pieces ``./scripts/run`` starts, never a user's running platform: PostgreSQL and Redis
where they listen at ``DATABASE_URL`` / ``REDIS_URL`` (else private ones through
:class:`cli.local_services.LocalServices`, the machinery ``./scripts/run`` and ``./scripts/test``
use), but a private database (``bench_<hex>``, migrated here, dropped afterwards), a private Redis
key prefix (its keys deleted afterwards), a private DynamoDB endpoint (a moto server on a free
port) and the three services as child processes on free loopback ports with a random internal
credential. Their logs go to ``.local/bench/<run>/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis

from cli.local_services import ROOT, LocalServices, free_port, http_status, wait_for_port, with_database
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


async def drop_database(server_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(with_database(server_dsn, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


@dataclass
class BenchPlatform:
    """Start with :meth:`start`, always :meth:`stop` (it stops exactly what it started)."""

    overrides: dict[str, str] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    env: dict[str, str] = field(init=False, default_factory=dict)
    services: dict[str, Service] = field(init=False, default_factory=dict)
    log_dir: Path = field(init=False)
    database: str = field(init=False)
    server_dsn: str = field(init=False)
    _local: LocalServices = field(init=False, default_factory=LocalServices)
    _moto: subprocess.Popen[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        settings = get_settings()
        self.server_dsn = settings.database.url
        self.database = f"bench_{self.run_id}"
        self.log_dir = ROOT / ".local" / "bench" / self.run_id
        self.services = {name: Service(name, free_port()) for name in SERVICES}
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
    def gateway(self) -> Service:
        return self.services["gateway"]

    @property
    def ledger(self) -> Service:
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
            self._start_service(self.services[name])
        return self

    def _start_moto(self) -> None:
        port = free_port()
        moto = str(Path(sys.executable).parent / "moto_server")
        with (self.log_dir / "moto.log").open("ab") as log:
            self._moto = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
        wait_for_port("127.0.0.1", port, 30, "moto (DynamoDB endpoint)")
        self.env["DYNAMODB_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"

    def process_env(self, service: str | None = None) -> dict[str, str]:
        """The environment of a child; ``SERVICE:KEY`` overrides apply to that service only."""
        only = {key.split(":", 1)[1]: value for key, value in self.overrides.items() if key.startswith(f"{service}:")}
        return {**os.environ, **self.env, **only, "PYTHONPATH": str(ROOT)}

    def _start_service(self, service: Service, timeout: float = 60.0) -> None:
        with (self.log_dir / f"{service.name}.log").open("ab") as log:
            service.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{service.name}"],
                cwd=ROOT,
                env=self.process_env(service.name),
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise RuntimeError(f"{service.name} exited with {service.process.returncode}; see {self.log_dir}")
            if http_status(f"{service.url}/health/ready") == 200:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{service.name} not ready within {timeout:.0f}s; see {self.log_dir}")

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
            process = self.services[name].process
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._moto is not None and self._moto.poll() is None:
            self._moto.terminate()
            try:
                self._moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._moto.kill()
                self._moto.wait()
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
