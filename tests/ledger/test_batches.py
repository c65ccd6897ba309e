"""Batches: atomic and not, evaluated in order against the state left by earlier items."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from shared.ledger_api import MAX_BATCH_ITEMS
from tests.support.http import ApiClient


def item(debit: str, credit: str, amount: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": fields.pop("id", str(uuid.uuid4())),
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "currency": "USD",
        **fields,
    }


async def test_non_atomic_batch_applies_items_in_order_with_per_item_results(ledger: ApiClient) -> None:
    funded = await ledger.create_account(flags={"debits_must_not_exceed_credits": True})
    source, sink = await ledger.create_account(), await ledger.create_account()
    repeated = str(uuid.uuid4())
    items = [
        item(funded["id"], sink["id"], 10),  # 0: no credits yet
        item(source["id"], funded["id"], 30),  # 1: funds it
        item(funded["id"], sink["id"], 25, id=repeated),  # 2: now fits
        item(funded["id"], sink["id"], 25, id=repeated),  # 3: replay of 2
        item(funded["id"], sink["id"], 26, id=repeated),  # 4: id_conflict with 2
        item(funded["id"], sink["id"], 6),  # 5: 25 + 6 > 30
        item(funded["id"], str(uuid.uuid4()), 1),  # 6: unknown account
    ]
    reply = await ledger.call("POST", "/v1/transfers/batch", {"transfers": items})
    assert reply.status == 200
    results = reply.body["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert [r["status"] for r in results] == [422, 201, 201, 200, 409, 422, 404]
    assert [r.get("error", {}).get("code") for r in results] == [
        "exceeds_credits",
        None,
        None,
        None,
        "id_conflict",
        "exceeds_credits",
        "account_not_found",
    ]
    assert results[3]["transfer"] == results[2]["transfer"]
    funded_now = (await ledger.call("GET", f"/v1/accounts/{funded['id']}")).body
    assert (funded_now["credits_posted"], funded_now["debits_posted"]) == (30, 25)


async def test_atomic_batch_is_all_or_nothing(ledger: ApiClient, db: asyncpg.Connection) -> None:
    funded = await ledger.create_account(flags={"debits_must_not_exceed_credits": True})
    source, sink = await ledger.create_account(), await ledger.create_account()
    before = await db.fetchval("SELECT count(*) FROM transfers")
    failing = [
        item(source["id"], funded["id"], 10),
        item(funded["id"], sink["id"], 11),
        item(funded["id"], sink["id"], 10),
        item(funded["id"], funded["id"], 1),
    ]
    reply = await ledger.call("POST", "/v1/transfers/batch", {"transfers": failing, "atomic": True})
    assert reply.status == 422 and reply.code == "batch_failed"
    assert [(e["index"], e["code"]) for e in reply.body["errors"]] == [(1, "exceeds_credits"), (3, "same_account")]
    assert await db.fetchval("SELECT count(*) FROM transfers") == before
    assert (await ledger.call("GET", f"/v1/accounts/{funded['id']}")).body["credits_posted"] == 0
    ok = [item(source["id"], funded["id"], 10), item(funded["id"], sink["id"], 10)]
    done = await ledger.call("POST", "/v1/transfers/batch", {"transfers": ok, "atomic": True})
    assert done.status == 201
    assert [t["id"] for t in done.body["data"]] == [i["id"] for i in ok]


async def test_a_thousand_items_and_the_size_limit(ledger: ApiClient, db: asyncpg.Connection) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    items = [item(a["id"], b["id"], 1) for _ in range(1000)]
    reply = await ledger.call("POST", "/v1/transfers/batch", {"transfers": items, "atomic": False})
    assert reply.status == 200 and all(r["status"] == 201 for r in reply.body["results"])
    assert (await ledger.call("GET", f"/v1/accounts/{b['id']}")).body["credits_posted"] == 1000
    before = await db.fetchval("SELECT count(*) FROM transfers")
    too_many = [item(a["id"], b["id"], 1) for _ in range(MAX_BATCH_ITEMS + 1)]
    reply = await ledger.call("POST", "/v1/transfers/batch", {"transfers": too_many})
    assert reply.status == 413 and reply.code == "batch_too_large"
    assert await db.fetchval("SELECT count(*) FROM transfers") == before


async def test_one_invalid_item_makes_the_whole_batch_400(ledger: ApiClient, db: asyncpg.Connection) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    items = [item(a["id"], b["id"], 1), item(a["id"], b["id"], 1), item(a["id"], b["id"], 1.5)]
    before = await db.fetchval("SELECT count(*) FROM transfers")
    reply = await ledger.call("POST", "/v1/transfers/batch", {"transfers": items})
    assert reply.status == 400 and reply.code == "invalid_request"
    assert reply.body["errors"][0]["index"] == 2 and reply.body["errors"][0]["field"] == "amount"
    for body in ({"transfers": []}, {"transfers": items[:1], "atomic": "yes"}, {"transfers": items[:1], "x": 1}, {}):
        bad = await ledger.call("POST", "/v1/transfers/batch", body)
        assert bad.status == 400, body
    assert await db.fetchval("SELECT count(*) FROM transfers") == before
