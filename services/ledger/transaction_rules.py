"""The rules of multi-leg transactions (docs/api.md sections 8 and 9). No I/O here.

A transaction is 2-100 entries applied all or nothing. Rule order for a new one (the first failing
rule answers): id replay / ``id_conflict`` (transaction ids are a namespace of their own),
``unbalanced`` (per currency, debits differ from credits), ``account_not_found`` (the first such
entry, ``errors[].index``), ``currency_mismatch`` (likewise), ``account_closed``, ``account_frozen``
(entries in order), ``version_mismatch``, then per account, in order of first appearance and on its
state after all its entries: ``exceeds_credits`` (if the transaction debits it), ``exceeds_debits``
(if it credits it), ``overflow``.

Post (whole amounts only), void and expiry behave as for a transfer, entry by entry. A reversal
(``POST /v1/transactions/{id}/reverse``) is a new posted transaction with every direction swapped;
only one can exist (the reversal is whole), a second is ``amount_exceeds_reversible``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import replace
from datetime import timedelta

from services.ledger.operations import CreateTransaction, Outcome, ResolveTransaction, ReverseTransaction, fail
from services.ledger.rules import limit_failure, movable, versions_match
from services.ledger.state import AccountState, LedgerState, Leg, TransactionState
from shared.errors import ErrorCode
from shared.ledger_api import TransactionCreate
from shared.ledger_query_api import EntryKind


def _same_request(existing: TransactionState, body: TransactionCreate) -> bool:
    return (
        existing.reverses is None
        and existing.pending == body.pending
        and existing.timeout_seconds == body.timeout_seconds
        and existing.metadata == body.metadata
        and len(existing.legs) == len(body.entries)
        and all(
            leg.account_id == e.account_id
            and leg.direction == e.direction
            and leg.amount == e.amount
            and leg.currency == e.currency
            for leg, e in zip(existing.legs, body.entries, strict=True)
        )
    )


def create(state: LedgerState, op: CreateTransaction) -> Outcome:
    body = op.body
    existing = state.transactions.get((op.tenant_id, body.id))
    if existing is not None:
        if _same_request(existing, body):
            return Outcome(status=200, transaction=replace(existing))
        return fail(ErrorCode.ID_CONFLICT, "this id was used for a different transaction", "id")
    legs = [Leg(e.account_id, e.direction, e.amount, e.currency) for e in body.entries]
    return _new_transaction(
        state,
        op.tenant_id,
        body.id,
        legs,
        body.pending,
        body.timeout_seconds,
        body.metadata,
        body.expected_versions,
        op.key_id,
        None,
    )


def _unbalanced(legs: list[Leg]) -> str | None:
    sums: dict[str, int] = defaultdict(int)
    for leg in legs:
        sums[leg.currency] += leg.amount if leg.direction == "debit" else -leg.amount
    for currency, difference in sorted(sums.items()):
        if difference:
            side = "debits" if difference > 0 else "credits"
            return f"{currency}: {side} exceed the other side by {abs(difference)}"
    return None


def _new_transaction(
    state: LedgerState,
    tenant_id: uuid.UUID,
    transaction_id: uuid.UUID,
    legs: list[Leg],
    pending: bool,
    timeout: int,
    metadata: dict[str, str],
    expected_versions: dict[uuid.UUID, int],
    key_id: str | None,
    reversing: TransactionState | None,
) -> Outcome:
    problem = _unbalanced(legs)
    if problem is not None:
        return fail(ErrorCode.UNBALANCED, problem, "entries")
    accounts: list[AccountState] = []
    for index, leg in enumerate(legs):
        account = state.accounts.get((tenant_id, leg.account_id))
        if account is None:
            return fail(ErrorCode.ACCOUNT_NOT_FOUND, f"entry {index}: account not found", "account_id", index)
        accounts.append(account)
    for index, (leg, account) in enumerate(zip(legs, accounts, strict=True)):
        if account.currency != leg.currency:
            return fail(
                ErrorCode.CURRENCY_MISMATCH,
                f"entry {index}: currency {leg.currency}, account {account.currency}",
                "currency",
                index,
            )
    refused = movable(tuple(accounts), ("account_id",) * len(accounts), tuple(range(len(accounts))))
    if refused is not None:
        return refused
    refused = versions_match(state, tenant_id, expected_versions)
    if refused is not None:
        return refused

    # Each account's state after all its entries, in order of first appearance.
    after: dict[uuid.UUID, list[int]] = {}
    sides: dict[uuid.UUID, set[str]] = defaultdict(set)
    for leg, account in zip(legs, accounts, strict=True):
        counters = after.setdefault(
            account.id, [account.debits_posted, account.debits_pending, account.credits_posted, account.credits_pending]
        )
        slot = (0 if leg.direction == "debit" else 2) + (1 if pending else 0)
        counters[slot] += leg.amount
        sides[account.id].add(leg.direction)
    # Rule by rule (exceeds_credits, then exceeds_debits, then overflow), account by account.
    checks = ((True, False, False), (False, True, False), (False, False, True))
    for debits_rule, credits_rule, overflow_rule in checks:
        for account_id, (d_posted, d_pending, c_posted, c_pending) in after.items():
            account = state.accounts[(tenant_id, account_id)]
            refused = limit_failure(
                account,
                (d_posted, d_pending),
                (c_posted, c_pending),
                debits_rule and "debit" in sides[account_id],
                credits_rule and "credit" in sides[account_id],
                overflow_rule,
            )
            if refused is not None:
                index = next(i for i, leg in enumerate(legs) if leg.account_id == account_id)
                return replace(refused, field="amount", index=index)

    seq = state.next_seq()
    kind: EntryKind = "pending" if pending else "posted"
    for leg, account in zip(legs, accounts, strict=True):
        state.move(account, kind, leg.direction, leg.amount, ("transaction", transaction_id), seq)
    transaction = TransactionState(
        tenant_id=tenant_id,
        id=transaction_id,
        legs=legs,
        pending=pending,
        timeout_seconds=timeout,
        status="pending" if pending else "posted",
        expires_at=state.now + timedelta(seconds=timeout) if pending and timeout > 0 else None,
        metadata=metadata,
        created_at=state.now,
        updated_at=state.now,
        seq=seq,
        reverses=None if reversing is None else reversing.id,
        created_by_key_id=key_id,
        is_new=True,
    )
    state.add_transaction(transaction)
    if reversing is not None:
        state.set(reversing, "reversed_by", transaction_id)
    state.emit("transaction.created", transaction)
    return Outcome(status=201, transaction=replace(transaction), applied=True)


def resolve(state: LedgerState, op: ResolveTransaction) -> Outcome:
    transaction = state.transactions.get((op.tenant_id, op.transaction_id))
    if transaction is None:
        return fail(ErrorCode.TRANSACTION_NOT_FOUND, "no such transaction")
    if transaction.status == "expired":
        return fail(ErrorCode.PENDING_EXPIRED, "the pending transaction expired")
    if transaction.status != "pending":
        return fail(ErrorCode.TRANSFER_NOT_PENDING, f"the transaction is {transaction.status}, not pending")
    _resolve(state, transaction, "posted" if op.post else "voided", op.key_id)
    state.emit("transaction.posted" if op.post else "transaction.voided", transaction)
    return Outcome(status=200, transaction=replace(transaction), applied=True)


def _resolve(state: LedgerState, transaction: TransactionState, status: str, key_id: str | None) -> None:
    """Post every entry whole, or release every entry (void, expiry); frozen accounts included."""
    seq = state.next_seq()
    kind: EntryKind = "pending_posted" if status == "posted" else "pending_released"
    for leg in transaction.legs:
        account = state.accounts[(transaction.tenant_id, leg.account_id)]
        state.move(account, kind, leg.direction, leg.amount, ("transaction", transaction.id), seq)
    state.set(transaction, "status", status)
    state.set(transaction, "updated_at", state.now)
    state.set(transaction, "resolved_seq", seq)
    state.set(transaction, "resolved_by_key_id", key_id)


def expire_due(state: LedgerState) -> None:
    """Release every loaded pending transaction past its ``expires_at``."""
    for transaction in list(state.transactions.values()):
        due = transaction.expires_at is not None and transaction.expires_at <= state.now
        if transaction.status == "pending" and due:
            state.begin_operation()
            _resolve(state, transaction, "expired", None)
            state.set(transaction, "updated_at", transaction.expires_at)
            state.emit("transaction.expired", transaction)


def reverse(state: LedgerState, op: ReverseTransaction) -> Outcome:
    body = op.body
    existing = state.transactions.get((op.tenant_id, body.id))
    if existing is not None:
        if existing.reverses == op.transaction_id and existing.metadata == body.metadata:
            return Outcome(status=200, transaction=replace(existing))
        return fail(ErrorCode.ID_CONFLICT, "this id was used for a different transaction", "id")
    original = state.transactions.get((op.tenant_id, op.transaction_id))
    if original is None:
        return fail(ErrorCode.TRANSACTION_NOT_FOUND, "no such transaction")
    if original.status != "posted":
        return fail(ErrorCode.TRANSFER_NOT_POSTED, f"the transaction is {original.status}, not posted")
    if original.reversed_by is not None:
        return fail(
            ErrorCode.AMOUNT_EXCEEDS_REVERSIBLE, f"the transaction was already reversed by {original.reversed_by}"
        )
    legs = [
        Leg(leg.account_id, "credit" if leg.direction == "debit" else "debit", leg.amount, leg.currency)
        for leg in original.legs
    ]
    return _new_transaction(state, op.tenant_id, body.id, legs, False, 0, body.metadata, {}, op.key_id, original)
