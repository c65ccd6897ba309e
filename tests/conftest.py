"""Fixtures over real services: a fresh PostgreSQL database and a private Redis key prefix per run.

Nothing here is mocked. ``./scripts/test`` makes sure PostgreSQL and Redis listen at
``DATABASE_URL`` / ``REDIS_URL`` (starting private ones when needed); each test session creates
its own database (``test_<random>``) so several runs can share one server, and drops it after.

Under pytest-xdist (``./scripts/test`` runs two workers, ``--dist loadgroup``) every worker is such a
session: its own database, Redis prefix, platform and free ports, so workers share nothing but the
servers. :func:`pytest_collection_modifyitems` keeps each file on one worker (its module-scoped
platforms start once) and hands out the longest files first, so the run does not end waiting on
one long file that started last.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from cli.launcher import drop_database
from cli.local_services import with_database
from services.ledger.migrate import migrate
from shared.settings import get_settings

SECONDS = {
    "tests/adversarial/test_schemathesis.py": 210,
    "tests/gateway/test_new_routes.py": 100,
    "tests/bench/test_bench.py": 100,
    "tests/tracing/test_bench_option.py": 75,
    "tests/gateway/test_auth.py": 55,
    "tests/ledger/test_transactions.py": 50,
    "tests/stacks/test_templates.py": 50,
    "tests/e2e/test_redis_acl.py": 47,
    "tests/stacks/test_checkov.py": 47,
    "tests/shared/test_credentials.py": 43,
    "tests/faults/test_verify_cli.py": 40,
    "tests/session/test_session_service.py": 39,
    "tests/e2e/test_webhook_delivery.py": 39,
    "tests/faults/test_crash_recovery.py": 39,
    "tests/adversarial/test_internal_token_guard.py": 37,
    "tests/ledger/test_lifecycle.py": 34,
    "tests/gateway/test_ratelimit.py": 32,
    "tests/stacks/test_deploy.py": 31,
    "tests/ledger/test_transfers.py": 29,
    "tests/e2e/test_faults.py": 26,
    "tests/ledger/test_webhooks.py": 25,
    "tests/faults/test_verify_model.py": 24,
    "tests/ledger/test_state_machine.py": 23,
    "tests/ledger/test_webhooks_delivery.py": 22,
    "tests/e2e/test_contract.py": 19,
    "tests/e2e/test_internal_token_rotation.py": 19,
    "tests/gateway/test_long_poll_cap.py": 19,
    "tests/ledger/test_reversals.py": 18,
    "tests/ledger/test_roles.py": 17,
    "tests/session/test_login_limits.py": 16,
    "tests/tracing/test_one_trace.py": 16,
}
"""Rough seconds per file on the 2-core runner (``--durations=0``), to hand out long files first.
A file missing here (new, renamed) only runs later; the order never changes what a test checks."""

SERIAL = {"tests/gateway/test_ratelimit.py", "tests/gateway/test_idempotency.py"}
"""Files marked ``serial``: ``./scripts/test`` runs them after the parallel phase, alone, since they
hold budgets of about a second (Redis timeouts, rate-limit leases) that a busy second worker broke."""

SPLIT = {"tests/adversarial/test_schemathesis.py"}
"""Files whose tests may go to different workers: their two tests take about 100 s each and use
only session-scoped fixtures, which every worker has anyway."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "serial: run alone after the parallel phase (tests/conftest.py SERIAL)")


@pytest.hookimpl(tryfirst=True)  # the marks must be on before -m deselects and xdist groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each file one xdist group (except :data:`SPLIT`), longest files first, tests in file order."""
    root = Path(str(config.rootpath))

    def file_of(item: pytest.Item) -> str:
        return Path(str(item.path)).relative_to(root).as_posix()

    for item in items:
        if file_of(item) in SERIAL:
            item.add_marker(pytest.mark.serial)
        if file_of(item) not in SPLIT:
            item.add_marker(pytest.mark.xdist_group(file_of(item)))
    if config.getoption("dist", "no") != "no":  # a serial run keeps the plain collection order
        items.sort(key=lambda item: -SECONDS.get(file_of(item), 0))  # stable: file order kept within


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """DSN of a freshly migrated database that lives for the whole test session."""
    base = get_settings().database.url
    name = f"test_{uuid.uuid4().hex[:12]}"
    dsn = with_database(base, name)
    asyncio.run(migrate(dsn))
    yield dsn
    asyncio.run(drop_database(base, name))


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix private to this test session; its keys are deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(get_settings().redis.url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct SQL connection to the test database, for assertions on what was written."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def private_db() -> AsyncIterator[asyncpg.Connection]:
    """A connection to a freshly migrated, empty database of its own, dropped afterwards: for tests
    that need empty tables, or write rows (events without transfers) that the session database's
    ledgers and verifier must never see."""
    base = get_settings().database.url
    name = f"test_private_{uuid.uuid4().hex[:10]}"
    dsn = with_database(base, name)
    await migrate(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()
        await drop_database(base, name)


# The whole platform as real processes, shared by the session, gateway and e2e suites (one
# instance per test session; it starts only when a test asks for it).
from tests.support.platform import api, http_client, platform, tenant_a, tenant_b  # noqa: E402, F401
