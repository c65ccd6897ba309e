"""Reversals (docs/api.md section 9): of transfers, partial and capped at what is left; of
transactions, whole and once. Every rule in order, replay by the new id, nothing written on a refusal."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from tests.ledger.model_support import (
    MAX,
    action,
    credit,
    debit,
    fund,
    get_account,
    new_id,
    problem,
    reverse,
    reverse_transaction,
    state,
    transaction,
)
from tests.support.http import ApiClient


async def posted_transfer(ledger: ApiClient, amount: int = 100, **accounts: Any) -> tuple[dict, dict, dict]:
    a = accounts.get("a") or await ledger.create_account()
    b = accounts.get("b") or await ledger.create_account()
    reply = await ledger.transfer(a["id"], b["id"], amount, metadata={"kind": "charge"})
    assert reply.status == 201, reply.body
    return a, b, reply.body


async def until_released(ledger: ApiClient, account: dict, transfer_id: str) -> None:
    """Until the account has the entry releasing ``transfer_id``'s reservation (the expiry sweeper's
    write has committed); 15 s at most."""
    deadline = time.monotonic() + 15
    while True:
        entries = (await ledger.call("GET", f"/v1/accounts/{account['id']}/entries", params={"limit": "1000"})).body
        if any(e["kind"] == "pending_released" and e["source"]["id"] == transfer_id for e in entries["data"]):
            return
        assert time.monotonic() < deadline, f"the expiry sweeper did not release {transfer_id}: {entries}"
        await asyncio.sleep(0.05)


async def test_full_reversal_swaps_the_accounts_and_links_the_original(ledger: ApiClient) -> None:
    a, b, original = await posted_transfer(ledger)
    reversal_id = new_id()
    reply = await reverse(ledger, original["id"], id=reversal_id, metadata={"reason": "refund"})
    assert reply.status == 201, reply.body
    r = reply.body
    assert (r["id"], r["debit_account_id"], r["credit_account_id"]) == (reversal_id, b["id"], a["id"])
    assert (r["amount"], r["currency"], r["status"], r["posted_amount"], r["expires_at"]) == (
        100,
        "USD",
        "posted",
        100,
        None,
    )
    assert (r["reverses"], r["reversed_amount"], r["metadata"]) == (original["id"], 0, {"reason": "refund"})
    now = (await ledger.call("GET", f"/v1/transfers/{original['id']}")).body
    assert now["reversed_amount"] == 100
    assert now["reverses"] is None
    # The original's updated_at does not move: only reversed_amount grows.
    assert {k: v for k, v in now.items() if k != "reversed_amount"} == {
        k: v for k, v in original.items() if k != "reversed_amount"
    }
    assert (await ledger.call("GET", f"/v1/transfers/{reversal_id}")).body == r
    assert await state(ledger, a, b) == [(100, 100, 0, 0, 2, "open", 0), (100, 100, 0, 0, 2, "open", 0)]
    history = (await ledger.call("GET", f"/v1/accounts/{a['id']}/transfers")).body["data"]
    assert [t["id"] for t in history] == [original["id"], reversal_id]

    # Replay by the new id, with or without the amount it defaulted to: the stored reversal.
    for same in ({"metadata": {"reason": "refund"}}, {"metadata": {"reason": "refund"}, "amount": 100}):
        replay = await reverse(ledger, original["id"], id=reversal_id, **same)
        assert replay.status == 200, (same, replay.body)
        assert replay.body == r
    changed: dict[str, Any]
    for changed in ({"metadata": {}}, {"metadata": {"reason": "refund"}, "amount": 99}):
        problem(await reverse(ledger, original["id"], id=reversal_id, **changed), 409, "id_conflict")
    # Nothing is left: a new reversal, with or without an amount, is refused.
    problem(await reverse(ledger, original["id"]), 422, "amount_exceeds_reversible")
    problem(await reverse(ledger, original["id"], amount=1), 422, "amount_exceeds_reversible")
    assert await state(ledger, a, b) == [(100, 100, 0, 0, 2, "open", 0), (100, 100, 0, 0, 2, "open", 0)]


async def test_partial_reversals_are_capped_at_what_is_left(ledger: ApiClient) -> None:
    a, b, original = await posted_transfer(ledger)
    first_id = new_id()
    first = await reverse(ledger, original["id"], id=first_id, amount=30)
    assert first.status == 201 and first.body["amount"] == 30
    assert (await reverse(ledger, original["id"], amount=50)).status == 201
    before = await state(ledger, a, b)
    problem(await reverse(ledger, original["id"], amount=21), 422, "amount_exceeds_reversible")
    assert await state(ledger, a, b) == before
    assert (await ledger.call("GET", f"/v1/transfers/{original['id']}")).body["reversed_amount"] == 80
    rest = await reverse(ledger, original["id"])
    assert rest.status == 201 and rest.body["amount"] == 20
    assert (await ledger.call("GET", f"/v1/transfers/{original['id']}")).body["reversed_amount"] == 100
    replay = await reverse(ledger, original["id"], id=first_id, amount=30)
    assert replay.status == 200 and replay.body == first.body
    problem(await reverse(ledger, original["id"], id=first_id, amount=31), 409, "id_conflict")
    assert (await get_account(ledger, b))["balances"]["posted"] == 0


async def test_a_partially_posted_transfer_reverses_up_to_its_posted_amount(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    held = await ledger.transfer(a["id"], b["id"], 100, pending=True)
    assert (await action(ledger, "transfers", held.body["id"], "post", {"amount": 60})).status == 200
    problem(await reverse(ledger, held.body["id"], amount=61), 422, "amount_exceeds_reversible")
    rest = await reverse(ledger, held.body["id"])
    assert rest.status == 201 and rest.body["amount"] == 60


async def test_validation_is_400(ledger: ApiClient) -> None:
    a, b, original = await posted_transfer(ledger)
    before = await state(ledger, a, b)
    for body in (
        {},
        {"id": "nope"},
        {"id": new_id(), "amount": 0},
        {"id": new_id(), "amount": -1},
        {"id": new_id(), "amount": 1.5},
        {"id": new_id(), "amount": "5"},
        {"id": new_id(), "amount": MAX + 1},
        {"id": new_id(), "colour": "red"},
        {"id": new_id(), "metadata": {"k": 1}},
        {"id": new_id(), "expected_versions": {a["id"]: "1"}},
        {"id": new_id(), "expected_versions": {a["id"]: -1}},
    ):
        reply = await ledger.call("POST", f"/v1/transfers/{original['id']}/reverse", body)
        problem(reply, 400, "invalid_request")
    # 400 comes before the lookup of the original.
    problem(await ledger.call("POST", f"/v1/transfers/{new_id()}/reverse", {"amount": 1}), 400, "invalid_request")
    assert await state(ledger, a, b) == before


async def test_not_found_after_replay(ledger: ApiClient) -> None:
    a, b, original = await posted_transfer(ledger)
    other = ApiClient(ledger.session, ledger.base_url, {**ledger.headers, "X-Tenant-Id": str(uuid.uuid4())})
    problem(await reverse(ledger, new_id()), 404, "transfer_not_found")
    problem(await reverse(other, original["id"]), 404, "transfer_not_found")
    reversal = await reverse(ledger, original["id"], amount=10)
    assert reversal.status == 201
    # The new id is looked up first: used with another original (even an unknown one) it conflicts.
    problem(await reverse(ledger, new_id(), id=reversal.body["id"], amount=10), 409, "id_conflict")
    _, _, second = await posted_transfer(ledger, a=a, b=b)
    problem(await reverse(ledger, second["id"], id=reversal.body["id"], amount=10), 409, "id_conflict")
    # The new id lives in the transfers' namespace: an ordinary transfer's id is taken.
    problem(await reverse(ledger, original["id"], id=second["id"]), 409, "id_conflict")
    assert (await ledger.call("GET", f"/v1/transfers/{original['id']}")).body["reversed_amount"] == 10


async def test_only_posted_transfers_can_be_reversed(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    pending = await ledger.transfer(a["id"], b["id"], 10, pending=True)
    voided = await ledger.transfer(a["id"], b["id"], 10, pending=True)
    assert (await action(ledger, "transfers", voided.body["id"], "void")).status == 200
    expiring = await ledger.transfer(a["id"], b["id"], 10, pending=True, timeout_seconds=1)
    # Reads show the expiry before the sweeper has written it; its write (the release entries and the
    # versions it bumps, one transaction for both accounts) comes in its own time, seconds later on a
    # busy machine. Wait until it is there, so nothing but the refusals below can touch the accounts.
    await until_released(ledger, a, expiring.body["id"])
    assert (await ledger.call("GET", f"/v1/transfers/{expiring.body['id']}")).body["status"] == "expired"
    before = await state(ledger, a, b)
    for transfer in (pending, voided, expiring):
        problem(await reverse(ledger, transfer.body["id"]), 422, "transfer_not_posted")
        # transfer_not_posted is checked before the amount.
        problem(await reverse(ledger, transfer.body["id"], amount=MAX), 422, "transfer_not_posted")
    assert await state(ledger, a, b) == before
    assert (await ledger.call("GET", f"/v1/transfers/{pending.body['id']}")).body["reversed_amount"] == 0


async def test_account_rules_apply_to_the_swapped_accounts(ledger: ApiClient) -> None:
    # closed: b passed the money on and closed; the reversal would debit it.
    a, b, original = await posted_transfer(ledger)
    c = await ledger.create_account()
    assert (await ledger.transfer(b["id"], c["id"], 100)).status == 201
    assert (await action(ledger, "accounts", b["id"], "close")).status == 200
    # amount_exceeds_reversible comes before the account rules.
    problem(await reverse(ledger, original["id"], amount=101), 422, "amount_exceeds_reversible")
    problem(await reverse(ledger, original["id"]), 422, "account_closed", field="debit_account_id")
    assert (await action(ledger, "accounts", a["id"], "freeze")).status == 200
    # closed before frozen, whichever side.
    problem(await reverse(ledger, original["id"]), 422, "account_closed")

    # frozen, on either side; frozen before version_mismatch.
    a, b, original = await posted_transfer(ledger)
    assert (await action(ledger, "accounts", a["id"], "freeze")).status == 200
    problem(await reverse(ledger, original["id"]), 422, "account_frozen", field="credit_account_id")
    problem(await reverse(ledger, original["id"], expected_versions={b["id"]: 99}), 422, "account_frozen")
    assert (await action(ledger, "accounts", a["id"], "unfreeze")).status == 200
    assert (await action(ledger, "accounts", b["id"], "freeze")).status == 200
    problem(await reverse(ledger, original["id"]), 422, "account_frozen", field="debit_account_id")
    assert (await action(ledger, "accounts", b["id"], "unfreeze")).status == 200

    # version_mismatch names the current version; the right version passes.
    before = await state(ledger, a, b)
    mismatch = await reverse(ledger, original["id"], expected_versions={b["id"]: 0})
    problem(mismatch, 422, "version_mismatch")
    assert str(before[1][4]) in mismatch.body["detail"]
    assert await state(ledger, a, b) == before
    ok = await reverse(
        ledger, original["id"], amount=1, expected_versions={a["id"]: before[0][4], b["id"]: before[1][4]}
    )
    assert ok.status == 201, ok.body


async def test_limits_can_refuse_a_reversal(ledger: ApiClient) -> None:
    # exceeds_credits: the guarded receiver has spent what it got.
    a = await ledger.create_account()
    b = await ledger.create_account(flags={"debits_must_not_exceed_credits": True})
    _, _, original = await posted_transfer(ledger, a=a, b=b)
    assert (await ledger.transfer(b["id"], a["id"], 60)).status == 201
    before = await state(ledger, a, b)
    problem(await reverse(ledger, original["id"]), 422, "exceeds_credits")
    assert await state(ledger, a, b) == before
    assert (await ledger.call("GET", f"/v1/transfers/{original['id']}")).body["reversed_amount"] == 0
    assert (await reverse(ledger, original["id"], amount=40)).status == 201
    # ... and within an overdraft limit it passes.
    assert (await ledger.call("PATCH", f"/v1/accounts/{b['id']}", {"overdraft_limit": 60})).status == 200
    assert (await reverse(ledger, original["id"])).status == 201
    assert (await get_account(ledger, b))["balances"]["posted"] == -60

    # exceeds_debits: the capped payer has been credited back already.
    payer = await ledger.create_account(flags={"credits_must_not_exceed_debits": True})
    _, receiver, original = await posted_transfer(ledger, a=payer)
    assert (await ledger.transfer(receiver["id"], payer["id"], 100)).status == 201
    problem(await reverse(ledger, original["id"]), 422, "exceeds_debits")

    # overflow: crediting the payer past 2^63-1.
    payer, receiver, original = await posted_transfer(ledger, amount=1)
    source = await ledger.create_account()
    assert (await ledger.transfer(source["id"], payer["id"], MAX)).status == 201
    problem(await reverse(ledger, original["id"]), 422, "overflow")


async def test_refused_reversal_is_not_stored_and_is_evaluated_afresh(ledger: ApiClient) -> None:
    _, b, original = await posted_transfer(ledger)
    reversal_id = new_id()
    assert (await action(ledger, "accounts", b["id"], "freeze")).status == 200
    problem(await reverse(ledger, original["id"], id=reversal_id), 422, "account_frozen")
    problem(await ledger.call("GET", f"/v1/transfers/{reversal_id}"), 404, "transfer_not_found")
    assert (await action(ledger, "accounts", b["id"], "unfreeze")).status == 200
    retried = await reverse(ledger, original["id"], id=reversal_id)
    assert retried.status == 201 and retried.body["amount"] == 100


async def test_transaction_reversal_swaps_every_entry_once(ledger: ApiClient) -> None:
    customer, merchant, fees = [await ledger.create_account() for _ in range(3)]
    entries = [debit(customer, 1_000), credit(merchant, 970), credit(fees, 30)]
    original = await transaction(ledger, entries, metadata={"order": "o-2"})
    assert original.status == 201
    oid = original.body["id"]
    reversal_id = new_id()
    reply = await reverse_transaction(ledger, oid, id=reversal_id, metadata={"reason": "refund"})
    assert reply.status == 201, reply.body
    r = reply.body
    assert r["id"] == reversal_id
    assert r["entries"] == [credit(customer, 1_000), debit(merchant, 970), debit(fees, 30)]
    assert (r["status"], r["reverses"], r["reversed_by"], r["metadata"]) == ("posted", oid, [], {"reason": "refund"})
    now = (await ledger.call("GET", f"/v1/transactions/{oid}")).body
    assert now["reversed_by"] == [reversal_id]
    assert (await ledger.call("GET", f"/v1/transactions/{reversal_id}")).body == r
    for account in (customer, merchant, fees):
        got = await get_account(ledger, account)
        assert got["balances"]["posted"] == 0 and got["version"] == 2
    replay = await reverse_transaction(ledger, oid, id=reversal_id, metadata={"reason": "refund"})
    assert replay.status == 200 and replay.body == r
    problem(await reverse_transaction(ledger, oid, id=reversal_id), 409, "id_conflict")
    before = await state(ledger, customer, merchant, fees)
    problem(await reverse_transaction(ledger, oid), 422, "amount_exceeds_reversible")
    assert await state(ledger, customer, merchant, fees) == before
    assert (await ledger.call("GET", f"/v1/transactions/{oid}")).body["reversed_by"] == [reversal_id]


async def test_transaction_reversal_rules(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    problem(await reverse_transaction(ledger, new_id()), 404, "transaction_not_found")
    for body in ({}, {"id": "nope"}, {"id": new_id(), "amount": 5}, {"id": new_id(), "colour": "red"}):
        problem(await ledger.call("POST", f"/v1/transactions/{new_id()}/reverse", body), 400, "invalid_request")
    pending = await transaction(ledger, [debit(a, 5), credit(b, 5)], pending=True)
    problem(await reverse_transaction(ledger, pending.body["id"]), 422, "transfer_not_posted")
    assert (await action(ledger, "transactions", pending.body["id"], "void")).status == 200
    problem(await reverse_transaction(ledger, pending.body["id"]), 422, "transfer_not_posted")

    posted = await transaction(ledger, [debit(a, 5), credit(b, 5)])
    # A transaction reversal's id may equal a transfer's: transaction ids are their own namespace.
    shared = (await ledger.transfer(a["id"], b["id"], 1)).body["id"]
    assert (await action(ledger, "accounts", b["id"], "freeze")).status == 200
    before = await state(ledger, a, b)
    problem(await reverse_transaction(ledger, posted.body["id"], id=shared), 422, "account_frozen")
    assert await state(ledger, a, b) == before
    assert (await ledger.call("GET", f"/v1/transactions/{posted.body['id']}")).body["reversed_by"] == []
    assert (await action(ledger, "accounts", b["id"], "unfreeze")).status == 200
    ok = await reverse_transaction(ledger, posted.body["id"], id=shared)
    assert ok.status == 201, ok.body

    # A guarded account that spent what it received refuses the reversal.
    guarded = await ledger.create_account(flags={"debits_must_not_exceed_credits": True})
    paid = await transaction(ledger, [debit(a, 8), credit(guarded, 8)])
    assert (await ledger.transfer(guarded["id"], a["id"], 8)).status == 201
    problem(await reverse_transaction(ledger, paid.body["id"]), 422, "exceeds_credits")

    # A closed account refuses it too.
    c = await ledger.create_account()
    paid = await transaction(ledger, [debit(a, 3), credit(c, 3)])
    assert (await ledger.transfer(c["id"], a["id"], 3)).status == 201
    assert (await action(ledger, "accounts", c["id"], "close")).status == 200
    problem(await reverse_transaction(ledger, paid.body["id"]), 422, "account_closed")


@pytest.mark.parametrize("amounts", [[100], [1, 99], [50, 25, 25]])
async def test_reversals_sum_exactly_to_the_posted_amount(ledger: ApiClient, amounts: list[int]) -> None:
    a, b, original = await posted_transfer(ledger)
    for amount in amounts:
        assert (await reverse(ledger, original["id"], amount=amount)).status == 201
    problem(await reverse(ledger, original["id"]), 422, "amount_exceeds_reversible")
    got = (await ledger.call("GET", f"/v1/transfers/{original['id']}")).body
    assert got["reversed_amount"] == 100
    assert await state(ledger, a, b) == [
        (100, 100, 0, 0, 1 + len(amounts), "open", 0),
        (100, 100, 0, 0, 1 + len(amounts), "open", 0),
    ]
    await fund(ledger, b, 1)  # the accounts still move normally


async def test_account_closed_before_account_frozen_on_the_swapped_accounts(ledger: ApiClient) -> None:
    """The reversal debits the original's credit account (frozen here) and credits its debit
    account (closed here): account_closed comes first whichever side it is on."""
    a, b, original = await posted_transfer(ledger)
    await fund(ledger, a, 100)
    assert (await action(ledger, "accounts", a["id"], "close")).status == 200
    assert (await action(ledger, "accounts", b["id"], "freeze")).status == 200
    problem(await reverse(ledger, original["id"]), 422, "account_closed", field="credit_account_id")
