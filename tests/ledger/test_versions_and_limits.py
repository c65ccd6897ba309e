"""Overdraft limits and optimistic concurrency (docs/api.md section 10): the limit in both
directions and past 2^63, PATCH, expected_versions on transfers, batch items and PATCH. Run once per
write path."""

from __future__ import annotations

import uuid
from typing import Any

from tests.ledger.model_support import (
    MAX,
    action,
    credit,
    debit,
    fund,
    get_account,
    new_id,
    patch,
    problem,
    state,
    transaction,
    version,
)
from tests.support.http import ApiClient


async def test_expected_versions_validation(ledger: ApiClient) -> None:
    a, b, c = [await ledger.create_account() for _ in range(3)]
    for versions in ({c["id"]: 0}, {a["id"]: "0"}, {a["id"]: 0.0}, {a["id"]: -1}, {a["id"]: None}, {"x": 0}, []):
        problem(await ledger.transfer(a["id"], b["id"], 1, expected_versions=versions), 400, "invalid_request")
        problem(await patch(ledger, a, {"expected_versions": versions}), 400, "invalid_request")
    # PATCH may only name its own account.
    problem(await patch(ledger, a, {"metadata": {}, "expected_versions": {b["id"]: 0}}), 400, "invalid_request")
    assert await state(ledger, a, b, c) == [(0, 0, 0, 0, 0, "open", 0)] * 3


async def test_patch_replaces_what_is_given_with_optimistic_concurrency(ledger: ApiClient) -> None:
    a = await ledger.create_account(metadata={"owner": "alice", "tier": "gold"}, overdraft_limit=7)
    changed = await patch(ledger, a, {"metadata": {"owner": "bob"}})
    assert changed.status == 200
    assert (changed.body["metadata"], changed.body["overdraft_limit"], changed.body["version"]) == (
        {"owner": "bob"},
        7,
        1,
    )
    changed = await patch(ledger, a, {"overdraft_limit": 0, "expected_versions": {a["id"]: 1}})
    assert changed.status == 200
    assert (changed.body["metadata"], changed.body["overdraft_limit"], changed.body["version"]) == (
        {"owner": "bob"},
        0,
        2,
    )
    stale = await patch(ledger, a, {"metadata": {}, "expected_versions": {a["id"]: 1}})
    problem(stale, 422, "version_mismatch")
    assert "2" in stale.body["detail"]
    assert (await get_account(ledger, a))["metadata"] == {"owner": "bob"}
    for bad in ({"currency": "EUR"}, {"status": "closed"}, {"metadata": {"k": 1}}, {"version": 3}):
        problem(await patch(ledger, a, bad), 400, "invalid_request")
    problem(await patch(ledger, new_id(), {"metadata": {}}), 404, "account_not_found")
    other = ApiClient(ledger.session, ledger.base_url, {**ledger.headers, "X-Tenant-Id": str(uuid.uuid4())})
    problem(await patch(other, a, {"metadata": {}}), 404, "account_not_found")
    problem(await action(other, "accounts", a["id"], "freeze"), 404, "account_not_found")
    assert await state(ledger, a) == [(0, 0, 0, 0, 2, "open", 0)]


async def test_overdraft_limit_on_a_guarded_account(ledger: ApiClient) -> None:
    a = await ledger.create_account(flags={"debits_must_not_exceed_credits": True}, overdraft_limit=100)
    sink = await ledger.create_account()
    await fund(ledger, a, 50)
    got = await get_account(ledger, a)
    assert got["balances"] == {"posted": 50, "pending": 50, "available": 150}
    hold = await ledger.transfer(a["id"], sink["id"], 30, pending=True)
    assert hold.status == 201
    assert (await get_account(ledger, a))["balances"]["available"] == 120
    problem(await ledger.transfer(a["id"], sink["id"], 121), 422, "exceeds_credits")
    assert (await ledger.transfer(a["id"], sink["id"], 120)).status == 201
    got = await get_account(ledger, a)
    assert got["balances"] == {"posted": -70, "pending": -100, "available": 0}
    problem(await ledger.transfer(a["id"], sink["id"], 1), 422, "exceeds_credits")
    # Lowering the limit below current use is allowed; debits fail, credits still arrive.
    lowered = await patch(ledger, a, {"overdraft_limit": 10})
    assert lowered.status == 200 and lowered.body["balances"]["available"] == -90
    problem(await ledger.transfer(a["id"], sink["id"], 1), 422, "exceeds_credits")
    assert (await ledger.transfer(sink["id"], a["id"], 5)).status == 201
    assert (await action(ledger, "transfers", hold.body["id"], "void")).status == 200
    # dp 120 against cp 55 + limit 10: still nothing can leave.
    problem(await ledger.transfer(a["id"], sink["id"], 1), 422, "exceeds_credits")
    assert (await patch(ledger, a, {"overdraft_limit": 66})).status == 200
    assert (await ledger.transfer(a["id"], sink["id"], 1)).status == 201
    problem(await ledger.transfer(a["id"], sink["id"], 1), 422, "exceeds_credits")
    # Transactions and batches obey the same limit.
    problem(await transaction(ledger, [debit(a, 1), credit(sink, 1)]), 422, "exceeds_credits")


