"""Coalesced transfer writes (ADR 0006): one ledger call for many requests, each answered exactly as
alone, applied in arrival order. Against the real ledger process and database: nothing is mocked;
the only instrument is a ServiceClient that counts the HTTP calls it makes.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.gateway.coalescer import Coalescer
from shared.http import HttpPool, ServiceClient, UpstreamResponse
from shared.transfer_group import GroupItem
from tests.support.api import Api, Tenant
from tests.support.platform import Platform, quick_tenant

JSON = "application/json"


class CountingClient(ServiceClient):
    """The real service-to-service client, counting the calls it makes."""

    calls = 0

    async def request(self, *args: Any, **kwargs: Any) -> UpstreamResponse:
        self.calls += 1
        return await super().request(*args, **kwargs)


@pytest.fixture
async def ledger_client(platform: Platform) -> AsyncIterator[CountingClient]:
    pool = HttpPool()
    await pool.start()
    try:
        yield CountingClient("ledger", platform.ledger.url, platform.env["INTERNAL_TOKEN"], 10.0, pool)
    finally:
        await pool.close()


def _body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def _transfer(debit: str, credit: str, amount: int, transfer_id: str | None = None, **extra: Any) -> bytes:
    return _body(
        id=transfer_id or str(uuid.uuid4()),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        currency="USD",
        **extra,
    )


async def _lone(client: ServiceClient, tenant: Tenant, item: GroupItem) -> UpstreamResponse:
    """The same write as a lone call to the ledger's public-shaped route."""
    path = "/v1/transfers" if item.kind == 0 else f"/v1/transfers/{item.target}/{'post' if item.kind == 1 else 'void'}"
    headers = {"X-Tenant-Id": tenant.tenant_id, "X-Request-Id": item.request_id}
    if item.content_type:
        headers["Content-Type"] = item.content_type
    return await client.request("POST", path, body=item.body or None, headers=headers)


async def test_each_item_gets_exactly_the_lone_response(
    api: Api, platform: Platform, ledger_client: CountingClient
) -> None:
    tenant = await quick_tenant(platform, api)
    bank = await api.account(tenant, normal_balance="debit")
    alice = await api.account(tenant, flags={"debits_must_not_exceed_credits": True})
    bob = await api.account(tenant)
    funded = str(uuid.uuid4())
    assert (await api.transfer(tenant, bank["id"], alice["id"], 1_000, id=funded)).status == 201

    def item(kind: int, body: bytes, target: str = "", content_type: str = JSON) -> GroupItem:
        return GroupItem(kind, tenant.tenant_id, target, content_type, body, f"req-{uuid.uuid4().hex[:12]}")

    # Requests whose answer does not change the ledger: asking twice gives the same answer.
    unchanged = [
        item(0, _transfer(bank["id"], alice["id"], 1_000, funded)),  # replay: 200
        item(0, _transfer(bank["id"], alice["id"], 5, funded)),  # id_conflict: 409
        item(0, _transfer(alice["id"], bob["id"], 10_000)),  # exceeds_credits: 422
        item(0, _transfer(alice["id"], alice["id"], 1)),  # same_account: 422
        item(0, _transfer(str(uuid.uuid4()), bob["id"], 1)),  # account_not_found: 404
        item(0, _transfer(bank["id"], bob["id"], 0)),  # schema: 400
        item(0, b'{"id": '),  # malformed JSON: 400
        item(0, _transfer(bank["id"], bob["id"], 1), content_type="text/plain"),  # 415
        item(0, _transfer(bank["id"], bob["id"], 1), content_type=""),  # no media type: 415
        item(1, b"", target="not-a-uuid"),  # 400 transfer_id
        item(2, b"", target=str(uuid.uuid4())),  # transfer_not_found: 404
        item(1, b"", target=funded),  # transfer_not_pending: 422
    ]
    coalescer = Coalescer(ledger_client, max_inflight=1, max_items=64)
    grouped = await asyncio.gather(*(coalescer.submit(i) for i in unchanged))
    lone = [await _lone(ledger_client, tenant, i) for i in unchanged]
    for request, (g, single) in zip(unchanged, zip(grouped, lone, strict=True), strict=True):
        assert (g.status, g.content_type, g.body) == (single.status, single.content_type, single.body), request
        assert g.retry_after == single.retry_after
    assert [g.status for g in grouped] == [200, 409, 422, 422, 404, 400, 400, 415, 415, 400, 404, 422]
    assert all(
        json.loads(g.body)["request_id"] == i.request_id
        for g, i in zip(grouped, unchanged, strict=True)
        if g.status >= 400
    )
    # 12 concurrent items, at most 2 ledger calls (the first leaves alone, at once; the rest together)
    # plus the 12 lone calls made for comparison.
    assert ledger_client.calls <= 2 + len(unchanged)

    # A creation answers 201 with the transfer, whose replay (alone) answers 200 with the same body.
    created = item(0, _transfer(bank["id"], bob["id"], 7))
    first = await coalescer.submit(created)
    again = await _lone(ledger_client, tenant, created)
    assert (first.status, again.status) == (201, 200)
    assert first.body == again.body


