"""The in-memory model the state machine (test_state_machine.py) compares the ledger with: a
deliberately simple, one-operation-at-a-time reading of docs/api.md sections 5 and 8-10, with the
rule orders of ADR 0008. No I/O."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from hypothesis import strategies as st

MAX = 2**63 - 1
GHOST = str(uuid.UUID(int=1))
MAX_ACCOUNTS = 8
amounts = st.one_of(st.integers(1, 500), st.integers(MAX - 1000, MAX))
entry_amounts = st.one_of(st.integers(1, 500), st.integers(1, 500), st.integers(1, 500), st.integers(MAX - 1000, MAX))
limits = st.sampled_from([0, 0, 50, 300, MAX])
Expected = tuple[int, str | frozenset[str] | None]


def matches(got: tuple[int, str | None], expected: Expected) -> bool:
    """The reply's (status, code) is the expected one, or one of the expected codes."""
    status, code = expected
    return got[0] == status and (got[1] in code if isinstance(code, frozenset) else got[1] == code)


@dataclass
class ModelAccount:
    currency: str
    dmnec: bool
    cmned: bool
    limit: int = 0
    dp: int = 0
    cp: int = 0
    dpe: int = 0
    cpe: int = 0
    status: str = "open"
    version: int = 0
    metadata: dict[str, str] = field(default_factory=dict)

    def empty(self) -> bool:
        return self.dp == self.cp and self.dpe == 0 and self.cpe == 0


@dataclass
class ModelTransfer:
    body: dict
    status: str
    posted_amount: int
    reversed_amount: int = 0
    reverses: str | None = None


@dataclass
class ModelTransaction:
    body: dict
    status: str
    reversed_by: list[str] = field(default_factory=list)
    reverses: str | None = None


Delta = dict[str, list[int]]  # account id -> [dp, cp, dpe, cpe] changes


