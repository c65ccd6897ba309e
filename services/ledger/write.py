"""Steps 4 and 5 of the write path (:mod:`.store`): persist what a group changed, and COMMIT.

Two ways, by size, writing the same rows (ADR 0007):

- small groups (single transfers, the hot path): one simple-protocol message, ``SELECT
  ledger_write_chained('<json document>'); COMMIT`` (migrations 0006, 0015), so the write, the
  events and the COMMIT are one round trip while the accounts are locked;
- large groups (batches), and any group while tracing records it: :data:`WRITE` over binary
  arrays, what else changed through ``ledger_write``, the events through :data:`APPEND_CHAIN`
  (arrays again, one call per tenant, migration 0016), then COMMIT. A traced statement's text
  becomes a span attribute, and the document literal would put amounts, account ids and metadata
  into traces; the parameterised statements keep them out.

Either way the events are written last, right before the COMMIT: the tenant's event head stays
locked only from there to the COMMIT (docs/events.md).

Either raises :class:`Retry` when a concurrent writer took one of the new transfer ids (the
transaction is re-run and then sees that transfer), and refuses a partial write.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg
import msgspec

from services.ledger.journal import chains_document
from services.ledger.state import AccountState, EntryRow, Key, LedgerState, TransactionState, TransferState
from shared import tracing

WRITE_ERRORS = {"LW001": "a concurrent writer took one of the new ids", "LW002": "write mismatch"}
"""SQLSTATEs raised by ``ledger_write`` (migrations/0006_write_document.sql)."""


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal. Safe because every connection runs with
    ``standard_conforming_strings = on`` (db.py): inside '...' only the quote is special."""
    if "\x00" in text:
        raise ValueError("NUL cannot appear in a PostgreSQL string")
    return "'" + text.replace("'", "''") + "'"


class Retry(Exception):
    """Roll back and run the transaction again (with ``extra_accounts`` locked too)."""

    def __init__(self, reason: str, extra_accounts: Iterable[Key] = ()) -> None:
        super().__init__(reason)
        self.extra_accounts = set(extra_accounts)


DOCUMENT_MAX_ROWS = 64
"""Groups writing at most this many transfer rows send their write as a JSON document together
with the COMMIT (one round trip while the accounts are locked: what a hot account's groups need).
Larger ones (batches) send binary arrays and COMMIT separately: PostgreSQL parses a JSON document
of 1,000 transfers for ~50% more CPU than the arrays, and one round trip is nothing at that size.
Both paths write the same rows; the tests run both (single transfers and batches)."""

# The write of a large group: transfers, entries and account counters, as one statement over binary
# arrays (the same rows as ledger_write writes for them); the rest goes to ledger_write.
WRITE = """
WITH inserted AS (
    INSERT INTO transfers (tenant_id, id, debit_account_id, credit_account_id, amount, currency, pending,
                           timeout_seconds, status, posted_amount, expires_at, metadata, created_at,
                           updated_at, seq, resolved_seq, created_by_key_id, resolved_by_key_id, reverses)
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::bigint[], $6::text[],
                         $7::boolean[], $8::integer[], $9::text[], $10::bigint[], $11::timestamptz[],
                         $12::jsonb[], $13::timestamptz[], $14::timestamptz[], $15::bigint[], $16::bigint[],
                         $17::text[], $18::text[], $19::uuid[])
    ON CONFLICT (tenant_id, id) DO NOTHING
    RETURNING 1
), updated AS (
    UPDATE transfers t
    SET status = u.status, posted_amount = u.posted_amount, updated_at = u.updated_at, resolved_seq = u.seq,
        resolved_by_key_id = u.key_id, reversed_amount = u.reversed_amount
    FROM unnest($20::uuid[], $21::uuid[], $22::text[], $23::bigint[], $24::timestamptz[], $25::bigint[],
                $26::text[], $27::bigint[])
         AS u(tenant_id, id, status, posted_amount, updated_at, seq, key_id, reversed_amount)
    WHERE t.tenant_id = u.tenant_id AND t.id = u.id
    RETURNING 1
), balanced AS (
    UPDATE accounts a
    SET debits_posted = u.debits_posted, credits_posted = u.credits_posted,
        debits_pending = u.debits_pending, credits_pending = u.credits_pending,
        version = u.version, last_entry_seq = u.last_entry_seq, limit_allowance = u.limit_allowance
    FROM unnest($28::bigint[], $29::bigint[], $30::bigint[], $31::bigint[], $32::bigint[], $33::bigint[],
                $34::bigint[], $35::bigint[])
         AS u(pk, debits_posted, credits_posted, debits_pending, credits_pending, version, last_entry_seq,
              limit_allowance)
    WHERE a.pk = u.pk
    RETURNING 1
), entered AS (
    INSERT INTO account_entries (tenant_id, account_id, seq, at, source_type, source_id, kind, direction, amount,
                                 debits_posted, credits_posted, debits_pending, credits_pending, version, event_seq)
    SELECT * FROM unnest($36::uuid[], $37::uuid[], $38::bigint[], $39::timestamptz[], $40::text[], $41::uuid[],
                         $42::text[], $43::text[], $44::bigint[], $45::bigint[], $46::bigint[], $47::bigint[],
                         $48::bigint[], $49::bigint[], $50::bigint[])
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted) AS inserted, (SELECT count(*) FROM updated) AS updated,
       (SELECT count(*) FROM balanced) AS balanced, (SELECT count(*) FROM entered) AS entered
"""


