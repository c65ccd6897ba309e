"""The rules of public-api.md section 5, as pure functions over in-memory state. No I/O here.

:class:`LedgerState` holds the locked accounts and the transfers a write transaction loaded, and
applies write requests to them one operation at a time, in order, exactly as if each had been
sent alone. The store (:mod:`services.ledger.store`) loads the state under row locks, calls
:meth:`LedgerState.apply`, and persists what changed in the same database transaction, so every
rule here is checked atomically with the write.

Rule order for a new transfer (the first failing rule answers): id replay / ``id_conflict``,
``same_account``, ``account_not_found`` (debit account first), ``currency_mismatch``,
``exceeds_credits``, ``exceeds_debits``, ``overflow``. For post and void: ``transfer_not_found``,
``pending_expired``, ``transfer_not_pending``, ``amount_exceeds_pending``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from services.ledger.schemas import MAX_AMOUNT, TransferCreate, TransferStatus
from shared.errors import ErrorCode

EVENTS_PER_BLOCK = 1 << 20
"""Events one write transaction may number: a group of 8,000 transfers plus every due reservation on
its accounts stays far below it. (Migration 0001 first said 65536; 0003 records the widening.)"""

Key = tuple[uuid.UUID, uuid.UUID]
"""(tenant_id, id): ids are per tenant, so every lookup is by this pair."""


@dataclass(slots=True)
class AccountState:
    pk: int
    tenant_id: uuid.UUID
    id: uuid.UUID
    currency: str
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int


@dataclass(slots=True)
class TransferState:
    tenant_id: uuid.UUID
    id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: int
    currency: str
    pending: bool
    timeout_seconds: int
    status: TransferStatus
    posted_amount: int
    expires_at: datetime | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    seq: int
    resolved_seq: int | None = None
    created_by_key_id: str | None = None
    """The API key whose request created it (None: written before attribution, or by the admin tools)."""
    resolved_by_key_id: str | None = None
    """The API key whose request posted or voided it (None while pending, and after an expiry)."""
    is_new: bool = False
    """Created by this transaction: persisted by INSERT rather than UPDATE."""

    def same_request(self, body: TransferCreate) -> bool:
        """Section 5: the same id with the same request (defaults filled in) is a replay."""
        return (
            self.debit_account_id == body.debit_account_id
            and self.credit_account_id == body.credit_account_id
            and self.amount == body.amount
            and self.currency == body.currency
            and self.pending == body.pending
            and self.timeout_seconds == body.timeout_seconds
            and self.metadata == body.metadata
        )


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


Operation = CreateTransfer | PostPending | VoidPending


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """Operations from one client request. ``atomic``: all succeed or none is applied."""

    operations: list[Operation]
    atomic: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one operation: 201 created, 200 replayed or resolved, or an error code.

    ``transfer`` is a copy taken when the operation was applied: a later operation of the same
    group (a post of a transfer created just before it) must not change what this one answers.
    """

    status: int
    transfer: TransferState | None = None
    code: ErrorCode | None = None
    detail: str = ""
    field: str | None = None
    applied: bool = False
    """True when this operation changed the ledger (not for replays, errors or rolled-back items)."""


def _fail(code: ErrorCode, detail: str, field: str | None = None) -> Outcome:
    return Outcome(status=code.status, code=code, detail=detail, field=field)


