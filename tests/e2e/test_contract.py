"""Every status and error code of docs/api.md section 6, reached through the gateway's port."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from shared.ledger_api import MAX_BATCH_ITEMS
from tests.support.api import Api, Reply, Tenant
from tests.support.platform import Platform, quick_tenant

MAX = 2**63 - 1


def _is_problem(reply: Reply, status: int, code: str) -> None:
    assert (reply.status, reply.code) == (status, code), reply
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    body = reply.json
    assert {"type", "title", "status", "detail", "code", "request_id"} <= set(body)
    assert body["status"] == status


def _transfer(debit: str, credit: str, amount: object, currency: str = "USD", **extra: object) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "currency": currency,
        **extra,
    }


@pytest.fixture
async def tenant(platform: Platform, api: Api) -> Tenant:
    return await quick_tenant(platform, api)


async def test_walkthrough_open_accounts_move_money_read_balances(api: Api, tenant: Tenant) -> None:
    bank = await api.account(tenant, normal_balance="debit")
    alice = await api.account(tenant, flags={"debits_must_not_exceed_credits": True})
    bob = await api.account(tenant)
    assert (await api.transfer(tenant, bank["id"], alice["id"], 10_000)).status == 201
    moved = await api.transfer(tenant, alice["id"], bob["id"], 2_500)
    assert moved.status == 201
    assert moved.json["status"] == "posted"
    got = await api.call("GET", f"/v1/accounts/{alice['id']}", token=tenant.token)
    assert got.json["balances"] == {"posted": 7_500, "pending": 7_500, "available": 7_500}
    history = await api.call("GET", f"/v1/accounts/{alice['id']}/transfers", token=tenant.token)
    assert [t["amount"] for t in history.json["data"]] == [10_000, 2_500]
    at = await api.call("GET", f"/v1/accounts/{bob['id']}/balances?at={moved.json['created_at']}", token=tenant.token)
    assert at.status == 200, at
    assert at.json["balances"]["posted"] == 2_500
    read = await api.call("GET", f"/v1/transfers/{moved.json['id']}", token=tenant.token)
    assert read.json == moved.json


async def test_success_statuses_200_201_204(api: Api, tenant: Tenant) -> None:
    account_id = str(uuid.uuid4())
    created = await api.call("POST", "/v1/accounts", json={"id": account_id, "currency": "USD"}, token=tenant.token)
    assert created.status == 201
    repeated = await api.call("POST", "/v1/accounts", json={"id": account_id, "currency": "USD"}, token=tenant.token)
    assert repeated.status == 200
    assert repeated.json == created.json
    logout = await api.call("DELETE", "/v1/sessions/current", token=tenant.token)
    assert logout.status == 204


async def test_400_invalid_request(api: Api, tenant: Tenant) -> None:
    a, b = await api.account(tenant), await api.account(tenant)
    for amount in [1.5, "10", 0, -1, MAX + 1]:
        reply = await api.call("POST", "/v1/transfers", json=_transfer(a["id"], b["id"], amount), token=tenant.token)
        _is_problem(reply, 400, "invalid_request")
    unknown_field = await api.call(
        "POST", "/v1/accounts", json={"currency": "USD", "colour": "red"}, token=tenant.token
    )
    _is_problem(unknown_field, 400, "invalid_request")
    malformed = await api.call(
        "POST", "/v1/accounts", data=b"{nope", token=tenant.token, headers={"Content-Type": "application/json"}
    )
    _is_problem(malformed, 400, "invalid_request")
    _is_problem(await api.call("GET", "/v1/accounts?limit=0", token=tenant.token), 400, "invalid_request")
    _is_problem(await api.call("GET", "/v1/accounts?cursor=garbage", token=tenant.token), 400, "invalid_request")


async def test_401_codes(api: Api) -> None:
    _is_problem(await api.call("POST", "/v1/sessions", json={"api_key": "nope"}), 401, "invalid_api_key")
    _is_problem(await api.call("GET", "/v1/transfers/" + str(uuid.uuid4())), 401, "unauthorized")


async def test_404_codes(api: Api, tenant: Tenant) -> None:
    missing = str(uuid.uuid4())
    _is_problem(await api.call("GET", f"/v1/accounts/{missing}", token=tenant.token), 404, "account_not_found")
    _is_problem(await api.call("GET", f"/v1/transfers/{missing}", token=tenant.token), 404, "transfer_not_found")
    _is_problem(await api.call("GET", "/v1/nothing-here", token=tenant.token), 404, "not_found")
    a = await api.account(tenant)
    reply = await api.call("POST", "/v1/transfers", json=_transfer(missing, a["id"], 5), token=tenant.token)
    _is_problem(reply, 404, "account_not_found")


async def test_409_id_conflict(api: Api, tenant: Tenant) -> None:
    account_id = str(uuid.uuid4())
    await api.call("POST", "/v1/accounts", json={"id": account_id, "currency": "USD"}, token=tenant.token)
    reply = await api.call("POST", "/v1/accounts", json={"id": account_id, "currency": "EUR"}, token=tenant.token)
    _is_problem(reply, 409, "id_conflict")
    a, b = await api.account(tenant), await api.account(tenant)
    body = _transfer(a["id"], b["id"], 5)
    assert (await api.call("POST", "/v1/transfers", json=body, token=tenant.token)).status == 201
    again = await api.call("POST", "/v1/transfers", json={**body, "amount": 6}, token=tenant.token)
    _is_problem(again, 409, "id_conflict")


async def test_413_codes(api: Api, tenant: Tenant) -> None:
    a, b = await api.account(tenant), await api.account(tenant)
    items = [_transfer(a["id"], b["id"], 1) for _ in range(MAX_BATCH_ITEMS + 1)]
    reply = await api.call("POST", "/v1/transfers/batch", json={"transfers": items}, token=tenant.token)
    _is_problem(reply, 413, "batch_too_large")
    huge = b'{"currency": "USD", "metadata": {"k": "' + b"x" * (4 * 1024 * 1024) + b'"}}'
    reply = await api.call(
        "POST", "/v1/accounts", data=huge, token=tenant.token, headers={"Content-Type": "application/json"}
    )
    _is_problem(reply, 413, "payload_too_large")


async def test_415_unsupported_media_type(api: Api, tenant: Tenant) -> None:
    reply = await api.call(
        "POST",
        "/v1/accounts",
        data=b"currency=USD",
        token=tenant.token,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _is_problem(reply, 415, "unsupported_media_type")


async def test_422_transfer_rules(api: Api, tenant: Tenant) -> None:
    a, b = await api.account(tenant), await api.account(tenant)
    eur = await api.account(tenant, currency="EUR")
    strict_debit = await api.account(tenant, flags={"debits_must_not_exceed_credits": True})
    strict_credit = await api.account(tenant, flags={"credits_must_not_exceed_debits": True})
    cases = [
        (_transfer(a["id"], a["id"], 5), "same_account"),
        (_transfer(a["id"], eur["id"], 5), "currency_mismatch"),
        (_transfer(strict_debit["id"], b["id"], 5), "exceeds_credits"),
        (_transfer(b["id"], strict_credit["id"], 5), "exceeds_debits"),
    ]
    for body, code in cases:
        _is_problem(await api.call("POST", "/v1/transfers", json=body, token=tenant.token), 422, code)
    assert (await api.transfer(tenant, a["id"], b["id"], MAX)).status == 201
    _is_problem(await api.transfer(tenant, a["id"], b["id"], 1), 422, "overflow")


async def test_422_two_phase_rules(api: Api, tenant: Tenant) -> None:
    a, b = await api.account(tenant), await api.account(tenant)
    pending = (await api.transfer(tenant, a["id"], b["id"], 100, pending=True)).json
    too_much = await api.call("POST", f"/v1/transfers/{pending['id']}/post", json={"amount": 101}, token=tenant.token)
    _is_problem(too_much, 422, "amount_exceeds_pending")
    posted = await api.call("POST", f"/v1/transfers/{pending['id']}/post", json={"amount": 60}, token=tenant.token)
    assert posted.status == 200
    assert (posted.json["status"], posted.json["posted_amount"]) == ("posted", 60)
    again = await api.call("POST", f"/v1/transfers/{pending['id']}/void", token=tenant.token)
    _is_problem(again, 422, "transfer_not_pending")
    unknown = await api.call("POST", f"/v1/transfers/{uuid.uuid4()}/void", token=tenant.token)
    _is_problem(unknown, 404, "transfer_not_found")

    expiring = (await api.transfer(tenant, a["id"], b["id"], 10, pending=True, timeout_seconds=1)).json
    for _ in range(200):  # wait for the ledger to expire it (no timing is asserted, only the outcome)
        status = (await api.call("GET", f"/v1/transfers/{expiring['id']}", token=tenant.token)).json["status"]
        if status == "expired":
            break
        await asyncio.sleep(0.05)
    late = await api.call("POST", f"/v1/transfers/{expiring['id']}/post", token=tenant.token)
    _is_problem(late, 422, "pending_expired")


async def test_422_batch_failed_and_idempotency_key_reused(api: Api, tenant: Tenant) -> None:
    a, b = await api.account(tenant), await api.account(tenant)
    batch = {"atomic": True, "transfers": [_transfer(a["id"], b["id"], 5), _transfer(a["id"], a["id"], 5)]}
    reply = await api.call("POST", "/v1/transfers/batch", json=batch, token=tenant.token)
    _is_problem(reply, 422, "batch_failed")
    assert [e["index"] for e in reply.json["errors"]] == [1]
    headers = {"Idempotency-Key": "reuse-me"}
    first = await api.call("POST", "/v1/accounts", json={"currency": "USD"}, token=tenant.token, headers=headers)
    assert first.status == 201
    reused = await api.call("POST", "/v1/accounts", json={"currency": "GBP"}, token=tenant.token, headers=headers)
    _is_problem(reused, 422, "idempotency_key_reused")


async def test_tenants_cannot_see_or_move_each_others_money(api: Api, platform: Platform) -> None:
    owner, intruder = await quick_tenant(platform, api), await quick_tenant(platform, api)
    a, b = await api.account(owner), await api.account(owner)
    mine = await api.account(intruder)
    transfer = (await api.transfer(owner, a["id"], b["id"], 50, pending=True)).json
    unknown = str(uuid.uuid4())

    async def same_as_unknown(method: str, path: str, known: str, body: object = None) -> None:
        theirs = await api.call(method, path.format(known), json=body, token=intruder.token)
        nobody = await api.call(method, path.format(unknown), json=body, token=intruder.token)
        assert (theirs.status, theirs.code) == (nobody.status, nobody.code) == (404, theirs.code), path
        assert msgspec.json.decode(theirs.body)["detail"].replace(known, unknown) == nobody.json["detail"]

    for path in [
        "/v1/accounts/{}",
        "/v1/accounts/{}/transfers",
        "/v1/accounts/{}/balances?at=2030-01-01T00:00:00.000000Z",
    ]:
        await same_as_unknown("GET", path, a["id"])
    await same_as_unknown("GET", "/v1/transfers/{}", transfer["id"])
    await same_as_unknown("POST", "/v1/transfers/{}/post", transfer["id"])
    await same_as_unknown("POST", "/v1/transfers/{}/void", transfer["id"])
    steal = await api.call("POST", "/v1/transfers", json=_transfer(a["id"], mine["id"], 50), token=intruder.token)
    _is_problem(steal, 404, "account_not_found")
    listed = await api.call("GET", "/v1/accounts", token=intruder.token)
    assert [x["id"] for x in listed.json["data"]] == [mine["id"]]
    # The owner's money did not move.
    still = await api.call("GET", f"/v1/transfers/{transfer['id']}", token=owner.token)
    assert still.json["status"] == "pending"
    # Client-chosen ids are per tenant: the intruder may use the owner's account id for its own.
    own = await api.call("POST", "/v1/accounts", json={"id": a["id"], "currency": "EUR"}, token=intruder.token)
    assert own.status == 201
