"""The whole platform as real processes, for end-to-end and fault-injection tests.

:class:`Platform` starts a moto server (the DynamoDB endpoint), a private Redis (its own port and
append-only file, so a test may stop and restart it without touching anyone else's Redis), then
the session, ledger and gateway services, each on a free loopback port, with private Redis key and
DynamoDB table prefixes and a random internal credential. Every piece can be stopped, frozen
(SIGSTOP: an unresponsive dependency) and started again.

The session-scoped ``platform`` fixture shares one platform between the gateway, session and e2e
suites; tests that stop a piece restore it before they end.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from cli import launcher
from services.session.app import session_service
from services.session.cache import SessionCache
from services.session.service import SessionService
from services.session.store import SessionStore
from shared.settings import DynamoDBSettings, ProcessSettings, RedisSettings, Settings
from tests.support.api import Api, Tenant
from tests.support.processes import LOG_DIR, ROOT, ServiceProcess, free_port, http_status


class Helper(launcher.Helper):
    """``Helper(name, port, command)``: the launcher's non-service child (moto, Redis) that can be
    stopped, frozen and restarted, its log beside the services' (one per name and port)."""

    def __init__(self, name: str, port: int, command: list[str]) -> None:
        super().__init__(name, port, command, LOG_DIR / f"{name}-{port}.log")


