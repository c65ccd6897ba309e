"""Two-phase transactions (docs/api.md section 8): every entry reserved, posted whole, voided
or expired, and reservations counted against limits. Run once per write path."""

from __future__ import annotations

import asyncio
import re
import uuid

import asyncpg

from tests.ledger.model_support import (
    action,
    credit,
    debit,
    fund,
    get_account,
    problem,
    state,
    transaction,
)
from tests.support.http import ApiClient

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def test_pending_transaction_reserves_every_entry_and_posts_whole(ledger: ApiClient) -> None:
    a, b, c = [await ledger.create_account() for _ in range(3)]
    entries = [debit(a, 100), credit(b, 60), credit(c, 40)]
    held = await transaction(ledger, entries, pending=True)
    assert held.status == 201, held.body
    assert (held.body["status"], held.body["expires_at"]) == ("pending", None)
    assert (await get_account(ledger, a))["debits_pending"] == 100
    assert (await get_account(ledger, b))["balances"] == {"posted": 0, "pending": 60, "available": 0}
    tid = held.body["id"]
    for bad in ({"amount": 100}, {"amount": 1}, {"other": 1}, []):
        problem(await action(ledger, "transactions", tid, "post", bad), 400, "invalid_request")
    assert (await get_account(ledger, a))["debits_pending"] == 100
    posted = await action(ledger, "transactions", tid, "post", {})
    assert posted.status == 200, posted.body
    assert posted.body["status"] == "posted" and posted.body["updated_at"] > posted.body["created_at"]
    assert posted.body["entries"] == entries
    assert await state(ledger, a) == [(100, 0, 0, 0, 2, "open", 0)]
    assert (await get_account(ledger, c))["credits_posted"] == 40
    problem(await action(ledger, "transactions", tid, "post"), 422, "transfer_not_pending")
    problem(await action(ledger, "transactions", tid, "void"), 422, "transfer_not_pending")
    got = await ledger.call("GET", f"/v1/transactions/{tid}")
    assert got.body == posted.body


async def test_pending_transaction_void_and_post_without_body(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    first = await transaction(ledger, [debit(a, 7), credit(b, 7)], pending=True)
    second = await transaction(ledger, [debit(a, 3), credit(b, 3)], pending=True)
    voided = await ledger.call("POST", f"/v1/transactions/{first.body['id']}/void", raw=b"")
    assert voided.status == 200 and voided.body["status"] == "voided"
    posted = await ledger.call("POST", f"/v1/transactions/{second.body['id']}/post", raw=b"")
    assert posted.status == 200 and posted.body["status"] == "posted"
    assert await state(ledger, a) == [(3, 0, 0, 0, 4, "open", 0)]
    problem(await action(ledger, "transactions", first.body["id"], "post"), 422, "transfer_not_pending")
    # A single-phase transaction is not pending.
    single = await transaction(ledger, [debit(a, 1), credit(b, 1)])
    problem(await action(ledger, "transactions", single.body["id"], "void", {}), 422, "transfer_not_pending")


async def test_pending_reservation_counts_against_limits(ledger: ApiClient) -> None:
    guarded = await ledger.create_account(flags={"debits_must_not_exceed_credits": True})
    sink = await ledger.create_account()
    # Pending credits do not count as credits: reserving both sides of a guarded account is refused.
    problem(
        await transaction(
            ledger, [debit(guarded, 5), credit(sink, 5), debit(sink, 5), credit(guarded, 5)], pending=True
        ),
        422,
        "exceeds_credits",
    )
    await fund(ledger, guarded, 100)
    hold = await transaction(ledger, [debit(guarded, 70), credit(sink, 70)], pending=True)
    assert hold.status == 201
    problem(await transaction(ledger, [debit(guarded, 31), credit(sink, 31)]), 422, "exceeds_credits")
    assert (await action(ledger, "transactions", hold.body["id"], "void")).status == 200
    assert (await transaction(ledger, [debit(guarded, 100), credit(sink, 100)])).status == 201


async def test_expiry_releases_the_reservation(ledger: ApiClient, db: asyncpg.Connection) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    held = await transaction(ledger, [debit(a, 9), credit(b, 9)], pending=True, timeout_seconds=1)
    assert held.status == 201 and held.body["expires_at"] is not None
    tid = held.body["id"]
    # Nobody reads the transaction through the API: SQL watches the sweep release it.
    status = "pending"
    for _ in range(200):
        status = await db.fetchval("SELECT status FROM transactions WHERE id = $1", uuid.UUID(tid))
        if status == "expired":
            break
        await asyncio.sleep(0.05)
    assert status == "expired"
    got = (await ledger.call("GET", f"/v1/transactions/{tid}")).body
    assert got["status"] == "expired"
    assert got["updated_at"] == got["expires_at"]
    # The release is a change of both accounts' counters: one more version each.
    assert await state(ledger, a, b) == [(0, 0, 0, 0, 2, "open", 0), (0, 0, 0, 0, 2, "open", 0)]
    problem(await action(ledger, "transactions", tid, "post"), 422, "pending_expired")
    problem(await action(ledger, "transactions", tid, "void"), 422, "pending_expired")
    # The replay shows the transaction as it is now.
    replay = await transaction(ledger, held.body["entries"], id=tid, pending=True, timeout_seconds=1)
    assert replay.status == 200 and replay.body["status"] == "expired"
