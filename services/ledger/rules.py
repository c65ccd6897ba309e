"""The rules of the ledger, as pure functions over in-memory state. No I/O here.

:meth:`services.ledger.state.LedgerState` holds what a write transaction locked and loaded;
:func:`apply` applies one write request's operations to it one at a time, in order, exactly as if
each had been sent alone. The store (:mod:`.store`) loads the state under row locks, calls
:func:`apply` for each request of a group, and persists what changed in the same database
transaction, so every rule is checked atomically with the write.

This module: the operations, the dispatch, and the transfer rules. Rule order for a new transfer
(the first failing rule answers): id replay / ``id_conflict``, ``same_account``,
``account_not_found`` (debit account first), ``currency_mismatch``, ``account_closed`` (debit
first), ``account_frozen`` (debit first), ``version_mismatch``, ``exceeds_credits``,
``exceeds_debits``, ``overflow``. For post and void: ``transfer_not_found``, ``pending_expired``,
``transfer_not_pending``, ``amount_exceeds_pending``. For a reversal: replay / ``id_conflict`` by
the new id, ``transfer_not_found``, ``transfer_not_posted``, ``amount_exceeds_reversible``, then the
new-transfer rules from ``account_closed`` on. Transactions: :mod:`.transaction_rules`; account
lifecycle: :mod:`.account_rules`. docs/adr/0008-transactions-and-entries.md explains the model.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from services.ledger.operations import (
    CreateTransaction,
    CreateTransfer,
    Operation,
    Outcome,
    PostPending,
    ResolveTransaction,
    ReverseTransaction,
    ReverseTransfer,
    VoidPending,
    WriteRequest,
    fail,
)
from services.ledger.state import AccountState, LedgerState, TransferState
from shared.errors import ErrorCode
from shared.ledger_api import (
    MAX_AMOUNT,
    TransferCreate,
    TransferReverse,
)
from shared.ledger_query_api import EntryKind, SourceType

# -- dispatch -------------------------------------------------------------------------------------


def apply(state: LedgerState, request: WriteRequest) -> list[Outcome]:
    """Apply one request's operations in order; an atomic request that fails changes nothing."""
    checkpoint = state.checkpoint()
    outcomes = [_apply_one(state, op) for op in request.operations]
    if request.atomic and any(o.code is not None for o in outcomes):
        state.rollback(checkpoint)
        outcomes = [replace(o, applied=False) for o in outcomes]
    return outcomes


def _apply_one(state: LedgerState, op: Operation) -> Outcome:
    # Imported here: those modules use this one's Outcome and checks.
    from services.ledger import account_rules, transaction_rules

    state.begin_operation()
    if isinstance(op, CreateTransfer):
        return _create(state, op)
    if isinstance(op, PostPending | VoidPending):
        return _resolve_op(state, op)
    if isinstance(op, ReverseTransfer):
        return _reverse(state, op)
    if isinstance(op, CreateTransaction):
        return transaction_rules.create(state, op)
    if isinstance(op, ResolveTransaction):
        return transaction_rules.resolve(state, op)
    if isinstance(op, ReverseTransaction):
        return transaction_rules.reverse(state, op)
    return account_rules.change(state, op)


def expire_due(state: LedgerState) -> None:
    """Release every loaded reservation whose ``expires_at`` has passed (before any request)."""
    from services.ledger import transaction_rules

    for transfer in list(state.transfers.values()):
        if transfer.status == "pending" and transfer.expires_at is not None and transfer.expires_at <= state.now:
            state.begin_operation()
            _resolve(state, transfer, "expired", 0, None)
            # The reservation ended at expires_at, whenever the sweep got to it.
            state.set(transfer, "updated_at", transfer.expires_at)
            state.emit("transfer.expired", transfer)
    transaction_rules.expire_due(state)


# -- checks shared with transactions --------------------------------------------------------------


def movable(
    accounts: tuple[AccountState, ...], fields: tuple[str, ...], indexes: tuple[int, ...] | None = None
) -> Outcome | None:
    """``account_closed`` for the first closed account, else ``account_frozen`` for the first frozen
    one, among the accounts a new movement would touch (in the item's order)."""
    for status, code in (("closed", ErrorCode.ACCOUNT_CLOSED), ("frozen", ErrorCode.ACCOUNT_FROZEN)):
        for i, account in enumerate(accounts):
            if account.status == status:
                index = None if indexes is None else indexes[i]
                return fail(code, f"account {account.id} is {status}", fields[i], index)
    return None


def versions_match(state: LedgerState, tenant_id: uuid.UUID, expected: dict[uuid.UUID, int]) -> Outcome | None:
    """``version_mismatch`` naming the current version, for the first account that moved on."""
    for account_id, version in expected.items():
        account = state.accounts[(tenant_id, account_id)]
        if account.version != version:
            return fail(
                ErrorCode.VERSION_MISMATCH,
                f"account {account_id} is at version {account.version}, not {version}",
                "expected_versions",
            )
    return None


