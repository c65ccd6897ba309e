"""The ledger model of docs/api.md sections 8-10 end to end, through the gateway's port with a
real session token: a fee split in one transaction, refunds as reversals (one with an
Idempotency-Key), a freeze, a PATCH with expected_versions, a close; other tenants see nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.api import Api, Reply, Tenant
from tests.support.platform import Platform, quick_tenant


def _problem(reply: Reply, status: int, code: str) -> None:
    assert (reply.status, reply.code) == (status, code), reply
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert {"type", "title", "status", "detail", "code", "request_id"} <= set(reply.json)


def _entry(account: dict[str, Any], direction: str, amount: int) -> dict[str, Any]:
    return {"account_id": account["id"], "direction": direction, "amount": amount, "currency": "USD"}


@pytest.fixture
async def tenant(platform: Platform, api: Api) -> Tenant:
    return await quick_tenant(platform, api)


async def _get(api: Api, tenant: Tenant, path: str) -> dict[str, Any]:
    reply = await api.call("GET", path, token=tenant.token)
    assert reply.status == 200, reply
    body: dict[str, Any] = reply.json
    return body


async def test_fee_split_refund_freeze_patch_close(api: Api, tenant: Tenant, platform: Platform) -> None:
    bank = await api.account(tenant, normal_balance="debit")
    customer = await api.account(tenant, flags={"debits_must_not_exceed_credits": True})
    merchant = await api.account(tenant)
    fees = await api.account(tenant)
    assert (customer["status"], customer["overdraft_limit"], customer["version"]) == ("open", 0, 0)
    assert (await api.transfer(tenant, bank["id"], customer["id"], 10_000)).status == 201

    # A fee split: one atomic transaction, three entries.
    split_id = str(uuid.uuid4())
    split_body = {
        "id": split_id,
        "entries": [_entry(customer, "debit", 10_000), _entry(merchant, "credit", 9_700), _entry(fees, "credit", 300)],
        "metadata": {"order": "o-42"},
    }
    split = await api.call("POST", "/v1/transactions", json=split_body, token=tenant.token)
    assert split.status == 201, split
    assert (split.json["status"], split.json["reversed_by"], split.json["entries"]) == (
        "posted",
        [],
        split_body["entries"],
    )
    assert await _get(api, tenant, f"/v1/transactions/{split_id}") == split.json
    assert (await _get(api, tenant, f"/v1/accounts/{merchant['id']}"))["balances"]["posted"] == 9_700
    assert (await _get(api, tenant, f"/v1/accounts/{fees['id']}"))["balances"]["posted"] == 300
    replay = await api.call("POST", "/v1/transactions", json=split_body, token=tenant.token)
    assert replay.status == 200 and replay.json == split.json
    unbalanced = {**split_body, "id": str(uuid.uuid4())}
    unbalanced["entries"] = [*split_body["entries"][:2], _entry(fees, "credit", 299)]
    _problem(await api.call("POST", "/v1/transactions", json=unbalanced, token=tenant.token), 422, "unbalanced")
    too_many = {"id": str(uuid.uuid4()), "entries": [_entry(fees, "debit", 1)] * 101}
    _problem(await api.call("POST", "/v1/transactions", json=too_many, token=tenant.token), 400, "invalid_request")

    # A partial refund of a payment, as a reversal, with an Idempotency-Key: the retry is replayed.
    payment = await api.transfer(tenant, merchant["id"], customer["id"], 2_500)
    assert payment.status == 201
    key = {"Idempotency-Key": f"refund-{uuid.uuid4()}"}
    refund_body = {"id": str(uuid.uuid4()), "amount": 1_000, "metadata": {"reason": "damaged"}}
    path = f"/v1/transfers/{payment.json['id']}/reverse"
    refund = await api.call("POST", path, json=refund_body, token=tenant.token, headers=key)
    assert refund.status == 201, refund
    assert (refund.json["debit_account_id"], refund.json["credit_account_id"], refund.json["reverses"]) == (
        customer["id"],
        merchant["id"],
        payment.json["id"],
    )
    again = await api.call("POST", path, json=refund_body, token=tenant.token, headers=key)
    assert again.status == 201 and again.json == refund.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    reused = await api.call("POST", path, json={**refund_body, "amount": 2}, token=tenant.token, headers=key)
    _problem(reused, 422, "idempotency_key_reused")
    # Without the key, the reversal's own id makes the retry safe too.
    by_id = await api.call("POST", path, json=refund_body, token=tenant.token)
    assert by_id.status == 200 and by_id.json == refund.json
    original = await _get(api, tenant, f"/v1/transfers/{payment.json['id']}")
    assert (original["reversed_amount"], original["reverses"]) == (1_000, None)
    over = await api.call("POST", path, json={"id": str(uuid.uuid4()), "amount": 1_501}, token=tenant.token)
    _problem(over, 422, "amount_exceeds_reversible")

    # The whole fee split refunded: every entry swapped, linked both ways.
    reversal_id = str(uuid.uuid4())
    undone = await api.call(
        "POST", f"/v1/transactions/{split_id}/reverse", json={"id": reversal_id}, token=tenant.token
    )
    assert undone.status == 201, undone
    assert [e["direction"] for e in undone.json["entries"]] == ["credit", "debit", "debit"]
    assert undone.json["reverses"] == split_id
    assert (await _get(api, tenant, f"/v1/transactions/{split_id}"))["reversed_by"] == [reversal_id]
    twice = await api.call(
        "POST", f"/v1/transactions/{split_id}/reverse", json={"id": str(uuid.uuid4())}, token=tenant.token
    )
    _problem(twice, 422, "amount_exceeds_reversible")

    # Freeze: no new movement, but a reservation made before may still be posted (single transfer
    # writes go through the gateway's coalesced path); unfreeze: movements again.
    held = await api.transfer(tenant, customer["id"], merchant["id"], 7, pending=True)
    assert held.status == 201, held
    frozen = await api.call("POST", f"/v1/accounts/{merchant['id']}/freeze", token=tenant.token)
    assert frozen.status == 200 and frozen.json["status"] == "frozen", frozen
    _problem(await api.transfer(tenant, customer["id"], merchant["id"], 1), 422, "account_frozen")
    posted = await api.call("POST", f"/v1/transfers/{held.json['id']}/post", token=tenant.token)
    assert posted.status == 200 and posted.json["status"] == "posted", posted
    unfrozen = await api.call("POST", f"/v1/accounts/{merchant['id']}/unfreeze", token=tenant.token)
    assert unfrozen.status == 200 and unfrozen.json["status"] == "open"

    # expected_versions on a single transfer (coalesced by the gateway) reaches the ledger intact.
    current = await _get(api, tenant, f"/v1/accounts/{fees['id']}")
    stale = await api.transfer(
        tenant, fees["id"], bank["id"], 1, expected_versions={fees["id"]: current["version"] + 1}
    )
    _problem(stale, 422, "version_mismatch")
    fresh = await api.transfer(tenant, fees["id"], bank["id"], 1, expected_versions={fees["id"]: current["version"]})
    assert fresh.status == 201, fresh

    # PATCH with optimistic concurrency: a credit line for the customer.
    current = await _get(api, tenant, f"/v1/accounts/{customer['id']}")
    spend = current["balances"]["available"] + 500
    _problem(await api.transfer(tenant, customer["id"], fees["id"], spend), 422, "exceeds_credits")
    patch_body = {"overdraft_limit": 500, "metadata": {"tier": "gold"}, "expected_versions": {customer["id"]: 0}}
    stale = await api.call("PATCH", f"/v1/accounts/{customer['id']}", json=patch_body, token=tenant.token)
    _problem(stale, 422, "version_mismatch")
    patch_body["expected_versions"] = {customer["id"]: current["version"]}
    patch_key = {"Idempotency-Key": f"limit-{uuid.uuid4()}"}
    patched = await api.call(
        "PATCH", f"/v1/accounts/{customer['id']}", json=patch_body, token=tenant.token, headers=patch_key
    )
    # A retry with the key (an answer lost on the way) gets the kept answer, not version_mismatch.
    retried = await api.call(
        "PATCH", f"/v1/accounts/{customer['id']}", json=patch_body, token=tenant.token, headers=patch_key
    )
    assert (retried.status, retried.json) == (patched.status, patched.json), retried
    assert retried.headers.get("Idempotent-Replayed") == "true"
    assert patched.status == 200, patched
    assert (patched.json["overdraft_limit"], patched.json["metadata"], patched.json["version"]) == (
        500,
        {"tier": "gold"},
        current["version"] + 1,
    )
    assert patched.json["balances"]["available"] == current["balances"]["available"] + 500
    assert (await api.transfer(tenant, customer["id"], fees["id"], spend)).status == 201
    bad_limit = await api.call(
        "PATCH", f"/v1/accounts/{customer['id']}", json={"overdraft_limit": -1}, token=tenant.token
    )
    _problem(bad_limit, 400, "invalid_request")

    # Close: refused while money is held, final once empty.
    _problem(await api.call("POST", f"/v1/accounts/{fees['id']}/close", token=tenant.token), 422, "account_not_empty")
    empty = await api.account(tenant)
    closed = await api.call("POST", f"/v1/accounts/{empty['id']}/close", token=tenant.token)
    assert closed.status == 200 and closed.json["status"] == "closed"
    _problem(await api.transfer(tenant, fees["id"], empty["id"], 1), 422, "account_closed")
    _problem(await api.call("POST", f"/v1/accounts/{empty['id']}/freeze", token=tenant.token), 422, "account_closed")

    # Another tenant: every new path answers as for ids that do not exist.
    intruder = await quick_tenant(platform, api, "intruder")
    for method, path_, body in (
        ("GET", f"/v1/transactions/{split_id}", None),
        ("POST", f"/v1/transactions/{split_id}/reverse", {"id": str(uuid.uuid4())}),
        ("POST", f"/v1/transfers/{payment.json['id']}/reverse", {"id": str(uuid.uuid4())}),
        ("POST", f"/v1/accounts/{merchant['id']}/freeze", None),
        ("PATCH", f"/v1/accounts/{merchant['id']}", {"metadata": {}}),
    ):
        reply = await api.call(method, path_, json=body, token=intruder.token)
        assert reply.status == 404, (path_, reply)
    assert (await _get(api, tenant, f"/v1/accounts/{merchant['id']}"))["status"] == "open"
