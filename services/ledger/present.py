"""Turns stored rows and in-memory state into the response Structs of :mod:`shared.ledger_api`.

Timestamps are formatted by :func:`shared.timefmt.rfc3339`, the one formatter of every service, as
RFC 3339 UTC with microseconds and ``Z`` (docs/api.md section 2), always with six fractional
digits, so clients can compare them as strings. List cursors are sealed per tenant here too (see
"cursors" below): opaque, and valid only for the tenant and the list they were made for.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import uuid
from datetime import datetime
from typing import Any

from services.ledger.operations import Outcome
from services.ledger.state import AccountState, TransactionState, TransferState
from shared.errors import ErrorCode, ErrorItem, ProblemError
from shared.ledger_api import Account, AccountFlags, Entry, Transaction, Transfer, balances_of
from shared.timefmt import rfc3339


def account_from_row(row: Any) -> Account:
    """An account row, with reservations that are due but not yet swept already released.

    ``due_debits``/``due_credits`` are the amounts of such reservations (see reads.py), so a
    read never shows a reservation past its ``expires_at``, whether or not the sweep ran.
    """
    debits_pending = row["debits_pending"] - row["due_debits"]
    credits_pending = row["credits_pending"] - row["due_credits"]
    return Account(
        id=row["id"],
        currency=row["currency"],
        normal_balance=row["normal_balance"],
        flags=AccountFlags(
            debits_must_not_exceed_credits=row["debits_must_not_exceed_credits"],
            credits_must_not_exceed_debits=row["credits_must_not_exceed_debits"],
        ),
        metadata=row["metadata"],
        created_at=rfc3339(row["created_at"]),
        debits_posted=row["debits_posted"],
        credits_posted=row["credits_posted"],
        debits_pending=debits_pending,
        credits_pending=credits_pending,
        balances=balances_of(
            row["normal_balance"],
            row["debits_posted"],
            row["credits_posted"],
            debits_pending,
            credits_pending,
            row["overdraft_limit"],
        ),
        status=row["status"],
        overdraft_limit=row["overdraft_limit"],
        # Each due release is one more change to come (the write path applies them first).
        version=row["version"] + row["due_changes"],
        created_by_key_id=row["created_by_key_id"],
    )


def account_of(account: AccountState) -> Account:
    """The public view of a locked account after a write (due reservations already released)."""
    assert account.created_at is not None
    return Account(
        id=account.id,
        currency=account.currency,
        normal_balance=account.normal_balance,  # type: ignore[arg-type]
        flags=AccountFlags(
            debits_must_not_exceed_credits=account.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=account.credits_must_not_exceed_debits,
        ),
        metadata=account.metadata,
        created_at=rfc3339(account.created_at),
        debits_posted=account.debits_posted,
        credits_posted=account.credits_posted,
        debits_pending=account.debits_pending,
        credits_pending=account.credits_pending,
        balances=balances_of(
            account.normal_balance,
            account.debits_posted,
            account.credits_posted,
            account.debits_pending,
            account.credits_pending,
            account.overdraft_limit,
        ),
        status=account.status,
        overdraft_limit=account.overdraft_limit,
        version=account.version,
        created_by_key_id=account.created_by_key_id,
    )


def transaction_of(transaction: TransactionState, now: datetime | None = None) -> Transaction:
    """The public view of a transaction; a pending one past ``expires_at`` (at ``now``) reads as expired."""
    status, updated_at = transaction.status, transaction.updated_at
    if status == "pending" and transaction.expires_at is not None and now is not None and transaction.expires_at <= now:
        status, updated_at = "expired", transaction.expires_at
    return Transaction(
        id=transaction.id,
        entries=[
            Entry(account_id=leg.account_id, direction=leg.direction, amount=leg.amount, currency=leg.currency)
            for leg in transaction.legs
        ],
        status=status,
        metadata=transaction.metadata,
        expires_at=None if transaction.expires_at is None else rfc3339(transaction.expires_at),
        created_at=rfc3339(transaction.created_at),
        updated_at=rfc3339(updated_at),
        reversed_by=[] if transaction.reversed_by is None else [transaction.reversed_by],
        reverses=transaction.reverses,
        created_by_key_id=transaction.created_by_key_id,
        resolved_by_key_id=transaction.resolved_by_key_id,
    )


def transfer_of(transfer: TransferState, now: datetime | None = None) -> Transfer:
    """The public view of a transfer; a pending one past ``expires_at`` (at ``now``) reads as expired."""
    status, updated_at = transfer.status, transfer.updated_at
    if status == "pending" and transfer.expires_at is not None and now is not None and transfer.expires_at <= now:
        status, updated_at = "expired", transfer.expires_at
    return Transfer(
        id=transfer.id,
        debit_account_id=transfer.debit_account_id,
        credit_account_id=transfer.credit_account_id,
        amount=transfer.amount,
        currency=transfer.currency,
        status=status,
        posted_amount=transfer.posted_amount,
        expires_at=None if transfer.expires_at is None else rfc3339(transfer.expires_at),
        metadata=transfer.metadata,
        created_at=rfc3339(transfer.created_at),
        updated_at=rfc3339(updated_at),
        reverses=transfer.reverses,
        reversed_amount=transfer.reversed_amount,
        created_by_key_id=transfer.created_by_key_id,
        resolved_by_key_id=transfer.resolved_by_key_id,
    )


def outcome_problem(outcome: Outcome) -> ProblemError:
    """The problem a refused operation answers with: its rule's code and detail, and for a batch item
    its index (``errors[0]``). Not to be confused with :func:`shared.http.upstream_problem`, which
    decodes a problem another service answered with."""
    assert outcome.code is not None
    if outcome.index is not None:
        item = ErrorItem(code=outcome.code.value, detail=outcome.detail, index=outcome.index, field=outcome.field)
        return ProblemError(outcome.code, outcome.detail, errors=[item])
    return ProblemError(outcome.code, outcome.detail, field=outcome.field)


# -- cursors ---------------------------------------------------------------------------------
# A list position (an account's pk, a transfer's seq) is a global counter: in clear it would tell a
# tenant how busy the others are. So a cursor is the position sealed under a key of its own for each
# tenant, derived from the ledger's secret: deterministic authenticated encryption (SIV) built from
# HMAC-SHA256. tag = HMAC(k, "tag" | kind | position)[:12] is the synthetic IV; the position is
# XORed with HMAC(k, "pad" | tag)[:8]. Opening it recomputes the tag, so a cursor that was altered,
# forged, made for another tenant or for another list does not open: 400 invalid_request. The secret
# is the database's own (migration 0004, reads.cursor_secret), rotated with no credential.

_CURSOR_CONTEXT = b"ledger list cursor v1\x00"
_CURSOR = re.compile(r"[A-Za-z0-9_-]{27}")  # 20 bytes, base64url without padding
_TAG_BYTES = 12
MAX_POSITION = 2**63 - 1


@functools.lru_cache(maxsize=4096)
def _tenant_key(secret: bytes, tenant: uuid.UUID) -> bytes:
    return hmac.new(secret, _CURSOR_CONTEXT + tenant.bytes, hashlib.sha256).digest()


def _prf(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=False))


def encode_cursor(kind: str, position: int, tenant: uuid.UUID, secret: bytes) -> str:
    """The cursor after ``position`` in list ``kind`` of ``tenant``."""
    key = _tenant_key(secret, tenant)
    plain = position.to_bytes(8, "big")
    tag = _prf(key, b"tag", kind.encode(), plain)[:_TAG_BYTES]
    sealed = tag + _xor(plain, _prf(key, b"pad", tag))
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None, tenant: uuid.UUID, secret: bytes) -> int:
    """The position in ``cursor`` (-1 without one); 400 unless ``tenant`` got it for list ``kind``."""
    if cursor is None:
        return -1
    if _CURSOR.fullmatch(cursor):
        raw = base64.urlsafe_b64decode(cursor + "=")
        key = _tenant_key(secret, tenant)
        tag = raw[:_TAG_BYTES]
        plain = _xor(raw[_TAG_BYTES:], _prf(key, b"pad", tag))
        if hmac.compare_digest(tag, _prf(key, b"tag", kind.encode(), plain)[:_TAG_BYTES]):
            position = int.from_bytes(plain, "big")
            if position <= MAX_POSITION:
                return position
    raise ProblemError(ErrorCode.INVALID_REQUEST, "malformed cursor", field="cursor")