def limit_failure(
    account: AccountState,
    debits: tuple[int, int],
    credits: tuple[int, int],
    checks_debits: bool,
    checks_credits: bool,
    checks_overflow: bool = True,
) -> Outcome | None:
    """Limits and overflow of ``account`` if its counters became ``debits``/``credits`` (posted, pending).

    The debit-side flag is checked only when the change adds debits, the credit side only when it
    adds credits: a movement that only lowers how far an account is past its limit (after a PATCH
    lowered the limit) is always allowed.
    """
    d_posted, d_pending = debits
    c_posted, c_pending = credits
    limit = account.overdraft_limit
    if checks_debits and account.debits_must_not_exceed_credits and d_posted + d_pending > c_posted + limit:
        return fail(ErrorCode.EXCEEDS_CREDITS, "debits would exceed credits on the debit account", "amount")
    if checks_credits and account.credits_must_not_exceed_debits and c_posted + c_pending > d_posted + limit:
        return fail(ErrorCode.EXCEEDS_DEBITS, "credits would exceed debits on the credit account", "amount")
    if checks_overflow and (d_posted + d_pending > MAX_AMOUNT or c_posted + c_pending > MAX_AMOUNT):
        return fail(ErrorCode.OVERFLOW, "an account counter would exceed 2^63-1", "amount")
    return None


# -- transfers -------------------------------------------------------------------------------------


def _same_request(existing: TransferState, body: TransferCreate) -> bool:
    """Section 5: the same id with the same request (defaults filled in) is a replay."""
    return (
        existing.reverses is None
        and existing.debit_account_id == body.debit_account_id
        and existing.credit_account_id == body.credit_account_id
        and existing.amount == body.amount
        and existing.currency == body.currency
        and existing.pending == body.pending
        and existing.timeout_seconds == body.timeout_seconds
        and existing.metadata == body.metadata
    )


def _create(state: LedgerState, op: CreateTransfer) -> Outcome:
    body = op.body
    existing = state.transfers.get((op.tenant_id, body.id))
    if existing is not None:
        if _same_request(existing, body):
            return Outcome(status=200, transfer=existing.copy())
        return fail(ErrorCode.ID_CONFLICT, "this id was used for a different transfer", "id")
    if body.debit_account_id == body.credit_account_id:
        return fail(ErrorCode.SAME_ACCOUNT, "debit and credit account must differ", "credit_account_id")
    debit = state.accounts.get((op.tenant_id, body.debit_account_id))
    if debit is None:
        return fail(ErrorCode.ACCOUNT_NOT_FOUND, "debit account not found", "debit_account_id")
    credit = state.accounts.get((op.tenant_id, body.credit_account_id))
    if credit is None:
        return fail(ErrorCode.ACCOUNT_NOT_FOUND, "credit account not found", "credit_account_id")
    if debit.currency != body.currency or credit.currency != body.currency:
        return fail(
            ErrorCode.CURRENCY_MISMATCH,
            f"transfer currency {body.currency}, accounts {debit.currency} and {credit.currency}",
            "currency",
        )
    return _new_transfer(state, op.tenant_id, body.id, debit, credit, body, op.key_id, None)


def _new_transfer(
    state: LedgerState,
    tenant_id: uuid.UUID,
    transfer_id: uuid.UUID,
    debit: AccountState,
    credit: AccountState,
    body: TransferCreate | TransferReverse,
    key_id: str | None,
    reversing: TransferState | None,
) -> Outcome:
    """The rules from ``account_closed`` on, then the write, for a new transfer or a reversal."""
    refused = movable((debit, credit), ("debit_account_id", "credit_account_id")) or versions_match(
        state, tenant_id, body.expected_versions
    )
    if refused is not None:
        return refused
    if reversing is None:
        assert isinstance(body, TransferCreate)
        amount, currency, pending, timeout, metadata = (
            body.amount,
            body.currency,
            body.pending,
            body.timeout_seconds,
            body.metadata,
        )
    else:
        left = reversing.posted_amount - reversing.reversed_amount
        amount, currency, pending, timeout, metadata = (
            left if body.amount is None else body.amount,
            reversing.currency,
            False,
            0,
            body.metadata,
        )
    if pending:
        d_after = (debit.debits_posted, debit.debits_pending + amount)
        c_after = (credit.credits_posted, credit.credits_pending + amount)
    else:
        d_after = (debit.debits_posted + amount, debit.debits_pending)
        c_after = (credit.credits_posted + amount, credit.credits_pending)
    d_state = (debit, d_after, (debit.credits_posted, debit.credits_pending))
    c_state = (credit, (credit.debits_posted, credit.debits_pending), c_after)
    refused = (
        limit_failure(*d_state, True, False, False)
        or limit_failure(*c_state, False, True, False)
        or limit_failure(*d_state, False, False, True)
        or limit_failure(*c_state, False, False, True)
    )
    if refused is not None:
        return refused

    seq = state.next_seq()
    kind: EntryKind = "pending" if pending else "posted"
    state.move(debit, kind, "debit", amount, ("transfer", transfer_id), seq)
    state.move(credit, kind, "credit", amount, ("transfer", transfer_id), seq)
    expires_at = state.now + timedelta(seconds=timeout) if pending and timeout > 0 else None
    transfer = TransferState(
        tenant_id=tenant_id,
        id=transfer_id,
        debit_account_id=debit.id,
        credit_account_id=credit.id,
        amount=amount,
        currency=currency,
        pending=pending,
        timeout_seconds=timeout,
        status="pending" if pending else "posted",
        posted_amount=0 if pending else amount,
        expires_at=expires_at,
        metadata=metadata,
        created_at=state.now,
        updated_at=state.now,
        seq=seq,
        created_by_key_id=key_id,
        reverses=None if reversing is None else reversing.id,
        is_new=True,
    )
    state.add_transfer(transfer)
    if reversing is not None:
        state.set(reversing, "reversed_amount", reversing.reversed_amount + amount)
    state.emit("transfer.created", transfer)
    return Outcome(status=201, transfer=transfer.copy(), applied=True)


