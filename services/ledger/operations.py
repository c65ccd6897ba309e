"""What a write request asks the ledger to do, and what it answers: operations, requests, outcomes.

A client request becomes one :class:`WriteRequest` of one or more operations (a batch is many
``CreateTransfer``); the write path (:mod:`.store`) applies a group of requests in one database
transaction and answers one :class:`Outcome` per operation. The rules that decide each outcome are
in :mod:`.rules` (transfers), :mod:`.transaction_rules` and :mod:`.account_rules`. No I/O here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.ledger.state import AccountState, TransactionState, TransferState
from shared.errors import ErrorCode
from shared.ledger_api import (
    AccountPatch,
    TransactionCreate,
    TransactionReverse,
    TransferCreate,
    TransferReverse,
)

# -- operations -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateTransfer:
    tenant_id: uuid.UUID
    body: TransferCreate
    key_id: str | None = None
    """The API key the request was authenticated with (attribution)."""


@dataclass(frozen=True, slots=True)
class PostPending:
    tenant_id: uuid.UUID
    transfer_id: uuid.UUID
    amount: int | None
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class VoidPending:
    tenant_id: uuid.UUID
    transfer_id: uuid.UUID
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReverseTransfer:
    tenant_id: uuid.UUID
    transfer_id: uuid.UUID
    body: TransferReverse
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class CreateTransaction:
    tenant_id: uuid.UUID
    body: TransactionCreate
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class ResolveTransaction:
    """Post (whole amounts) or void a pending transaction."""

    tenant_id: uuid.UUID
    transaction_id: uuid.UUID
    post: bool
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReverseTransaction:
    tenant_id: uuid.UUID
    transaction_id: uuid.UUID
    body: TransactionReverse
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeAccount:
    """Freeze, unfreeze, close or PATCH one account (``patch`` only for ``action == "update"``)."""

    tenant_id: uuid.UUID
    account_id: uuid.UUID
    action: str
    patch: AccountPatch | None = None
    key_id: str | None = None


Operation = (
    CreateTransfer
    | PostPending
    | VoidPending
    | ReverseTransfer
    | CreateTransaction
    | ResolveTransaction
    | ReverseTransaction
    | ChangeAccount
)


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """Operations from one client request. ``atomic``: all succeed or none is applied."""

    operations: list[Operation]
    atomic: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one operation: 201 created, 200 replayed or changed, or an error code.

    ``transfer``/``transaction``/``account`` is a copy taken when the operation was applied: a later
    operation of the same group must not change what this one answers.
    """

    status: int
    transfer: TransferState | None = None
    code: ErrorCode | None = None
    detail: str = ""
    field: str | None = None
    applied: bool = False
    """True when this operation changed the ledger (not for replays, errors or rolled-back items)."""
    transaction: TransactionState | None = None
    account: AccountState | None = None
    index: int | None = None
    """For a transaction's entry-level error: the offending entry (``errors[].index``)."""


def fail(code: ErrorCode, detail: str, field: str | None = None, index: int | None = None) -> Outcome:
    return Outcome(status=code.status, code=code, detail=detail, field=field, index=index)
