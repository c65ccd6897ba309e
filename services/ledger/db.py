"""The ledger's connection pool and the single place where database failures become 503s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import msgspec

from shared.credentials import database_password
from shared.errors import unavailable

ACQUIRE_TIMEOUT_SECONDS = 5.0

DATABASE_DOWN: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,  # admin shutdown, pg_terminate_backend, crash recovery
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    # A connection the server terminated can be handed out before asyncpg has noticed the
    # socket close; its protocol then refuses the next query with this. See `connection`.
    asyncpg.InternalClientError,
)
"""Errors meaning "the database is not reachable right now": answered 503 ``unavailable``."""


async def init_connection(conn: asyncpg.Connection) -> None:
    """Prepare a new connection as the ledger's pool does: ``jsonb`` goes in and out through msgspec
    (metadata as dicts, never strings). Public for a connection opened outside the pool
    (tests/faults/test_verify_cli.py) that must read and write rows exactly as the service does."""
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: msgspec.json.encode(value).decode(),
        decoder=msgspec.json.decode,
        schema="pg_catalog",
        format="text",
    )


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """Cheaper than asyncpg's default reset (a round trip of RESET ALL, UNLISTEN, advisory unlocks
    on every release): the ledger sets no session state, so only an open transaction is undone."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(dsn: str, size: int) -> asyncpg.Pool:
    """A pool that opens connections on demand, so the service starts even while PostgreSQL is down."""
    pool = await asyncpg.create_pool(
        dsn,
        password=database_password(dsn),  # DATABASE_IAM_AUTH: a fresh IAM token per connection
        min_size=0,
        max_size=size,
        init=init_connection,
        reset=_reset_connection,
        max_inactive_connection_lifetime=300,
        command_timeout=30,
        # Re-plan every execution instead of caching a generic plan. A generic plan made while
        # `transfers` was small (or never analysed) sequentially scans it forever after, and the
        # write path's cost would grow with the ledger's history (docs/performance.md, findings).
        # The write functions override it for statements with one possible plan (migration 0015).
        # standard_conforming_strings: store.sql_literal relies on it (a backslash is literal).
        server_settings={"plan_cache_mode": "force_custom_plan", "standard_conforming_strings": "on"},
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection; any database outage inside the block is raised as 503 ``unavailable``."""
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
            try:
                yield conn
            except DATABASE_DOWN:
                conn.terminate()  # its protocol state is unknown: never hand it out again
                # One dead connection usually means all of them (a restart, a failover, a mass
                # pg_terminate_backend): have every idle one replaced before it is handed out.
                await pool.expire_connections()
                raise
    except DATABASE_DOWN as exc:
        raise unavailable("the ledger database is unavailable") from exc
