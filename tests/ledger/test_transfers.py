"""Single transfers: every rule of docs/api.md section 5, in order, and bad input writing nothing."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from tests.support.http import ApiClient

MAX = 2**63 - 1


async def counts(db: asyncpg.Connection) -> tuple[int, int]:
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM transfers) AS t, (SELECT sum(debits_posted::numeric + credits_posted + "
        "debits_pending + credits_pending) FROM accounts) AS c"
    )
    return row["t"], row["c"]


async def test_single_transfer_moves_money_and_replays(ledger: ApiClient, db: asyncpg.Connection) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    transfer_id = str(uuid.uuid4())
    created = await ledger.transfer(a["id"], b["id"], 250, id=transfer_id, metadata={"ref": "inv-1"})
    assert created.status == 201
    t = created.body
    assert (t["status"], t["posted_amount"], t["expires_at"], t["amount"]) == ("posted", 250, None, 250)
    assert t["created_at"] == t["updated_at"]
    replay = await ledger.transfer(a["id"], b["id"], 250, id=transfer_id, metadata={"ref": "inv-1"})
    assert replay.status == 200 and replay.body == t
    # Defaults filled in are the same request.
    same = await ledger.transfer(
        a["id"], b["id"], 250, id=transfer_id, metadata={"ref": "inv-1"}, pending=False, timeout_seconds=0
    )
    assert same.status == 200
    for change in ({"amount": 251}, {"metadata": {}}, {"currency": "EUR"}, {"pending": True}):
        body: dict[str, Any] = {"id": transfer_id, "metadata": {"ref": "inv-1"}, **change}
        conflict = await ledger.transfer(a["id"], b["id"], body.pop("amount", 250), **body)
        assert conflict.status == 409 and conflict.code == "id_conflict", change
    swapped = await ledger.transfer(b["id"], a["id"], 250, id=transfer_id, metadata={"ref": "inv-1"})
    assert swapped.status == 409
    a_now = (await ledger.call("GET", f"/v1/accounts/{a['id']}")).body
    b_now = (await ledger.call("GET", f"/v1/accounts/{b['id']}")).body
    assert a_now["debits_posted"] == 250 and a_now["balances"]["posted"] == -250
    assert b_now["credits_posted"] == 250 and b_now["balances"] == {"posted": 250, "pending": 250, "available": 250}
    assert await db.fetchval("SELECT count(*) FROM transfers WHERE id = $1", uuid.UUID(transfer_id)) == 1
    got = await ledger.call("GET", f"/v1/transfers/{transfer_id}")
    assert got.status == 200 and got.body == t


async def test_rule_errors_in_spec_order(ledger: ApiClient, db: asyncpg.Connection) -> None:
    usd = await ledger.create_account("USD")
    usd2 = await ledger.create_account("USD")
    eur = await ledger.create_account("EUR")
    guarded = await ledger.create_account("USD", flags={"debits_must_not_exceed_credits": True})
    capped = await ledger.create_account("USD", flags={"credits_must_not_exceed_debits": True})
    ghost = str(uuid.uuid4())
    before = await counts(db)
    cases = [
        # same_account wins over a missing account
        (ghost, ghost, "USD", "same_account"),
        (usd["id"], usd["id"], "USD", "same_account"),
        # debit account is checked first
        (ghost, str(uuid.uuid4()), "USD", "account_not_found"),
        (usd["id"], ghost, "USD", "account_not_found"),
        (usd["id"], eur["id"], "USD", "currency_mismatch"),
        (usd["id"], usd2["id"], "EUR", "currency_mismatch"),
        # exceeds_credits is checked before exceeds_debits
        (guarded["id"], capped["id"], "USD", "exceeds_credits"),
        (usd["id"], capped["id"], "USD", "exceeds_debits"),
    ]
    for debit, credit, currency, code in cases:
        reply = await ledger.transfer(debit, credit, 10, currency)
        assert reply.status == 422 if code != "account_not_found" else 404, (code, reply.body)
        assert reply.code == code
    missing_debit = await ledger.transfer(ghost, usd["id"], 1)
    assert missing_debit.body["errors"][0]["field"] == "debit_account_id"
    assert await counts(db) == before


async def test_failed_transfer_is_not_stored_and_is_evaluated_afresh(ledger: ApiClient) -> None:
    funded = await ledger.create_account(flags={"debits_must_not_exceed_credits": True})
    source, sink = await ledger.create_account(), await ledger.create_account()
    transfer_id = str(uuid.uuid4())
    refused = await ledger.transfer(funded["id"], sink["id"], 100, id=transfer_id)
    assert refused.code == "exceeds_credits"
    assert (await ledger.call("GET", f"/v1/transfers/{transfer_id}")).code == "transfer_not_found"
    assert (await ledger.transfer(source["id"], funded["id"], 100)).status == 201
    retried = await ledger.transfer(funded["id"], sink["id"], 100, id=transfer_id)
    assert retried.status == 201
    # Exactly at the limit is allowed; one more is not.
    assert (await ledger.transfer(funded["id"], sink["id"], 1)).code == "exceeds_credits"


async def test_overflow_is_refused(ledger: ApiClient, db: asyncpg.Connection) -> None:
    a, b, c = [await ledger.create_account() for _ in range(3)]
    assert (await ledger.transfer(a["id"], b["id"], MAX)).status == 201
    before = await counts(db)
    over = await ledger.transfer(c["id"], b["id"], 1)
    assert over.status == 422 and over.code == "overflow"
    # Pending plus posted may not pass 2^63-1 either.
    over_pending = await ledger.transfer(a["id"], c["id"], 1, pending=True)
    assert over_pending.code == "overflow"
    assert await counts(db) == before


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 1.0},
        {"amount": 1.5},
        {"amount": "100"},
        {"amount": 0},
        {"amount": -5},
        {"amount": MAX + 1},
        {"amount": 2**64},
        {"amount": True},
        {"amount": None},
        {"id": "not-a-uuid"},
        {"id": 42},
        {"debit_account_id": "00000000-0000-0000-0000-00000000000g"},
        {"currency": "usd"},
        {"currency": "U$D"},
        {"pending": "true"},
        {"timeout_seconds": 5},
        {"pending": True, "timeout_seconds": -1},
        {"pending": True, "timeout_seconds": 31_536_001},
        {"pending": True, "timeout_seconds": 1.5},
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        {"metadata": {"k": "v" * 513}},
        {"metadata": {"k": None}},
        {"unknown": 1},
    ],
)
async def test_invalid_transfer_bodies_are_400_and_write_nothing(
    ledger: ApiClient, db: asyncpg.Connection, change: dict[str, Any]
) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    body = {
        "id": str(uuid.uuid4()),
        "debit_account_id": a["id"],
        "credit_account_id": b["id"],
        "amount": 5,
        "currency": "USD",
        **change,
    }
    before = await counts(db)
    reply = await ledger.call("POST", "/v1/transfers", body)
    assert reply.status == 400, reply.body
    assert reply.code == "invalid_request"
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert await counts(db) == before


async def test_missing_required_fields_and_non_objects_are_400(ledger: ApiClient) -> None:
    for raw in (
        b"{}",
        b"[]",
        b"null",
        b"1",
        b'"x"',
        b'{"id": "' + str(uuid.uuid4()).encode() + b'"}',
        b'{"amount": 1e2}',
        b'{"amount": NaN}',
        b'{"amount": Infinity}',
    ):
        reply = await ledger.call("POST", "/v1/transfers", raw=raw, headers={"Content-Type": "application/json"})
        assert reply.status == 400, raw


async def test_unknown_transfer_is_404(ledger: ApiClient) -> None:
    reply = await ledger.call("GET", f"/v1/transfers/{uuid.uuid4()}")
    assert reply.status == 404 and reply.code == "transfer_not_found"


async def test_duplicate_keys_are_refused(ledger: ApiClient, db: asyncpg.Connection) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    before = await counts(db)
    raw = (
        '{{"id": "{}", "debit_account_id": "{}", "credit_account_id": "{}", "amount": 1, "amount": 1000, '
        '"currency": "USD"}}'.format(uuid.uuid4(), a["id"], b["id"])
    ).encode()
    reply = await ledger.call("POST", "/v1/transfers", raw=raw, headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.code == "invalid_request"
    assert "amount" in reply.body["detail"]
    nested = raw.replace(b'"amount": 1000, ', b'"metadata": {"k": "1", "k": "2"}, ')
    reply = await ledger.call("POST", "/v1/transfers", raw=nested, headers={"Content-Type": "application/json"})
    assert reply.status == 400
    assert await counts(db) == before
