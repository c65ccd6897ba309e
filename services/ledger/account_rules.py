"""Account lifecycle, limit and metadata changes (docs/api.md section 10). No I/O here.

They run on the write path like transfers, under the account's row lock and in request order, so a
freeze queued in the same group as transfers is seen by exactly the transfers after it.

- freeze / unfreeze: ``account_not_found``, ``account_closed``; freezing a frozen account (or
  unfreezing an open one) changes nothing and answers 200.
- close: ``account_not_found``; closing a closed account answers 200; ``account_not_empty`` unless
  ``debits_posted == credits_posted`` and nothing is pending. Final.
- update (PATCH): ``account_not_found``, ``account_closed``, ``version_mismatch``; replaces the
  metadata and/or the overdraft limit given. Lowering the limit below what the account already
  uses is allowed: ``limit_allowance`` records how far past the new limit it is, so later debits
  fail while the database's CHECK (migration 0011) still holds.

A change that changes nothing writes nothing and keeps the version.
"""

from __future__ import annotations

from dataclasses import replace

import msgspec

from services.ledger.operations import ChangeAccount, Outcome, fail
from services.ledger.rules import versions_match
from services.ledger.state import LedgerState
from shared.errors import ErrorCode


def change(state: LedgerState, op: ChangeAccount) -> Outcome:
    account = state.accounts.get((op.tenant_id, op.account_id))
    if account is None:
        return fail(ErrorCode.ACCOUNT_NOT_FOUND, "no such account")
    if op.action == "close":
        if account.status != "closed":
            if account.debits_posted != account.credits_posted or account.debits_pending or account.credits_pending:
                return fail(
                    ErrorCode.ACCOUNT_NOT_EMPTY,
                    "only an account with a zero posted balance and nothing pending can be closed",
                )
            state.set(account, "status", "closed")
            state.record_change(account, "closed", op.key_id)
        return Outcome(status=200, account=replace(account), applied=True)
    if account.status == "closed":
        return fail(ErrorCode.ACCOUNT_CLOSED, f"account {account.id} is closed")
    if op.action in ("freeze", "unfreeze"):
        target = "frozen" if op.action == "freeze" else "open"
        if account.status != target:
            state.set(account, "status", target)
            state.record_change(account, "frozen" if target == "frozen" else "unfrozen", op.key_id)
        return Outcome(status=200, account=replace(account), applied=True)

    patch = op.patch
    assert patch is not None and op.action == "update"
    refused = versions_match(state, op.tenant_id, patch.expected_versions)
    if refused is not None:
        return refused
    changed = False
    if patch.metadata is not msgspec.UNSET and patch.metadata != account.metadata:
        state.set(account, "metadata", patch.metadata)
        changed = True
    if patch.overdraft_limit is not msgspec.UNSET and patch.overdraft_limit != account.overdraft_limit:
        state.set(account, "overdraft_limit", patch.overdraft_limit)
        # Past the new limit already: tolerate exactly that much, ratcheting down (state.move).
        allowance = max(0, account.excess() - patch.overdraft_limit)
        if allowance != account.limit_allowance:
            state.set(account, "limit_allowance", allowance)
        changed = True
    if changed:
        state.record_change(account, "updated", op.key_id)
    return Outcome(status=200, account=replace(account), applied=True)
