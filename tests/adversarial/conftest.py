"""Hostile input through the gateway of the shared platform, with SQL checks that nothing was written.

Each test works in a tenant of its own, so "nothing written" is a plain count of that tenant's rows.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import asyncpg
import pytest

from tests.support.api import Api, Reply, Tenant
from tests.support.platform import Platform, quick_tenant


@dataclass
class Victim:
    """A fresh tenant with two USD accounts, and what the database holds for it."""

    tenant: Tenant
    debit: str
    credit: str


@pytest.fixture
async def victim(platform: Platform, api: Api) -> Victim:
    tenant = await quick_tenant(platform, api, "victim")
    debit = await api.account(tenant, normal_balance="debit")
    credit = await api.account(tenant)
    return Victim(tenant, debit["id"], credit["id"])


async def rows_of(db: asyncpg.Connection, tenant: Tenant) -> tuple[int, int, int]:
    """(accounts, transfers, sum of every counter) stored for the tenant."""
    tenant_id = uuid.UUID(tenant.tenant_id)
    accounts = await db.fetchval("SELECT count(*) FROM accounts WHERE tenant_id = $1", tenant_id)
    transfers = await db.fetchval("SELECT count(*) FROM transfers WHERE tenant_id = $1", tenant_id)
    counters = await db.fetchval(
        "SELECT coalesce(sum(debits_posted + credits_posted + debits_pending + credits_pending), 0) "
        "FROM accounts WHERE tenant_id = $1",
        tenant_id,
    )
    return accounts, transfers, int(counters)


def assert_problem(reply: Reply, status: int, code: str | None = None) -> None:
    assert reply.status == status, reply
    assert reply.headers["Content-Type"].startswith("application/problem+json"), reply
    if code is not None:
        assert reply.code == code, reply
    assert reply.headers.get("X-Request-Id"), reply


async def raw_exchange(port: int, request: bytes, read_timeout: float = 30.0) -> bytes:
    """Send raw bytes, then read until the server closes (or stops sending for ``read_timeout``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        received = b""
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), read_timeout)
            if not chunk:
                return received
            received += chunk
    finally:
        writer.close()
