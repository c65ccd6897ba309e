"""Turns stored rows and in-memory state into the response Structs of :mod:`services.ledger.schemas`.

Timestamps are formatted here, in one place, as RFC 3339 UTC with microseconds and ``Z``
(public-api.md section 2), always with six fractional digits, so clients can compare them as
strings.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from services.ledger.rules import Outcome, TransferState
from services.ledger.schemas import Account, AccountFlags, Transfer, balances_of
from shared.errors import ErrorCode, ProblemError
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
            row["normal_balance"], row["debits_posted"], row["credits_posted"], debits_pending, credits_pending
        ),
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
    )


def problem_of(outcome: Outcome) -> ProblemError:
    assert outcome.code is not None
    return ProblemError(outcome.code, outcome.detail, field=outcome.field)


# -- cursors ---------------------------------------------------------------------------------
# Opaque to clients: a kind tag and a position, base64url. A cursor of another kind, or one that
# does not decode, is 400 invalid_request.


def encode_cursor(kind: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int:
    if cursor is None:
        return -1
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, _, position = raw.partition(":")
        value = int(position)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        value, tag = -1, ""
    if tag != kind or value < 0 or value > 2**63 - 1 or len(cursor) > 64:
        raise ProblemError(ErrorCode.INVALID_REQUEST, "malformed cursor", field="cursor")
    return value
