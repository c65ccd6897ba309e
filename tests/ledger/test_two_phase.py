"""Two-phase transfers: reserve, post (partially), void, and expiry that needs no reader."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from tests.support.http import ApiClient


async def account(ledger: ApiClient, id_: str) -> dict:
    return dict((await ledger.call("GET", f"/v1/accounts/{id_}")).body)


async def test_pending_reserves_and_partial_post_releases_the_rest(ledger: ApiClient) -> None:
    a = await ledger.create_account()
    b = await ledger.create_account()
    pending = await ledger.transfer(a["id"], b["id"], 100, pending=True)
    assert pending.status == 201
    assert (pending.body["status"], pending.body["posted_amount"], pending.body["expires_at"]) == ("pending", 0, None)
    a_now = await account(ledger, a["id"])
    assert (a_now["debits_pending"], a_now["debits_posted"]) == (100, 0)
    assert a_now["balances"] == {"posted": 0, "pending": -100, "available": -100}
    b_now = await account(ledger, b["id"])
    assert b_now["balances"] == {"posted": 0, "pending": 100, "available": 0}

    too_much = await ledger.call("POST", f"/v1/transfers/{pending.body['id']}/post", {"amount": 101})
    assert too_much.status == 422 and too_much.code == "amount_exceeds_pending"
    for bad in ({"amount": 0}, {"amount": -1}, {"amount": 1.5}, {"amount": "5"}, {"other": 1}):
        reply = await ledger.call("POST", f"/v1/transfers/{pending.body['id']}/post", bad)
        assert reply.status == 400, bad
    posted = await ledger.call("POST", f"/v1/transfers/{pending.body['id']}/post", {"amount": 60})
    assert posted.status == 200
    assert (posted.body["status"], posted.body["posted_amount"], posted.body["amount"]) == ("posted", 60, 100)
    assert posted.body["updated_at"] > posted.body["created_at"]
    a_now = await account(ledger, a["id"])
    assert (a_now["debits_pending"], a_now["debits_posted"]) == (0, 60)
    again = await ledger.call("POST", f"/v1/transfers/{pending.body['id']}/post")
    assert again.status == 422 and again.code == "transfer_not_pending"
    void = await ledger.call("POST", f"/v1/transfers/{pending.body['id']}/void")
    assert void.code == "transfer_not_pending"


async def test_post_without_body_posts_everything_and_void_releases(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    first = await ledger.transfer(a["id"], b["id"], 40, pending=True)
    second = await ledger.transfer(a["id"], b["id"], 2, pending=True)
    posted = await ledger.call("POST", f"/v1/transfers/{first.body['id']}/post", raw=b"")
    assert posted.status == 200 and posted.body["posted_amount"] == 40
    voided = await ledger.call("POST", f"/v1/transfers/{second.body['id']}/void", {})
    assert voided.status == 200 and (voided.body["status"], voided.body["posted_amount"]) == ("voided", 0)
    a_now = await account(ledger, a["id"])
    assert (a_now["debits_posted"], a_now["debits_pending"]) == (40, 0)
    ghost = await ledger.call("POST", f"/v1/transfers/{uuid.uuid4()}/post")
    assert ghost.status == 404 and ghost.code == "transfer_not_found"
    # A single-phase transfer is not pending.
    single = await ledger.transfer(a["id"], b["id"], 1)
    assert (await ledger.call("POST", f"/v1/transfers/{single.body['id']}/void")).code == "transfer_not_pending"


async def test_reservation_counts_against_the_limit(ledger: ApiClient) -> None:
    funded = await ledger.create_account(flags={"debits_must_not_exceed_credits": True})
    source, sink = await ledger.create_account(), await ledger.create_account()
    await ledger.transfer(source["id"], funded["id"], 100)
    hold = await ledger.transfer(funded["id"], sink["id"], 70, pending=True)
    assert hold.status == 201
    assert (await ledger.transfer(funded["id"], sink["id"], 31)).code == "exceeds_credits"
    assert (await ledger.transfer(funded["id"], sink["id"], 30)).status == 201
    await ledger.call("POST", f"/v1/transfers/{hold.body['id']}/void")
    assert (await ledger.transfer(funded["id"], sink["id"], 70)).status == 201


async def test_expiry_releases_without_anyone_looking(ledger: ApiClient, db: asyncpg.Connection) -> None:
    a = await ledger.create_account(flags={"debits_must_not_exceed_credits": True})
    source, b = await ledger.create_account(), await ledger.create_account()
    await ledger.transfer(source["id"], a["id"], 50)
    hold = await ledger.transfer(a["id"], b["id"], 50, pending=True, timeout_seconds=1)
    assert hold.status == 201 and hold.body["expires_at"] is not None
    transfer_id = uuid.UUID(hold.body["id"])
    # Nobody reads the transfer or its accounts through the API: only SQL watches the rows.
    for _ in range(100):
        status = await db.fetchval("SELECT status FROM transfers WHERE id = $1", transfer_id)
        if status == "expired":
            break
        await asyncio.sleep(0.05)
    assert status == "expired"
    pending = await db.fetchval("SELECT debits_pending FROM accounts WHERE id = $1", uuid.UUID(a["id"]))
    assert pending == 0
    expired = await ledger.call("GET", f"/v1/transfers/{hold.body['id']}")
    assert expired.body["status"] == "expired"
    assert expired.body["updated_at"] == expired.body["expires_at"]
    late = await ledger.call("POST", f"/v1/transfers/{hold.body['id']}/post")
    assert late.status == 422 and late.code == "pending_expired"
    late_void = await ledger.call("POST", f"/v1/transfers/{hold.body['id']}/void")
    assert late_void.code == "pending_expired"
    # The released amount can be spent again.
    assert (await ledger.transfer(a["id"], b["id"], 50)).status == 201


async def test_replay_of_a_pending_transfer_shows_its_current_status(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    transfer_id = str(uuid.uuid4())
    await ledger.transfer(a["id"], b["id"], 9, id=transfer_id, pending=True, timeout_seconds=60)
    await ledger.call("POST", f"/v1/transfers/{transfer_id}/post", {"amount": 4})
    replay = await ledger.transfer(a["id"], b["id"], 9, id=transfer_id, pending=True, timeout_seconds=60)
    assert replay.status == 200
    assert (replay.body["status"], replay.body["posted_amount"]) == ("posted", 4)