@dataclass
class LedgerState:
    """Accounts locked by one write transaction and the transfers it may read or change."""

    accounts: dict[Key, AccountState]
    transfers: dict[Key, TransferState]
    now: datetime
    block: int
    _event: int = 0
    _undo: list[tuple[Any, str, Any]] = field(default_factory=list)

    # -- bookkeeping -------------------------------------------------------------------------

    def _next_seq(self) -> int:
        if self._event >= EVENTS_PER_BLOCK:
            raise RuntimeError("too many events for one write transaction")
        seq = self.block * EVENTS_PER_BLOCK + self._event
        self._event += 1
        return seq

    def _set(self, obj: Any, attr: str, value: Any) -> None:
        self._undo.append((obj, attr, getattr(obj, attr)))
        setattr(obj, attr, value)

    def _checkpoint(self) -> int:
        return len(self._undo)

    def _rollback(self, checkpoint: int) -> None:
        while len(self._undo) > checkpoint:
            obj, attr, old = self._undo.pop()
            if attr == "__new__":
                del self.transfers[old]
            else:
                setattr(obj, attr, old)

    # -- expiry ------------------------------------------------------------------------------

    def expire_due(self) -> None:
        """Release every loaded reservation whose ``expires_at`` has passed (before any request)."""
        for transfer in self.transfers.values():
            if transfer.status == "pending" and transfer.expires_at is not None and transfer.expires_at <= self.now:
                debit = self.accounts[(transfer.tenant_id, transfer.debit_account_id)]
                credit = self.accounts[(transfer.tenant_id, transfer.credit_account_id)]
                debit.debits_pending -= transfer.amount
                credit.credits_pending -= transfer.amount
                transfer.status = "expired"
                # The reservation ended at expires_at, whenever the sweep got to it.
                transfer.updated_at = transfer.expires_at
                transfer.resolved_seq = self._next_seq()

    # -- requests ----------------------------------------------------------------------------

    def apply(self, request: WriteRequest) -> list[Outcome]:
        """Apply one request's operations in order; an atomic request that fails changes nothing."""
        checkpoint = self._checkpoint()
        outcomes = [self._apply_one(op) for op in request.operations]
        if request.atomic and any(o.code is not None for o in outcomes):
            self._rollback(checkpoint)
            outcomes = [replace(o, applied=False) for o in outcomes]
        return outcomes

    def _apply_one(self, op: Operation) -> Outcome:
        if isinstance(op, CreateTransfer):
            return self._create(op.tenant_id, op.body, op.key_id)
        transfer = self.transfers.get((op.tenant_id, op.transfer_id))
        if transfer is None:
            return _fail(ErrorCode.TRANSFER_NOT_FOUND, "no such transfer")
        if transfer.status == "expired":
            return _fail(ErrorCode.PENDING_EXPIRED, "the pending transfer expired")
        if transfer.status != "pending":
            return _fail(ErrorCode.TRANSFER_NOT_PENDING, f"the transfer is {transfer.status}, not pending")
        if isinstance(op, PostPending):
            amount = transfer.amount if op.amount is None else op.amount
            if amount > transfer.amount:
                return _fail(
                    ErrorCode.AMOUNT_EXCEEDS_PENDING,
                    f"amount {amount} exceeds the pending amount {transfer.amount}",
                    "amount",
                )
            return self._resolve(transfer, "posted", amount, op.key_id)
        return self._resolve(transfer, "voided", 0, op.key_id)

    def _create(self, tenant_id: uuid.UUID, body: TransferCreate, key_id: str | None) -> Outcome:
        existing = self.transfers.get((tenant_id, body.id))
        if existing is not None:
            if existing.same_request(body):
                return Outcome(status=200, transfer=replace(existing))
            return _fail(ErrorCode.ID_CONFLICT, "this id was used for a different transfer", "id")
        if body.debit_account_id == body.credit_account_id:
            return _fail(ErrorCode.SAME_ACCOUNT, "debit and credit account must differ", "credit_account_id")
        debit = self.accounts.get((tenant_id, body.debit_account_id))
        if debit is None:
            return _fail(ErrorCode.ACCOUNT_NOT_FOUND, "debit account not found", "debit_account_id")
        credit = self.accounts.get((tenant_id, body.credit_account_id))
        if credit is None:
            return _fail(ErrorCode.ACCOUNT_NOT_FOUND, "credit account not found", "credit_account_id")
        if debit.currency != body.currency or credit.currency != body.currency:
            return _fail(
                ErrorCode.CURRENCY_MISMATCH,
                f"transfer currency {body.currency}, accounts {debit.currency} and {credit.currency}",
                "currency",
            )
        amount = body.amount
        if body.pending:
            d_posted, d_pending = debit.debits_posted, debit.debits_pending + amount
            c_posted, c_pending = credit.credits_posted, credit.credits_pending + amount
        else:
            d_posted, d_pending = debit.debits_posted + amount, debit.debits_pending
            c_posted, c_pending = credit.credits_posted + amount, credit.credits_pending
        if debit.debits_must_not_exceed_credits and d_posted + d_pending > debit.credits_posted:
            return _fail(ErrorCode.EXCEEDS_CREDITS, "debits would exceed credits on the debit account", "amount")
        if credit.credits_must_not_exceed_debits and c_posted + c_pending > credit.debits_posted:
            return _fail(ErrorCode.EXCEEDS_DEBITS, "credits would exceed debits on the credit account", "amount")
        if d_posted + d_pending > MAX_AMOUNT or c_posted + c_pending > MAX_AMOUNT:
            return _fail(ErrorCode.OVERFLOW, "an account counter would exceed 2^63-1", "amount")

        self._set(debit, "debits_posted", d_posted)
        self._set(debit, "debits_pending", d_pending)
        self._set(credit, "credits_posted", c_posted)
        self._set(credit, "credits_pending", c_pending)
        expires_at = None
        if body.pending and body.timeout_seconds > 0:
            expires_at = self.now + timedelta(seconds=body.timeout_seconds)
        transfer = TransferState(
            tenant_id=tenant_id,
            id=body.id,
            debit_account_id=body.debit_account_id,
            credit_account_id=body.credit_account_id,
            amount=amount,
            currency=body.currency,
            pending=body.pending,
            timeout_seconds=body.timeout_seconds,
            status="pending" if body.pending else "posted",
            posted_amount=0 if body.pending else amount,
            expires_at=expires_at,
            metadata=body.metadata,
            created_at=self.now,
            updated_at=self.now,
            seq=self._next_seq(),
            created_by_key_id=key_id,
            is_new=True,
        )
        key = (tenant_id, body.id)
        self.transfers[key] = transfer
        self._undo.append((None, "__new__", key))
        return Outcome(status=201, transfer=replace(transfer), applied=True)

    def _resolve(self, transfer: TransferState, status: TransferStatus, posted: int, key_id: str | None) -> Outcome:
        """Post ``posted`` of a reservation (0 for a void) and release the rest."""
        debit = self.accounts[(transfer.tenant_id, transfer.debit_account_id)]
        credit = self.accounts[(transfer.tenant_id, transfer.credit_account_id)]
        # Releasing a reservation only lowers debits+pending sums, so no limit or overflow
        # rule can newly fail here: the counters move from pending to posted.
        self._set(debit, "debits_pending", debit.debits_pending - transfer.amount)
        self._set(debit, "debits_posted", debit.debits_posted + posted)
        self._set(credit, "credits_pending", credit.credits_pending - transfer.amount)
        self._set(credit, "credits_posted", credit.credits_posted + posted)
        self._set(transfer, "status", status)
        self._set(transfer, "posted_amount", posted)
        self._set(transfer, "updated_at", self.now)
        self._set(transfer, "resolved_seq", self._next_seq())
        self._set(transfer, "resolved_by_key_id", key_id)
        return Outcome(status=200, transfer=replace(transfer), applied=True)
