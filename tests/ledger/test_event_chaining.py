"""The write path chains a group's events itself and the database only checks the head (migration
0015): what is stored must be the recipe of docs/events.md whether the head was still the one the
events were chained from (stored as sent) or had moved (re-chained by the database).

Through the real interfaces: :func:`services.ledger.journal.chains_document` builds what the write
path sends, ``ledger_append_chained`` stores it in a real database, and the chain is recomputed with
the standard library (tests/ledger/test_events.py's ``canonical``), in a database of their own
(``private_db``: events without transfers would be discrepancies to the session database's
verifier); a batch large enough for the
array path (migration 0016) goes through the ledger's HTTP API.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from services.ledger.journal import GENESIS, chains_document
from services.ledger.state import EventRecord, LedgerState
from services.ledger.write import DOCUMENT_MAX_ROWS, append_chain
from tests.ledger.test_events import canonical
from tests.support.http import ApiClient


def _state(tenant: uuid.UUID, heads: dict[uuid.UUID, tuple[int, str]], amounts: list[int]) -> LedgerState:
    state = LedgerState(accounts={}, transfers={}, now=datetime.now(UTC), block=0, heads=heads)
    for amount in amounts:
        data = json.dumps({"amount": amount, "id": str(uuid.uuid4())}, sort_keys=True, separators=(",", ":"))
        state.events.append(EventRecord(tenant, "transfer.created", data))
    return state


async def _chain(conn: asyncpg.Connection, tenant: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT seq, type, occurred_at, data, prev_hash, hash FROM events WHERE tenant_id = $1 ORDER BY seq", tenant
    )
    return [
        {
            "seq": r["seq"],
            "type": r["type"],
            # As served (shared/timefmt.rfc3339): what the hash covers is the text the writer sent.
            "occurred_at": r["occurred_at"],
            "data": json.loads(r["data"]),
            "prev_hash": r["prev_hash"],
            "hash": r["hash"],
        }
        for r in rows
    ]


def _assert_valid(events: list[dict[str, Any]], occurred_at: dict[int, str]) -> None:
    prev = GENESIS
    for seq, event in enumerate(events, 1):
        assert event["seq"] == seq and event["prev_hash"] == prev, event
        served = {**event, "occurred_at": occurred_at[seq]}
        assert event["hash"] == hashlib.sha256(prev.encode() + canonical(served)).hexdigest(), event
        prev = str(event["hash"])


async def _append(conn: asyncpg.Connection, state: LedgerState) -> list[Any]:
    """Append as the write path does; returns the rows sent: (type, occurred_at, data, hash)."""
    document: list[Any] = chains_document(state)
    async with conn.transaction():
        # As the write path sends it: msgspec's JSON (this plain connection has no jsonb codec).
        await conn.execute("SELECT ledger_append_chained($1::jsonb)", msgspec.json.encode(document).decode())
    assert len(document) == 1, "one tenant per test"
    return list(document[0]["events"])


async def test_events_chained_from_the_current_head_are_stored_as_sent(private_db: asyncpg.Connection) -> None:
    tenant = uuid.uuid4()
    first = await _append(private_db, _state(tenant, {}, [1, 2]))
    head = await private_db.fetchrow("SELECT seq, hash FROM event_heads WHERE tenant_id = $1", tenant)
    assert head is not None
    sent_hashes = [row[3] for row in first]
    assert (head["seq"], head["hash"]) == (2, sent_hashes[-1])

    second = await _append(private_db, _state(tenant, {tenant: (head["seq"], head["hash"])}, [3]))
    stored = await _chain(private_db, tenant)
    assert [e["hash"] for e in stored] == [*sent_hashes, second[0][3]]
    at = {e["seq"]: row[1] for e, row in zip(stored, [*first, *second], strict=True)}
    _assert_valid(stored, at)


async def test_events_chained_from_a_stale_head_are_re_chained_by_the_database(private_db: asyncpg.Connection) -> None:
    tenant = uuid.uuid4()
    first = await _append(private_db, _state(tenant, {}, [1]))
    # A second writer read the same (empty) head before the first committed: its chain is stale.
    stale = _state(tenant, {}, [2, 3])
    second = await _append(private_db, stale)
    stored = await _chain(private_db, tenant)
    assert [e["seq"] for e in stored] == [1, 2, 3]
    assert [e["data"]["amount"] for e in stored] == [1, 2, 3]
    # Not the hashes the stale writer computed (those continued from the genesis), but a valid chain.
    assert stored[1]["hash"] != second[0][3]
    at = {e["seq"]: row[1] for e, row in zip(stored, [*first, *second], strict=True)}
    _assert_valid(stored, at)
    head = await private_db.fetchrow("SELECT seq, hash FROM event_heads WHERE tenant_id = $1", tenant)
    assert head is not None and (head["seq"], head["hash"]) == (3, stored[2]["hash"])


async def test_a_batch_on_the_array_path_chains_its_events_like_single_transfers(ledger: ApiClient) -> None:
    """More than DOCUMENT_MAX_ROWS transfers take the array path (events through ledger_append_chain,
    migration 0016); the chain read back must follow the recipe, continuing the single writes'."""
    a = await ledger.create_account()
    b = await ledger.create_account()
    assert (await ledger.transfer(a["id"], b["id"], 1)).status == 201
    items = [
        {
            "id": str(uuid.uuid4()),
            "debit_account_id": a["id"],
            "credit_account_id": b["id"],
            "amount": n,
            "currency": "USD",
        }
        for n in range(1, DOCUMENT_MAX_ROWS + 11)
    ]
    batch = await ledger.call("POST", "/v1/transfers/batch", {"transfers": items})
    assert batch.status == 200 and {r["status"] for r in batch.body["results"]} == {201}, batch
    assert (await ledger.transfer(a["id"], b["id"], 2)).status == 201

    events: list[dict[str, Any]] = []
    while True:
        page = (await ledger.call("GET", f"/v1/events?after={len(events)}&limit=100")).body["data"]
        if not page:
            break
        events += page
    assert [e["seq"] for e in events] == list(range(1, len(items) + 5))
    amounts = [e["data"]["amount"] for e in events if e["type"] == "transfer.created"]
    assert amounts == [1, *range(1, DOCUMENT_MAX_ROWS + 11), 2]
    prev = GENESIS
    for event in events:
        assert event["prev_hash"] == prev
        assert event["hash"] == hashlib.sha256(prev.encode() + canonical(event)).hexdigest(), event
        prev = event["hash"]


async def test_array_chain_from_a_stale_head_is_re_chained_by_the_database(private_db: asyncpg.Connection) -> None:
    tenant = uuid.uuid4()
    first = await _append(private_db, _state(tenant, {}, [1]))
    stale = chains_document(_state(tenant, {}, [2, 3]))[0]  # chained from the genesis: stale now
    rows = stale["events"]
    async with private_db.transaction():
        await append_chain(private_db, stale)
    stored = await _chain(private_db, tenant)
    assert [e["data"]["amount"] for e in stored] == [1, 2, 3]
    assert stored[1]["hash"] != rows[0][3]
    _assert_valid(stored, {e["seq"]: row[1] for e, row in zip(stored, [*first, *rows], strict=True)})