async def test_overdraft_limit_mirrors_for_credits_on_a_debit_normal_account(ledger: ApiClient) -> None:
    a = await ledger.create_account(
        normal_balance="debit", flags={"credits_must_not_exceed_debits": True}, overdraft_limit=40
    )
    source = await ledger.create_account()
    assert (await get_account(ledger, a))["balances"]["available"] == 40
    assert (await ledger.transfer(source["id"], a["id"], 40)).status == 201
    problem(await ledger.transfer(source["id"], a["id"], 1), 422, "exceeds_debits")
    problem(await ledger.transfer(source["id"], a["id"], 1, pending=True), 422, "exceeds_debits")
    assert (await ledger.transfer(a["id"], source["id"], 5)).status == 201
    got = await get_account(ledger, a)
    assert got["balances"] == {"posted": -35, "pending": -35, "available": 5}
    assert (await ledger.transfer(source["id"], a["id"], 5, pending=True)).status == 201
    problem(await ledger.transfer(source["id"], a["id"], 1), 422, "exceeds_debits")
    # Lowered below what is used: allowed; the limited side refuses, the other side still moves.
    lowered = await patch(ledger, a, {"overdraft_limit": 10})
    assert lowered.status == 200 and lowered.body["balances"]["available"] == -30
    problem(await ledger.transfer(source["id"], a["id"], 1), 422, "exceeds_debits")
    assert (await ledger.transfer(a["id"], source["id"], 31)).status == 201
    assert (await ledger.transfer(source["id"], a["id"], 1)).status == 201


async def test_limit_arithmetic_beyond_2_63_is_exact(ledger: ApiClient) -> None:
    a = await ledger.create_account(flags={"debits_must_not_exceed_credits": True}, overdraft_limit=MAX)
    sink = await ledger.create_account()
    await fund(ledger, a, MAX)
    got = await get_account(ledger, a)
    assert got["balances"]["available"] == 2 * MAX  # credits_posted + limit: no bigint here
    assert (await ledger.transfer(a["id"], sink["id"], MAX)).status == 201
    problem(await ledger.transfer(a["id"], sink["id"], 1), 422, "overflow")


async def test_expected_versions_on_transfers_and_batch_items(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    first = await ledger.transfer(a["id"], b["id"], 1, expected_versions={a["id"]: 0, b["id"]: 0})
    assert first.status == 201
    # Not part of the replay comparison.
    replay = await ledger.transfer(a["id"], b["id"], 1, id=first.body["id"], expected_versions={a["id"]: 0})
    assert replay.status == 200 and replay.body == first.body
    stale = await ledger.transfer(a["id"], b["id"], 1, expected_versions={b["id"]: 0})
    problem(stale, 422, "version_mismatch")
    assert "1" in stale.body["detail"]

    def item(v: int, **fields: Any) -> dict[str, Any]:
        return {
            "id": new_id(),
            "debit_account_id": a["id"],
            "credit_account_id": b["id"],
            "amount": 1,
            "currency": "USD",
            "expected_versions": {a["id"]: v},
            **fields,
        }

    # Each item sees the versions the items before it left.
    results = await ledger.call("POST", "/v1/transfers/batch", {"transfers": [item(1), item(1), item(2), item(3)]})
    assert [r["status"] for r in results.body["results"]] == [201, 422, 201, 201]
    assert results.body["results"][1]["error"]["code"] == "version_mismatch"
    atomic = await ledger.call(
        "POST", "/v1/transfers/batch", {"transfers": [item(4), item(5), item(5)], "atomic": True}
    )
    problem(atomic, 422, "batch_failed", index=2)
    assert [e["code"] for e in atomic.body["errors"]] == ["version_mismatch"]
    ok = await ledger.call("POST", "/v1/transfers/batch", {"transfers": [item(4), item(5)], "atomic": True})
    assert ok.status == 201, ok.body
    assert await version(ledger, a) == 6
    # A batch item naming an account it does not move is invalid: the whole batch is 400.
    bad = item(6)
    bad["expected_versions"] = {new_id(): 0}
    problem(
        await ledger.call("POST", "/v1/transfers/batch", {"transfers": [item(6), bad]}), 400, "invalid_request", index=1
    )
    assert await version(ledger, a) == 6
