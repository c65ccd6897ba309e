"""Attribution (issue 14, item 8): every write records the id of the API key that made it.

Two keys of one tenant act in turn, through the public API, over every write path (a lone
transfer, coalesced concurrent ones, a batch, post and void, an account); the key ids are read
back through the API and from the rows themselves. An expiry, which nobody requested, names no key.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from tests.support.api import Api, Tenant
from tests.support.platform import Platform, quick_tenant, session_domain


async def _second_key(platform: Platform, api: Api, tenant: Tenant) -> Tenant:
    async with session_domain(platform) as service:
        key = await service.create_api_key(tenant.tenant_id)
    other = Tenant(tenant.tenant_id, key.key_id, key.api_key)
    other.token = await api.login(other.api_key)
    return other


def _transfer(debit: str, credit: str, amount: int, **fields: object) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "currency": "USD",
        **fields,
    }


async def test_every_write_names_the_key_that_made_it(api: Api, platform: Platform, db: asyncpg.Connection) -> None:
    alice = await quick_tenant(platform, api)
    bob = await _second_key(platform, api, alice)
    assert alice.key_id != bob.key_id

    bank = await api.account(alice, normal_balance="debit")
    shop = await api.account(bob)
    assert (bank["created_by_key_id"], shop["created_by_key_id"]) == (alice.key_id, bob.key_id)

    lone = await api.call("POST", "/v1/transfers", json=_transfer(bank["id"], shop["id"], 5), token=alice.token)
    assert lone.status == 201 and lone.json["created_by_key_id"] == alice.key_id
    assert lone.json["resolved_by_key_id"] is None

    # Concurrent ones share a coalesced ledger call; each keeps its own key.
    bodies = [(alice if i % 2 else bob, _transfer(bank["id"], shop["id"], 1)) for i in range(20)]
    replies = await asyncio.gather(*(api.call("POST", "/v1/transfers", json=b, token=t.token) for t, b in bodies))
    assert [r.json["created_by_key_id"] for r in replies] == [t.key_id for t, _ in bodies]

    batch = await api.call(
        "POST",
        "/v1/transfers/batch",
        token=bob.token,
        json={"transfers": [_transfer(bank["id"], shop["id"], 2) for _ in range(3)]},
    )
    assert batch.status == 200, batch
    assert {r["transfer"]["created_by_key_id"] for r in batch.json["results"]} == {bob.key_id}

    # Alice reserves, Bob posts; Bob reserves, Alice voids; a short reservation expires on its own.
    posted = _transfer(bank["id"], shop["id"], 7, pending=True, timeout_seconds=3600)
    voided = _transfer(bank["id"], shop["id"], 3, pending=True, timeout_seconds=3600)
    expiring = _transfer(bank["id"], shop["id"], 4, pending=True, timeout_seconds=1)
    assert (await api.call("POST", "/v1/transfers", json=posted, token=alice.token)).status == 201
    assert (await api.call("POST", "/v1/transfers", json=voided, token=bob.token)).status == 201
    assert (await api.call("POST", "/v1/transfers", json=expiring, token=alice.token)).status == 201
    post = await api.call("POST", f"/v1/transfers/{posted['id']}/post", token=bob.token)
    void = await api.call("POST", f"/v1/transfers/{voided['id']}/void", token=alice.token)
    assert (post.status, post.json["created_by_key_id"], post.json["resolved_by_key_id"]) == (
        200,
        alice.key_id,
        bob.key_id,
    )
    assert (void.status, void.json["created_by_key_id"], void.json["resolved_by_key_id"]) == (
        200,
        bob.key_id,
        alice.key_id,
    )

    for _ in range(100):  # bounded: until the sweep expired it
        read = await api.call("GET", f"/v1/transfers/{expiring['id']}", token=bob.token)
        if read.json["status"] == "expired":
            break
        await asyncio.sleep(0.05)
    assert (read.json["status"], read.json["created_by_key_id"], read.json["resolved_by_key_id"]) == (
        "expired",
        alice.key_id,
        None,
    )
    history = await api.call("GET", f"/v1/accounts/{shop['id']}/transfers?limit=100", token=alice.token)
    assert {t["id"]: t["resolved_by_key_id"] for t in history.json["data"]}[posted["id"]] == bob.key_id

    # The rows themselves, for every transfer of the tenant: no write without its key.
    rows = await db.fetch(
        "SELECT id, created_by_key_id, resolved_by_key_id, status FROM transfers WHERE tenant_id = $1",
        uuid.UUID(alice.tenant_id),
    )
    assert len(rows) == 1 + 20 + 3 + 3
    assert all(r["created_by_key_id"] in (alice.key_id, bob.key_id) for r in rows)
    resolvers = {uuid.UUID(posted["id"]): bob.key_id, uuid.UUID(voided["id"]): alice.key_id}
    assert {r["id"]: r["resolved_by_key_id"] for r in rows} == {r["id"]: resolvers.get(r["id"]) for r in rows}
    accounts = await db.fetch("SELECT created_by_key_id FROM accounts WHERE tenant_id = $1", uuid.UUID(alice.tenant_id))
    assert sorted(r["created_by_key_id"] for r in accounts) == sorted([alice.key_id, bob.key_id])


async def test_the_ledger_refuses_a_malformed_key_id(api: Api, platform: Platform) -> None:
    """Only the gateway sets X-Key-Id (with the internal credential); a malformed one is refused."""
    headers = {
        "X-Internal-Token": platform.env["INTERNAL_TOKEN"],
        "X-Tenant-Id": str(uuid.uuid4()),
        "X-Key-Id": "not-a-key-id",
    }
    reply = await api.call(
        "POST", "/v1/accounts", json={"currency": "USD"}, headers=headers, base_url=platform.ledger.url
    )
    assert (reply.status, reply.code) == (401, "unauthorized")
