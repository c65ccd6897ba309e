"""Steps 4 and 5 of the write path (:mod:`.store`): persist what a group changed, and COMMIT.

Two ways, by size, writing the same rows (ADR 0007):

- small groups (single transfers, the hot path): one simple-protocol message, ``SELECT
  ledger_write('<json document>'); COMMIT`` (migration 0006), so the write and the COMMIT are one
  round trip while the accounts are locked;
- large groups (batches), and any group while tracing records it: :data:`WRITE` over binary
  arrays, then COMMIT. A traced statement's text becomes a span attribute, and the document
  literal would put amounts, account ids and metadata into traces; the parameterised statement
  keeps them out.

Either raises :class:`Retry` when a concurrent writer took one of the new transfer ids (the
transaction is re-run and then sees that transfer), and refuses a partial write.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
import msgspec

from services.ledger.rules import EVENTS_PER_BLOCK, AccountState, Key, LedgerState, TransferState
from shared import tracing

WRITE_ERRORS = {"LW001": "a concurrent writer took one of the new transfer ids", "LW002": "write mismatch"}
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

# The write of a large group: the same rows as ledger_write, as one statement over binary arrays.
WRITE = """
WITH inserted AS (
    INSERT INTO transfers (tenant_id, id, debit_account_id, credit_account_id, amount, currency, pending,
                           timeout_seconds, status, posted_amount, expires_at, metadata, created_at,
                           updated_at, seq, resolved_seq, created_by_key_id, resolved_by_key_id)
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::bigint[], $6::text[],
                         $7::boolean[], $8::integer[], $9::text[], $10::bigint[], $11::timestamptz[],
                         $12::jsonb[], $13::timestamptz[], $14::timestamptz[], $15::bigint[], $16::bigint[],
                         $28::text[], $30::text[])
    ON CONFLICT (tenant_id, id) DO NOTHING
    RETURNING 1
), resolved AS (
    UPDATE transfers t
    SET status = u.status, posted_amount = u.posted_amount, updated_at = u.updated_at, resolved_seq = u.seq,
        resolved_by_key_id = u.key_id
    FROM unnest($17::uuid[], $18::uuid[], $19::text[], $20::bigint[], $21::timestamptz[], $22::bigint[],
                $29::text[])
         AS u(tenant_id, id, status, posted_amount, updated_at, seq, key_id)
    WHERE t.tenant_id = u.tenant_id AND t.id = u.id AND t.status = 'pending'
    RETURNING 1
), balanced AS (
    UPDATE accounts a
    SET debits_posted = u.debits_posted, credits_posted = u.credits_posted,
        debits_pending = u.debits_pending, credits_pending = u.credits_pending
    FROM unnest($23::bigint[], $24::bigint[], $25::bigint[], $26::bigint[], $27::bigint[])
         AS u(pk, debits_posted, credits_posted, debits_pending, credits_pending)
    WHERE a.pk = u.pk
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted) AS inserted, (SELECT count(*) FROM resolved) AS resolved,
       (SELECT count(*) FROM balanced) AS balanced
"""


async def write(conn: asyncpg.Connection, state: LedgerState, before: dict[Key, tuple[int, int, int, int]]) -> None:
    """Steps 4 and 5: write what changed and COMMIT (see :data:`DOCUMENT_MAX_ROWS` for how)."""
    new = [t for t in state.transfers.values() if t.is_new]
    # Loaded transfers that this transaction resolved carry one of its event numbers.
    resolved = [
        t
        for t in state.transfers.values()
        if not t.is_new and t.resolved_seq is not None and t.resolved_seq // EVENTS_PER_BLOCK == state.block
    ]
    changed = [
        a
        for key, a in state.accounts.items()
        if (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending) != before[key]
    ]
    if not new and not resolved and not changed:
        await conn.execute("COMMIT")
    elif len(new) + len(resolved) <= DOCUMENT_MAX_ROWS and not tracing.recording():
        # asyncpg has no pipelining: a parameterised write and a COMMIT would be two round trips
        # while the accounts are locked; one simple-protocol message with the document is one.
        doc = _DOCUMENT.encode({"new": new, "resolved": resolved, "accounts": changed}).decode()
        await conn.execute(f"SELECT ledger_write({sql_literal(doc)}::jsonb); COMMIT")
    else:
        await _write_arrays(conn, new, resolved, changed)
        await conn.execute("COMMIT")


async def _write_arrays(
    conn: asyncpg.Connection, new: list[TransferState], resolved: list[TransferState], changed: list[AccountState]
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
        [t.tenant_id for t in resolved],
        [t.id for t in resolved],
        [t.status for t in resolved],
        [t.posted_amount for t in resolved],
        [t.updated_at for t in resolved],
        [t.resolved_seq for t in resolved],
        [a.pk for a in changed],
        [a.debits_posted for a in changed],
        [a.credits_posted for a in changed],
        [a.debits_pending for a in changed],
        [a.credits_pending for a in changed],
        [t.created_by_key_id for t in new],
        [t.resolved_by_key_id for t in resolved],
        [t.resolved_by_key_id for t in new],
    )
    assert row is not None
    if row["inserted"] != len(new):
        raise Retry(WRITE_ERRORS["LW001"])
    if row["resolved"] != len(resolved) or row["balanced"] != len(changed):
        # Impossible while the account locks hold; refuse to commit a partial write.
        raise RuntimeError(f"write mismatch: {dict(row)} for {len(resolved)} resolved, {len(changed)} accounts")


_DOCUMENT = msgspec.json.Encoder()
