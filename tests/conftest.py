"""Fixtures over real services: a fresh PostgreSQL database and a private Redis key prefix per run.

Nothing here is mocked. ``./scripts/test`` makes sure PostgreSQL and Redis listen at
``DATABASE_URL`` / ``REDIS_URL`` (starting private ones when needed); each test session creates
its own database (``test_<random>``) so several runs can share one server, and drops it after.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import redis

from cli.local_services import with_database
from services.ledger.migrate import migrate
from shared.settings import get_settings


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """DSN of a freshly migrated database that lives for the whole test session."""
    base = get_settings().database.url
    name = f"test_{uuid.uuid4().hex[:12]}"
    dsn = with_database(base, name)
    asyncio.run(migrate(dsn))
    yield dsn

    async def drop() -> None:
        conn = await asyncpg.connect(with_database(base, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


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


# The whole platform as real processes, shared by the session, gateway and e2e suites (one
# instance per test session; it starts only when a test asks for it).
from tests.support.platform import api, http_client, platform, tenant_a, tenant_b  # noqa: E402, F401
