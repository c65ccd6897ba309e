"""List cursors are opaque and tenant-scoped (issue 14, item 5).

A cursor used to be the base64 of a global row counter (``a:<pk>``): readable, so a tenant could
watch how many accounts and transfers everyone else created, and forgeable, so any position could
be asked for. Now a cursor opens only for the tenant and the list it was made for; anything else,
however well-formed, is 400 ``invalid_request``.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from typing import Any

import asyncpg

from tests.support.api import Api, Tenant
from tests.support.platform import Platform, quick_tenant
from tests.support.processes import ServiceProcess, free_port


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def _page(api: Api, tenant: Tenant, path: str, cursor: str | None = None) -> tuple[int, Any]:
    query = "limit=1" + (f"&cursor={cursor}" if cursor is not None else "")
    reply = await api.call("GET", f"{path}?{query}", token=tenant.token)
    return reply.status, reply.json


async def test_cursors_reveal_no_counter_and_open_only_for_their_tenant_and_list(
    api: Api, platform: Platform, db: asyncpg.Connection
) -> None:
    alice = await quick_tenant(platform, api, "cursor-alice")
    bob = await quick_tenant(platform, api, "cursor-bob")
    a1, a2, a3 = [await api.account(alice) for _ in range(3)]
    b1, b2 = [await api.account(bob) for _ in range(2)]
    for _ in range(2):
        assert (await api.transfer(alice, a1["id"], a2["id"], 1)).status == 201

    # Paging still walks every account, oldest first.
    status, page = await _page(api, alice, "/v1/accounts")
    assert status == 200 and [a["id"] for a in page["data"]] == [a1["id"]]
    cursor = page["next_cursor"]
    status, second = await _page(api, alice, "/v1/accounts", cursor)
    assert status == 200 and [a["id"] for a in second["data"]] == [a2["id"]], second
    history = (await _page(api, alice, f"/v1/accounts/{a1['id']}/transfers"))[1]["next_cursor"]
    assert history

    # Opaque: the global counter behind the position is nowhere in it, in text or in binary.
    pk = await db.fetchval("SELECT pk FROM accounts WHERE id = $1", uuid.UUID(a1["id"]))
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert pk.to_bytes(8, "big") not in raw and not re.search(rb"[ah]:[0-9]", raw), raw
    if pk >= 1000:  # shorter digit strings turn up in random bytes by chance
        assert str(pk).encode() not in raw, raw
    assert cursor[:4] != second["next_cursor"][:4]

    # Another tenant's cursor does not open, whether or not it has rows after that position.
    status, body = await _page(api, bob, "/v1/accounts", cursor)
    assert (status, body["code"]) == (400, "invalid_request"), body
    # Nor does one of another list.
    status, body = await _page(api, alice, "/v1/accounts", history)
    assert (status, body["code"]) == (400, "invalid_request"), body
    status, body = await _page(api, alice, f"/v1/accounts/{a1['id']}/transfers", cursor)
    assert (status, body["code"]) == (400, "invalid_request"), body

    # Forged positions, in the old format and altered copies of a real cursor.
    altered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BA")
    forged = [
        _b64("a:0"),
        _b64("a:1"),
        _b64(f"a:{2**40}"),
        _b64("h:0"),
        altered,
        cursor[::-1],
        cursor + "A",
        cursor[1:],
    ]
    for fake in forged:
        status, body = await _page(api, alice, "/v1/accounts", fake)
        assert (status, body["code"]) == (400, "invalid_request"), (fake, body)
    assert b1 and b2 and a3


async def test_a_cursor_outlives_the_process_and_the_credential(api: Api, platform: Platform) -> None:
    """The cursor secret is the database's, not a credential's: a ledger process with another
    ``INTERNAL_TOKEN`` (a task started after a rotation) opens a cursor the first one made."""
    tenant = await quick_tenant(platform, api, "cursor-rotation")
    first, second = await api.account(tenant), await api.account(tenant)
    status, page = await _page(api, tenant, "/v1/accounts")
    assert status == 200 and page["next_cursor"], page
    token = secrets.token_urlsafe(48)
    port = free_port()
    ledger = ServiceProcess("ledger", port, {**platform.env, "LEDGER_PORT": str(port), "INTERNAL_TOKEN": token})
    try:
        ledger.start()
        reply = await api.call(
            "GET",
            f"/v1/accounts?limit=1&cursor={page['next_cursor']}",
            base_url=ledger.url,
            headers={"X-Internal-Token": token, "X-Tenant-Id": tenant.tenant_id},
        )
    finally:
        ledger.stop()
    assert reply.status == 200, reply
    assert [a["id"] for a in reply.json["data"]] == [second["id"]] and first["id"] != second["id"]
