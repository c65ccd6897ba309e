"""How ledger rows become the write path's state objects: the transfer columns every reader selects
and the mapping of a row to :class:`~services.ledger.state.TransferState`,
:class:`~services.ledger.state.TransactionState` or :class:`~services.ledger.state.AccountState`.

Shared by the writes (:mod:`.store`'s lock-and-read) and the reads (:mod:`.reads`, :mod:`.queries`),
so that neither imports the other: a row is read one way wherever it is read.
"""

from __future__ import annotations

import uuid

import asyncpg

from services.ledger.state import AccountState, Leg, TransactionState, TransferState

TRANSFER_COLUMNS = """t.tenant_id, t.id, t.debit_account_id, t.credit_account_id, t.amount, t.currency,
    t.pending, t.timeout_seconds, t.status, t.posted_amount, t.expires_at, t.metadata,
    t.created_at, t.updated_at, t.seq, t.resolved_seq, t.created_by_key_id, t.resolved_by_key_id, t.reverses,
    t.reversed_amount"""
"""The columns of a transfer row (table aliased ``t``) that :func:`transfer_from_row` reads."""


def transfer_from_row(row: asyncpg.Record) -> TransferState:
    return TransferState(
        tenant_id=row["tenant_id"],
        id=row["id"],
        debit_account_id=row["debit_account_id"],
        credit_account_id=row["credit_account_id"],
        amount=row["amount"],
        currency=row["currency"],
        pending=row["pending"],
        timeout_seconds=row["timeout_seconds"],
        status=row["status"],
        posted_amount=row["posted_amount"],
        expires_at=row["expires_at"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        seq=row["seq"],
        resolved_seq=row["resolved_seq"],
        created_by_key_id=row["created_by_key_id"],
        resolved_by_key_id=row["resolved_by_key_id"],
        reverses=row["reverses"],
        reversed_amount=row["reversed_amount"],
    )


def transaction_from_row(row: asyncpg.Record) -> TransactionState:
    return TransactionState(
        tenant_id=row["tenant_id"],
        id=row["id"],
        legs=[Leg(uuid.UUID(e["account_id"]), e["direction"], e["amount"], e["currency"]) for e in row["entries"]],
        pending=row["pending"],
        timeout_seconds=row["timeout_seconds"],
        status=row["status"],
        expires_at=row["expires_at"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        seq=row["seq"],
        resolved_seq=row["resolved_seq"],
        reverses=row["reverses"],
        reversed_by=row["reversed_by"],
        created_by_key_id=row["created_by_key_id"],
        resolved_by_key_id=row["resolved_by_key_id"],
    )


def account_state_from_row(row: asyncpg.Record) -> AccountState:
    return AccountState(
        pk=row["pk"],
        tenant_id=row["tenant_id"],
        id=row["id"],
        currency=row["currency"],
        normal_balance=row["normal_balance"],
        debits_must_not_exceed_credits=row["debits_must_not_exceed_credits"],
        credits_must_not_exceed_debits=row["credits_must_not_exceed_debits"],
        debits_posted=row["debits_posted"],
        credits_posted=row["credits_posted"],
        debits_pending=row["debits_pending"],
        credits_pending=row["credits_pending"],
        status=row["status"],
        overdraft_limit=row["overdraft_limit"],
        limit_allowance=row["limit_allowance"],
        version=row["version"],
        last_entry_seq=row["last_entry_seq"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        created_by_key_id=row["created_by_key_id"],
    )