@dataclass
class Platform:
    database_url: str
    redis_prefix: str
    overrides: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(init=False)
    dynamodb: Helper = field(init=False)
    redis: Helper = field(init=False)
    session: ServiceProcess = field(init=False)
    ledger: ServiceProcess = field(init=False)
    gateway: ServiceProcess = field(init=False)
    extras: list[ServiceProcess] = field(default_factory=list)
    _redis_dir: str = field(init=False)

    def __post_init__(self) -> None:
        dynamodb_port, redis_port = free_port(), free_port()
        ports = {"session": free_port(), "ledger": free_port(), "gateway": free_port()}
        self._redis_dir = tempfile.mkdtemp(prefix="platform-redis-")
        self.env = {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "REDIS_KEY_PREFIX": self.redis_prefix,
            "DYNAMODB_ENDPOINT_URL": f"http://127.0.0.1:{dynamodb_port}",
            "DYNAMODB_TABLE_PREFIX": f"t{uuid.uuid4().hex[:8]}-",
            "DYNAMODB_TIMEOUT_SECONDS": "1",
            "REDIS_TIMEOUT_SECONDS": "1",
            "UPSTREAM_TIMEOUT_SECONDS": "5",
            # Every test client is 127.0.0.1: the suites' many deliberate 401s must not block it
            # (tests/gateway/test_refusals.py runs a gateway with a low limit of its own).
            "REFUSED_AUTH_BURST_PER_ADDRESS": "1000000",
            "AWS_REGION": "eu-west-1",
            "INTERNAL_TOKEN": secrets.token_urlsafe(24),
            "SESSION_PORT": str(ports["session"]),
            "LEDGER_PORT": str(ports["ledger"]),
            "GATEWAY_PORT": str(ports["gateway"]),
            "BIND_HOST": "127.0.0.1",
            "LOG_LEVEL": "INFO",
            **self.overrides,
        }
        self.dynamodb = Helper("moto", dynamodb_port, launcher.moto_command(dynamodb_port))
        redis_server = shutil.which("redis-server") or "redis-server"
        self.redis = Helper(
            "redis",
            redis_port,
            [
                redis_server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(redis_port),
                "--dir",
                self._redis_dir,
                "--appendonly",
                "yes",
                # Not "always": an fsync per write stalls every Redis client behind the suite's own
                # disk load (two workers' PostgreSQL commits and CREATE DATABASEs), against the
                # services' 1 s Redis timeout. A stop is a SIGTERM, on which Redis fsyncs the file,
                # so the restart tests keep every record either way.
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--daemonize",
                "no",
            ],
        )
        self.session = ServiceProcess("session", ports["session"], self.env)
        self.ledger = ServiceProcess("ledger", ports["ledger"], self.env)
        self.gateway = ServiceProcess("gateway", ports["gateway"], self.env)

    @property
    def url(self) -> str:
        return self.gateway.url

    def start(self) -> Platform:
        self.dynamodb.start()
        self.redis.start()
        self.session.start()
        self.ledger.start()
        self.gateway.start()
        return self

    def stop(self) -> None:
        for process in [*self.extras, self.gateway, self.ledger, self.session]:
            process.stop()
        self.redis.stop()
        self.dynamodb.stop()
        shutil.rmtree(self._redis_dir, ignore_errors=True)

    @contextmanager
    def serving(self) -> Iterator[Platform]:
        """Every process running for the block, all stopped after it whatever happened."""
        try:
            yield self.start()
        finally:
            self.stop()

    def extra_gateway(self, **overrides: str) -> ServiceProcess:
        """Another gateway instance on the same dependencies, with its own settings."""
        return self._extra("gateway", "GATEWAY_PORT", overrides)

    def extra_ledger(self, **overrides: str) -> ServiceProcess:
        """Another ledger process on the same database (point a gateway at it with LEDGER_URL)."""
        return self._extra("ledger", "LEDGER_PORT", overrides)

    def extra_session(self, **overrides: str) -> ServiceProcess:
        """Another session service instance on the same DynamoDB tables and Redis."""
        return self._extra("session", "SESSION_PORT", overrides)

    def _extra(self, name: str, port_variable: str, overrides: dict[str, str]) -> ServiceProcess:
        for attempt in range(2):  # a free port can be taken by someone else before we bind it
            port = free_port()
            process = ServiceProcess(name, port, {**self.env, port_variable: str(port), **overrides})
            self.extras.append(process)
            try:
                return process.start(timeout=60)
            except RuntimeError:
                process.stop()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def restart(self, process: ServiceProcess) -> None:
        process.stop()
        process.start()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the gateway reports ready again (its dependencies answer)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if http_status(f"{self.gateway.url}/health/ready") == 200:
                return
            time.sleep(0.05)
        raise RuntimeError("the gateway did not become ready again")

    def admin(self, *args: str, script: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the admin CLI against this platform (``script=True``: through ``./scripts/admin``)."""
        command = [str(ROOT / "scripts" / "admin"), *args] if script else [sys.executable, "-m", "cli.admin", *args]
        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise RuntimeError(f"admin {args} failed ({result.returncode}): {result.stderr}")
        return result

    def create_tenant(self, name: str = "tenant") -> dict[str, Any]:
        created: dict[str, Any] = json.loads(self.admin("create-tenant", name).stdout)
        return created


@pytest.fixture(scope="session")
def platform(database_url: str, redis_prefix: str) -> Iterator[Platform]:
    with Platform(database_url, redis_prefix).serving() as running:
        yield running


@pytest.fixture(scope="session")
async def http_client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


@pytest.fixture(scope="session")
async def api(platform: Platform, http_client: aiohttp.ClientSession) -> Api:
    return Api(http_client, platform.url)


@pytest.fixture(scope="session")
async def tenant_a(platform: Platform, api: Api) -> Tenant:
    return await quick_tenant(platform, api, "tenant-a")


@pytest.fixture(scope="session")
async def tenant_b(platform: Platform, api: Api) -> Tenant:
    return await quick_tenant(platform, api, "tenant-b")


def platform_settings(platform: Platform) -> Settings:
    """The settings the platform's processes run with, for in-process access to their stores."""
    env = platform.env
    return Settings(
        redis=RedisSettings(url=env["REDIS_URL"], key_prefix=env["REDIS_KEY_PREFIX"]),
        dynamodb=DynamoDBSettings(
            endpoint_url=env["DYNAMODB_ENDPOINT_URL"],
            table_prefix=env["DYNAMODB_TABLE_PREFIX"],
            timeout_seconds=float(env["DYNAMODB_TIMEOUT_SECONDS"]),
        ),
        process=ProcessSettings(aws_region=env["AWS_REGION"], internal_token=env["INTERNAL_TOKEN"]),
    )


@asynccontextmanager
async def session_domain(platform: Platform) -> AsyncIterator[SessionService]:
    """The session domain in-process, on the platform's DynamoDB tables and Redis (same code as the CLI)."""
    settings = platform_settings(platform)
    redis = Redis.from_url(settings.redis.url)
    store = SessionStore(settings)
    await store.start()
    try:
        cache = SessionCache(redis, settings.redis.key_prefix, settings.session.cache_ttl_seconds)
        yield session_service(settings, store, cache)
    finally:
        await store.close()
        await redis.aclose()


async def quick_tenant(platform: Platform, api: Api, name: str = "tenant") -> Tenant:
    """A tenant with a logged-in token, created in-process (the CLI itself is tested separately)."""
    async with session_domain(platform) as service:
        key = await service.create_tenant(name)
    tenant = Tenant(key.tenant_id, key.key_id, key.api_key)
    tenant.token = await api.login(tenant.api_key)
    return tenant