APPEND_CHAIN = (
    "SELECT ledger_append_chain($1::uuid, $2::bigint, $3::text, $4::text[], $5::text, $6::text[], $7::text[])"
)
"""A large group's events of one tenant, chained by :func:`~services.ledger.journal.chains_document`."""


def _account_doc(account: AccountState, before: tuple[object, ...], numbers: bool) -> dict[str, object]:
    """What changed on ``account`` for ledger_write (a key left out keeps the stored value)."""
    doc: dict[str, object] = {"pk": account.pk}
    if numbers:
        doc.update(
            debits_posted=account.debits_posted,
            credits_posted=account.credits_posted,
            debits_pending=account.debits_pending,
            credits_pending=account.credits_pending,
            version=account.version,
            last_entry_seq=account.last_entry_seq,
            limit_allowance=account.limit_allowance,
        )
    status, limit, metadata = before[7:10]
    if account.status != status:
        doc["status"] = account.status
    if account.overdraft_limit != limit:
        doc["overdraft_limit"] = account.overdraft_limit
    if account.metadata != metadata:
        doc["metadata"] = account.metadata
    return doc


def _transaction_doc(t: TransactionState) -> dict[str, object]:
    return {
        "tenant_id": t.tenant_id,
        "id": t.id,
        "entries": [
            {"account_id": leg.account_id, "direction": leg.direction, "amount": leg.amount, "currency": leg.currency}
            for leg in t.legs
        ],
        "pending": t.pending,
        "timeout_seconds": t.timeout_seconds,
        "status": t.status,
        "expires_at": t.expires_at,
        "metadata": t.metadata,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "seq": t.seq,
        "resolved_seq": t.resolved_seq,
        "reverses": t.reverses,
        "reversed_by": t.reversed_by,
        "created_by_key_id": t.created_by_key_id,
        "resolved_by_key_id": t.resolved_by_key_id,
    }