@dataclass
class Model:
    accounts: dict[str, ModelAccount] = field(default_factory=dict)
    transfers: dict[str, ModelTransfer] = field(default_factory=dict)
    transactions: dict[str, ModelTransaction] = field(default_factory=dict)

    # -- the account rules shared by every movement ---------------------------------------------

    def account_rules(self, delta: Delta, expected_versions: dict[str, int]) -> str | None:
        """account_closed, account_frozen, version_mismatch, exceeds_credits, exceeds_debits,
        overflow: each rule over every account the movement touches before the next rule."""
        touched = [self.accounts[a] for a in delta]
        if any(a.status == "closed" for a in touched):
            return "account_closed"
        if any(a.status == "frozen" for a in touched):
            return "account_frozen"
        if any(self.accounts[a].version != v for a, v in expected_versions.items()):
            return "version_mismatch"
        after = {a: [c + d for c, d in zip(self.counters(a), delta[a], strict=True)] for a in delta}
        # A limit is checked on the accounts whose limited side the movement adds to: lowering a
        # limit below current use leaves the account able to receive, not to spend.
        debited = [a for a, (dp, _, dpe, _) in delta.items() if dp + dpe > 0]
        credited = [a for a, (_, cp, _, cpe) in delta.items() if cp + cpe > 0]
        for code, accounts, broken in (
            ("exceeds_credits", debited, lambda acc, dp, cp, dpe, cpe: acc.dmnec and dp + dpe > cp + acc.limit),
            ("exceeds_debits", credited, lambda acc, dp, cp, dpe, cpe: acc.cmned and cp + cpe > dp + acc.limit),
            ("overflow", list(delta), lambda acc, dp, cp, dpe, cpe: max(dp + dpe, cp + cpe) > MAX),
        ):
            if any(broken(self.accounts[a], *after[a]) for a in accounts):
                return code
        return None

    def counters(self, account_id: str) -> list[int]:
        a = self.accounts[account_id]
        return [a.dp, a.cp, a.dpe, a.cpe]

    def apply(self, delta: Delta) -> None:
        for account_id, (dp, cp, dpe, cpe) in delta.items():
            a = self.accounts[account_id]
            a.dp, a.cp, a.dpe, a.cpe = a.dp + dp, a.cp + cp, a.dpe + dpe, a.cpe + cpe
            a.version += 1

    @staticmethod
    def transfer_delta(debit: str, credit: str, amount: int, pending: bool) -> Delta:
        if pending:
            return {debit: [0, 0, amount, 0], credit: [0, 0, 0, amount]}
        return {debit: [amount, 0, 0, 0], credit: [0, amount, 0, 0]}

    @staticmethod
    def entries_delta(entries: list[dict], pending: bool) -> Delta:
        delta: Delta = {}
        for e in entries:
            change = delta.setdefault(e["account_id"], [0, 0, 0, 0])
            change[(0 if e["direction"] == "debit" else 1) + (2 if pending else 0)] += e["amount"]
        return delta

    # -- transfers ------------------------------------------------------------------------------

    def create(self, body: dict, expected_versions: dict[str, int]) -> Expected:
        existing = self.transfers.get(body["id"])
        if existing is not None:
            return (200, None) if existing.body == body else (409, "id_conflict")
        debit_id, credit_id = body["debit_account_id"], body["credit_account_id"]
        if debit_id == credit_id:
            return 422, "same_account"
        debit, credit = self.accounts.get(debit_id), self.accounts.get(credit_id)
        if debit is None or credit is None:
            return 404, "account_not_found"
        if debit.currency != body["currency"] or credit.currency != body["currency"]:
            return 422, "currency_mismatch"
        delta = self.transfer_delta(debit_id, credit_id, body["amount"], body["pending"])
        code = self.account_rules(delta, expected_versions)
        if code is not None:
            return 422, code
        self.apply(delta)
        pending = body["pending"]
        self.transfers[body["id"]] = ModelTransfer(
            body, "pending" if pending else "posted", 0 if pending else body["amount"]
        )
        return 201, None

    def resolve(self, transfer_id: str, action: str, amount: int | None) -> Expected:
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            return 404, "transfer_not_found"
        if transfer.status != "pending":
            return 422, "transfer_not_pending"
        full = transfer.body["amount"]
        posted = 0 if action == "void" else (full if amount is None else amount)
        if posted > full:
            return 422, "amount_exceeds_pending"
        debit, credit = transfer.body["debit_account_id"], transfer.body["credit_account_id"]
        self.apply({debit: [posted, 0, -full, 0], credit: [0, posted, 0, -full]})
        transfer.status, transfer.posted_amount = ("voided", 0) if action == "void" else ("posted", posted)
        return 200, None

    def reverse(self, original_id: str, body: dict) -> Expected:
        existing = self.transfers.get(body["id"])
        if existing is not None:
            same = (
                existing.reverses == original_id
                and existing.body["metadata"] == body.get("metadata", {})
                and body.get("amount") in (None, existing.body["amount"])
            )
            return (200, None) if same else (409, "id_conflict")
        original = self.transfers.get(original_id)
        if original is None:
            return 404, "transfer_not_found"
        if original.status != "posted":
            return 422, "transfer_not_posted"
        left = original.posted_amount - original.reversed_amount
        amount = body.get("amount") or left
        if amount > left or amount == 0:
            return 422, "amount_exceeds_reversible"
        debit, credit = original.body["credit_account_id"], original.body["debit_account_id"]
        delta = self.transfer_delta(debit, credit, amount, False)
        code = self.account_rules(delta, body.get("expected_versions", {}))
        if code is not None:
            return 422, code
        self.apply(delta)
        original.reversed_amount += amount
        stored = {
            "id": body["id"],
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": amount,
            "currency": original.body["currency"],
            "pending": False,
            "timeout_seconds": 0,
            "metadata": body.get("metadata", {}),
        }
        self.transfers[body["id"]] = ModelTransfer(stored, "posted", amount, reverses=original_id)
        return 201, None

    # -- transactions ---------------------------------------------------------------------------

    def create_transaction(
        self, body: dict, expected_versions: dict[str, int]
    ) -> tuple[int, str | frozenset[str] | None, int | None]:
        existing = self.transactions.get(body["id"])
        if existing is not None:
            return (200, None, None) if existing.body == body else (409, "id_conflict", None)
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for e in body["entries"]:
            sums[e["currency"]][0 if e["direction"] == "debit" else 1] += e["amount"]
        if any(d != c for d, c in sums.values()):
            return 422, "unbalanced", None
        for i, e in enumerate(body["entries"]):
            if e["account_id"] not in self.accounts:
                return 404, "account_not_found", i
        for i, e in enumerate(body["entries"]):
            if self.accounts[e["account_id"]].currency != e["currency"]:
                return 422, "currency_mismatch", i
        delta = self.entries_delta(body["entries"], body["pending"])
        code = self.account_rules(delta, expected_versions)
        if code is not None:
            return 422, code, None
        self.apply(delta)
        self.transactions[body["id"]] = ModelTransaction(body, "pending" if body["pending"] else "posted")
        return 201, None, None

    def resolve_transaction(self, transaction_id: str, action: str) -> Expected:
        transaction = self.transactions.get(transaction_id)
        if transaction is None:
            return 404, "transaction_not_found"
        if transaction.status != "pending":
            return 422, "transfer_not_pending"
        held = self.entries_delta(transaction.body["entries"], True)
        posted = self.entries_delta(transaction.body["entries"], False) if action == "post" else {}
        delta = {}
        for account_id, (_, _, dpe, cpe) in held.items():
            dp, cp, _, _ = posted.get(account_id, [0, 0, 0, 0])
            delta[account_id] = [dp, cp, -dpe, -cpe]
        self.apply(delta)
        transaction.status = "posted" if action == "post" else "voided"
        return 200, None

    def reverse_transaction(self, original_id: str, body: dict) -> Expected:
        existing = self.transactions.get(body["id"])
        if existing is not None:
            same = existing.reverses == original_id and existing.body["metadata"] == body.get("metadata", {})
            return (200, None) if same else (409, "id_conflict")
        original = self.transactions.get(original_id)
        if original is None:
            return 404, "transaction_not_found"
        if original.status != "posted":
            return 422, "transfer_not_posted"
        if original.reversed_by:
            return 422, "amount_exceeds_reversible"
        swap = {"debit": "credit", "credit": "debit"}
        entries = [{**e, "direction": swap[e["direction"]]} for e in original.body["entries"]]
        delta = self.entries_delta(entries, False)
        code = self.account_rules(delta, {})
        if code is not None:
            return 422, code
        self.apply(delta)
        original.reversed_by.append(body["id"])
        stored = {
            "id": body["id"],
            "entries": entries,
            "pending": False,
            "timeout_seconds": 0,
            "metadata": body.get("metadata", {}),
        }
        self.transactions[body["id"]] = ModelTransaction(stored, "posted", reverses=original_id)
        return 201, None

    # -- account lifecycle ----------------------------------------------------------------------

    def lifecycle(self, account_id: str, verb: str) -> Expected:
        account = self.accounts.get(account_id)
        if account is None:
            return 404, "account_not_found"
        if verb == "close":
            if account.status == "closed":
                return 200, None
            if not account.empty():
                return 422, "account_not_empty"
            account.status, account.version = "closed", account.version + 1
            return 200, None
        if account.status == "closed":
            return 422, "account_closed"
        target = "frozen" if verb == "freeze" else "open"
        if account.status != target:
            account.status, account.version = target, account.version + 1
        return 200, None

    def patch(self, account_id: str, body: dict) -> set[Expected]:
        account = self.accounts.get(account_id)
        if account is None:
            return {(404, "account_not_found")}
        stale = any(account.version != v for v in body.get("expected_versions", {}).values())
        if account.status == "closed":
            # Which of the two answers first is not part of the decisions: either is right.
            return {(422, "account_closed"), (422, "version_mismatch")} if stale else {(422, "account_closed")}
        if stale:
            return {(422, "version_mismatch")}
        changed = False
        if "overdraft_limit" in body and body["overdraft_limit"] != account.limit:
            account.limit, changed = body["overdraft_limit"], True
        if "metadata" in body and body["metadata"] != account.metadata:
            account.metadata, changed = body["metadata"], True
        account.version += changed
        return {(200, None)}