async def test_items_are_applied_one_at_a_time_in_arrival_order(
    api: Api, platform: Platform, ledger_client: CountingClient
) -> None:
    tenant = await quick_tenant(platform, api)
    bank = await api.account(tenant, normal_balance="debit")
    wallet = await api.account(tenant, flags={"debits_must_not_exceed_credits": True})
    shop = await api.account(tenant)
    pending = str(uuid.uuid4())

    def item(kind: int, body: bytes = b"", target: str = "") -> GroupItem:
        return GroupItem(kind, tenant.tenant_id, target, JSON if body else "", body, uuid.uuid4().hex)

    # One call (a lone first call is made to occupy the only slot, so the rest queue together):
    # fund 100, spend 60 (ok), spend 60 (refused: 40 left), reserve 30, post it, void it (too late).
    coalescer = Coalescer(ledger_client, max_inflight=1, max_items=64)
    blocker = coalescer.submit(item(0, _transfer(bank["id"], shop["id"], 1)))
    ordered = [
        item(0, _transfer(bank["id"], wallet["id"], 100)),
        item(0, _transfer(wallet["id"], shop["id"], 60)),
        item(0, _transfer(wallet["id"], shop["id"], 60)),
        item(0, _transfer(wallet["id"], shop["id"], 30, pending, pending=True, timeout_seconds=3600)),
        item(1, target=pending),
        item(2, target=pending),
    ]
    calls_before = ledger_client.calls
    results = await asyncio.gather(blocker, *(coalescer.submit(i) for i in ordered))
    assert ledger_client.calls - calls_before == 2  # the blocker's call, then one for all six
    statuses = [(r.status, json.loads(r.body).get("code") or json.loads(r.body).get("status")) for r in results[1:]]
    assert statuses == [
        (201, "posted"),
        (201, "posted"),
        (422, "exceeds_credits"),
        (201, "pending"),
        (200, "posted"),
        (422, "transfer_not_pending"),
    ]
    balance = (await api.call("GET", f"/v1/accounts/{wallet['id']}", token=tenant.token)).json["balances"]
    assert balance == {"posted": 10, "pending": 10, "available": 10}


async def test_a_group_mixes_tenants_without_mixing_their_outcomes(
    api: Api, platform: Platform, ledger_client: CountingClient
) -> None:
    first, second = await quick_tenant(platform, api), await quick_tenant(platform, api)
    a_bank, a_user = await api.account(first, normal_balance="debit"), await api.account(first)
    b_user = await api.account(second)
    shared_id = str(uuid.uuid4())
    coalescer = Coalescer(ledger_client, max_inflight=1, max_items=64)
    items = [
        GroupItem(0, first.tenant_id, "", JSON, _transfer(a_bank["id"], a_user["id"], 5, shared_id), "a"),
        # The second tenant names the first tenant's accounts: they do not exist for it.
        GroupItem(0, second.tenant_id, "", JSON, _transfer(a_bank["id"], b_user["id"], 5, shared_id), "b"),
        GroupItem(0, "not-a-tenant", "", JSON, _transfer(a_bank["id"], a_user["id"], 5), "c"),
    ]
    results = await asyncio.gather(*(coalescer.submit(i) for i in items))
    assert [r.status for r in results] == [201, 404, 401]
    assert json.loads(results[1].body)["code"] == "account_not_found"


async def test_the_gateway_answers_concurrent_transfers_as_alone(api: Api, platform: Platform) -> None:
    """Through the public API (the gateway coalesces by default): 60 concurrent requests of every
    outcome, then the ledger holds exactly the ones answered 201."""
    tenant = await quick_tenant(platform, api)
    bank = await api.account(tenant, normal_balance="debit")
    capped = await api.account(tenant, flags={"debits_must_not_exceed_credits": True})
    other = await api.account(tenant)
    assert (await api.transfer(tenant, bank["id"], capped["id"], 50)).status == 201
    ids = [str(uuid.uuid4()) for _ in range(60)]
    bodies = [
        {
            "id": ids[i],
            "debit_account_id": capped["id"] if i % 3 == 0 else bank["id"],
            "credit_account_id": other["id"],
            "amount": 10,
            "currency": "USD",
        }
        for i in range(60)
    ]
    replies = await asyncio.gather(*(api.call("POST", "/v1/transfers", json=b, token=tenant.token) for b in bodies))
    capped_ok = [r for i, r in enumerate(replies) if i % 3 == 0 and r.status == 201]
    assert len(capped_ok) == 5  # 50 available, 10 each: exactly five of the twenty succeed
    assert all(r.status == 201 for i, r in enumerate(replies) if i % 3)
    assert {r.code for i, r in enumerate(replies) if i % 3 == 0 and r.status != 201} == {"exceeds_credits"}
    for reply in replies:
        assert reply.headers["X-Request-Id"] and "RateLimit-Remaining" in reply.headers
        if reply.status >= 400:
            assert reply.json["request_id"] == reply.headers["X-Request-Id"]
    history = await api.call("GET", f"/v1/accounts/{other['id']}/transfers?limit=100", token=tenant.token)
    stored = {t["id"] for t in history.json["data"]}
    assert stored == {ids[i] for i, r in enumerate(replies) if r.status == 201}
    assert (await api.call("GET", f"/v1/accounts/{capped['id']}", token=tenant.token)).json["balances"]["posted"] == 0