async def write(conn: asyncpg.Connection, state: LedgerState, before: dict[Key, tuple[object, ...]]) -> None:
    """Steps 4 and 5: write what changed and COMMIT (see :data:`DOCUMENT_MAX_ROWS` for how)."""
    new = [t for t in state.transfers.values() if t.is_new]
    updated = list(state.changed_transfers.values())
    changed = [(a, before[key]) for key, a in state.accounts.items() if a.snapshot() != before[key]]
    extras: dict[str, list[object]] = {}
    transactions_new = [_transaction_doc(t) for t in state.transactions.values() if t.is_new]
    if transactions_new:
        extras["transactions_new"] = list(transactions_new)
    if state.changed_transactions:
        extras["transactions_updated"] = [_transaction_doc(t) for t in state.changed_transactions.values()]
    if state.changes:
        extras["changes"] = list(state.changes)
    chains = chains_document(state) if state.events else []
    if not new and not updated and not changed and not extras and not chains:
        await conn.execute("COMMIT")
    elif len(new) + len(updated) <= DOCUMENT_MAX_ROWS and not tracing.recording():
        # asyncpg has no pipelining: a parameterised write and a COMMIT would be two round trips
        # while the accounts are locked; one simple-protocol message with the document is one.
        doc = {
            "new": new,
            "updated": updated,
            "accounts": [_account_doc(a, b, True) for a, b in changed],
            "entries": state.entries,
            "chains": chains,
            **extras,
        }
        text = sql_literal(_DOCUMENT.encode(doc).decode())
        await conn.execute(f"SELECT ledger_write_chained({text}::jsonb); COMMIT")
    else:
        await _write_arrays(conn, new, updated, [a for a, _ in changed], state.entries)
        meta = [d for d in (_account_doc(a, b, False) for a, b in changed) if len(d) > 1]
        if meta:
            extras["accounts"] = list(meta)
        if extras:
            # A parameter: the connection's jsonb codec encodes it (db.py), as the large group's is.
            await conn.execute("SELECT ledger_write($1::jsonb)", extras)
        # The events last, as arrays, one call per tenant in tenant id order (migration 0016).
        for chain in sorted(chains, key=lambda c: c["tenant_id"]):
            await append_chain(conn, chain)
        await conn.execute("COMMIT")


async def append_chain(conn: asyncpg.Connection, chain: dict[str, Any]) -> None:
    """One tenant's chained events (an item of :func:`~services.ledger.journal.chains_document`)
    through :data:`APPEND_CHAIN`."""
    events = chain["events"]
    await conn.execute(
        APPEND_CHAIN,
        chain["tenant_id"],
        chain["seq"],
        chain["hash"],
        [e[0] for e in events],
        events[0][1],
        [e[2] for e in events],
        [e[3] for e in events],
    )


async def _write_arrays(
    conn: asyncpg.Connection,
    new: list[TransferState],
    updated: list[TransferState],
    changed: list[AccountState],
    entries: list[EntryRow],
) -> None:
    row = await conn.fetchrow(
        WRITE,
        [t.tenant_id for t in new],
        [t.id for t in new],
        [t.debit_account_id for t in new],
        [t.credit_account_id for t in new],
        [t.amount for t in new],
        [t.currency for t in new],
        [t.pending for t in new],
        [t.timeout_seconds for t in new],
        [t.status for t in new],
        [t.posted_amount for t in new],
        [t.expires_at for t in new],
        [t.metadata for t in new],
        [t.created_at for t in new],
        [t.updated_at for t in new],
        [t.seq for t in new],
        [t.resolved_seq for t in new],
        [t.created_by_key_id for t in new],
        [t.resolved_by_key_id for t in new],
        [t.reverses for t in new],
        [t.tenant_id for t in updated],
        [t.id for t in updated],
        [t.status for t in updated],
        [t.posted_amount for t in updated],
        [t.updated_at for t in updated],
        [t.resolved_seq for t in updated],
        [t.resolved_by_key_id for t in updated],
        [t.reversed_amount for t in updated],
        [a.pk for a in changed],
        [a.debits_posted for a in changed],
        [a.credits_posted for a in changed],
        [a.debits_pending for a in changed],
        [a.credits_pending for a in changed],
        [a.version for a in changed],
        [a.last_entry_seq for a in changed],
        [a.limit_allowance for a in changed],
        [e.tenant_id for e in entries],
        [e.account_id for e in entries],
        [e.seq for e in entries],
        [e.at for e in entries],
        [e.source_type for e in entries],
        [e.source_id for e in entries],
        [e.kind for e in entries],
        [e.direction for e in entries],
        [e.amount for e in entries],
        [e.debits_posted for e in entries],
        [e.credits_posted for e in entries],
        [e.debits_pending for e in entries],
        [e.credits_pending for e in entries],
        [e.version for e in entries],
        [e.event_seq for e in entries],
    )
    assert row is not None
    if row["inserted"] != len(new):
        raise Retry(WRITE_ERRORS["LW001"])
    if row["updated"] != len(updated) or row["balanced"] != len(changed) or row["entered"] != len(entries):
        # Impossible while the account locks hold; refuse to commit a partial write.
        raise RuntimeError(f"write mismatch: {dict(row)} for {len(updated)} updated, {len(changed)} accounts")


_DOCUMENT = msgspec.json.Encoder()