def _resolve_op(state: LedgerState, op: PostPending | VoidPending) -> Outcome:
    transfer = state.transfers.get((op.tenant_id, op.transfer_id))
    if transfer is None:
        return fail(ErrorCode.TRANSFER_NOT_FOUND, "no such transfer")
    if transfer.status == "expired":
        return fail(ErrorCode.PENDING_EXPIRED, "the pending transfer expired")
    if transfer.status != "pending":
        return fail(ErrorCode.TRANSFER_NOT_PENDING, f"the transfer is {transfer.status}, not pending")
    if isinstance(op, PostPending):
        amount = transfer.amount if op.amount is None else op.amount
        if amount > transfer.amount:
            return fail(
                ErrorCode.AMOUNT_EXCEEDS_PENDING,
                f"amount {amount} exceeds the pending amount {transfer.amount}",
                "amount",
            )
        _resolve(state, transfer, "posted", amount, op.key_id)
        state.emit("transfer.posted", transfer)
    else:
        _resolve(state, transfer, "voided", 0, op.key_id)
        state.emit("transfer.voided", transfer)
    return Outcome(status=200, transfer=transfer.copy(), applied=True)


def _resolve(state: LedgerState, transfer: TransferState, status: str, posted: int, key_id: str | None) -> None:
    """Post ``posted`` of a reservation (0 for a void or an expiry) and release the rest.

    Releasing only lowers debits+pending sums, so no limit or overflow rule can newly fail here:
    the counters move from pending to posted. Frozen accounts may be resolved (section 10).
    """
    debit = state.accounts[(transfer.tenant_id, transfer.debit_account_id)]
    credit = state.accounts[(transfer.tenant_id, transfer.credit_account_id)]
    seq = state.next_seq()
    source: tuple[SourceType, uuid.UUID] = ("transfer", transfer.id)
    steps: tuple[tuple[EntryKind, int], ...] = (
        ("pending_posted", posted),
        ("pending_released", transfer.amount - posted),
    )
    for kind, amount in steps:
        if amount > 0:
            state.move(debit, kind, "debit", amount, source, seq)
            state.move(credit, kind, "credit", amount, source, seq)
    state.set(transfer, "status", status)
    state.set(transfer, "posted_amount", posted)
    state.set(transfer, "updated_at", state.now)
    state.set(transfer, "resolved_seq", seq)
    state.set(transfer, "resolved_by_key_id", key_id)


def _reverse(state: LedgerState, op: ReverseTransfer) -> Outcome:
    body = op.body
    existing = state.transfers.get((op.tenant_id, body.id))
    if existing is not None:
        same = (
            existing.reverses == op.transfer_id
            and (body.amount is None or body.amount == existing.amount)
            and existing.metadata == body.metadata
        )
        if same:
            return Outcome(status=200, transfer=existing.copy())
        return fail(ErrorCode.ID_CONFLICT, "this id was used for a different transfer", "id")
    original = state.transfers.get((op.tenant_id, op.transfer_id))
    if original is None:
        return fail(ErrorCode.TRANSFER_NOT_FOUND, "no such transfer")
    if original.status != "posted":
        return fail(ErrorCode.TRANSFER_NOT_POSTED, f"the transfer is {original.status}, not posted")
    left = original.posted_amount - original.reversed_amount
    if left == 0 or (body.amount is not None and body.amount > left):
        return fail(
            ErrorCode.AMOUNT_EXCEEDS_REVERSIBLE,
            f"{left} of the transfer's posted {original.posted_amount} is left to reverse",
            "amount",
        )
    if not body.expected_versions.keys() <= {original.debit_account_id, original.credit_account_id}:
        return fail(
            ErrorCode.INVALID_REQUEST, "expected_versions may only name the reversal's accounts", "expected_versions"
        )
    # The reversal moves the money back: the original's credit account is debited.
    debit = state.accounts[(op.tenant_id, original.credit_account_id)]
    credit = state.accounts[(op.tenant_id, original.debit_account_id)]
    return _new_transfer(state, op.tenant_id, body.id, debit, credit, body, op.key_id, original)
