"""The ledger service as real processes on a fresh database.

Two processes share the database: one commits in groups (the production setting), one commits
every request alone. Tests parametrised with ``ledger`` run against both, so both write paths
must behave identically; tests that hit both at once exercise several ledger processes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.support.http import ApiClient
from tests.support.processes import ServiceProcess, free_port

INTERNAL_TOKEN = "test-internal-token"


def ledger_env(database_url: str, port: int, grouped: bool) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "LEDGER_PORT": str(port),
        "INTERNAL_TOKEN": INTERNAL_TOKEN,
        "GROUP_COMMIT_ENABLED": "true" if grouped else "false",
        "EXPIRY_SWEEP_INTERVAL_SECONDS": "0.2",
    }


@pytest.fixture(scope="session")
def ledger_processes(database_url: str) -> Iterator[dict[str, ServiceProcess]]:
    processes = {}
    for mode in ("grouped", "direct"):
        port = free_port()
        processes[mode] = ServiceProcess("ledger", port, ledger_env(database_url, port, mode == "grouped"))
    for process in processes.values():
        process.start()
    yield processes
    for process in processes.values():
        process.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:
        yield session


def client_for(http: aiohttp.ClientSession, process: ServiceProcess, tenant: str | None = None) -> ApiClient:
    return ApiClient(
        http,
        process.url,
        {"X-Internal-Token": INTERNAL_TOKEN, "X-Tenant-Id": tenant or str(uuid.uuid4())},
    )


@pytest.fixture(params=["grouped", "direct"])
def ledger(
    request: pytest.FixtureRequest, ledger_processes: dict[str, ServiceProcess], http: aiohttp.ClientSession
) -> ApiClient:
    """A client for a fresh tenant on one ledger process (each test runs once per write path)."""
    return client_for(http, ledger_processes[request.param])
