"""A hypothesis state machine drives the ledger over HTTP and compares every answer and every
account with a deliberately simple in-memory model of docs/api.md sections 5 and
8-10: transfers and two phases, multi-leg transactions, reversals of both, freeze,
unfreeze, close, overdraft limits, PATCH, versions and expected_versions.

The rule orders the model follows are the ledger's documented ones (services/ledger/rules.py and
the issue 11 ADR): transfers 400, replay, same_account, account_not_found (debit first),
currency_mismatch, account_closed, account_frozen (debit first each), version_mismatch,
exceeds_credits, exceeds_debits, overflow; transactions replay, unbalanced, account_not_found and
currency_mismatch (first entry), then the account rules on each account's state after all its
entries; reversals replay, not found, transfer_not_posted, amount_exceeds_reversible, then the
account rules on the swapped accounts."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.ledger.conftest import INTERNAL_TOKEN
from tests.support.processes import ServiceProcess

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


def expected_versions_for(data: st.DataObject, model: Model, account_ids: list[str]) -> dict[str, int]:
    """None, the current version or a stale one, for some of the accounts a write moves."""
    chosen = data.draw(st.lists(st.sampled_from(account_ids), max_size=2, unique=True)) if account_ids else []
    versions = {}
    for account_id in chosen:
        current = model.accounts[account_id].version if account_id in model.accounts else 0
        versions[account_id] = data.draw(st.sampled_from([current, current, current + 1]))
    return versions


class LedgerMachine(RuleBasedStateMachine):
    clients: list[httpx.Client] = []

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.tenant = str(uuid.uuid4())
        self.step = 0

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        self.step += 1
        client = self.clients[self.step % len(self.clients)]  # alternate between ledger processes
        return client.request(method, path, json=body, headers={"X-Tenant-Id": self.tenant})

    def answer(self, reply: httpx.Response) -> Expected:
        return reply.status_code, reply.json().get("code")

    def open(self, currency: str, dmnec: bool, cmned: bool, limit: int) -> None:
        body = {
            "currency": currency,
            "flags": {"debits_must_not_exceed_credits": dmnec, "credits_must_not_exceed_debits": cmned},
            "overdraft_limit": limit,
        }
        reply = self.call("POST", "/v1/accounts", body)
        assert reply.status_code == 201, reply.json()
        self.model.accounts[reply.json()["id"]] = ModelAccount(currency, dmnec, cmned, limit)

    def account_ids(self) -> list[str]:
        return [*self.model.accounts, GHOST]

    def pick(self, data: st.DataObject, currency: str) -> str:
        """Mostly an account of ``currency``; sometimes any account or one that does not exist."""
        same = [i for i, a in self.model.accounts.items() if a.currency == currency]
        return data.draw(st.sampled_from(same * 4 + self.account_ids()))

    @initialize()
    def open_accounts(self) -> None:
        for currency, dmnec, cmned, limit in [
            ("USD", False, False, 0),
            ("USD", True, False, 0),
            ("USD", False, True, 0),
            ("USD", True, False, 100),
            ("EUR", False, False, 0),
        ]:
            self.open(currency, dmnec, cmned, limit)

    @precondition(lambda self: len(self.model.accounts) < MAX_ACCOUNTS)
    @rule(currency=st.sampled_from(["USD", "EUR"]), dmnec=st.booleans(), cmned=st.booleans(), limit=limits)
    def open_account(self, currency: str, dmnec: bool, cmned: bool, limit: int) -> None:
        self.open(currency, dmnec, cmned, limit)

    @rule(
        data=st.data(),
        amount=amounts,
        pending=st.booleans(),
        reuse=st.booleans(),
        currency=st.sampled_from(["USD", "USD", "USD", "EUR"]),
    )
    def transfer(self, data: st.DataObject, amount: int, pending: bool, reuse: bool, currency: str) -> None:
        debit = self.pick(data, currency)
        credit = self.pick(data, currency)
        transfer_id = str(uuid.uuid4())
        ordinary = [i for i, t in self.model.transfers.items() if t.reverses is None]
        if reuse and ordinary:
            transfer_id = data.draw(st.sampled_from(ordinary))
        body = {
            "id": transfer_id,
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": amount,
            "currency": currency,
            "pending": pending,
            "timeout_seconds": 0,
            "metadata": {},
        }
        versions = expected_versions_for(data, self.model, list(dict.fromkeys([debit, credit])))
        expected = self.model.create(body, versions)
        sent = {**body, "expected_versions": versions} if versions else body
        reply = self.call("POST", "/v1/transfers", sent)
        assert matches(self.answer(reply), expected), (sent, reply.json())
        if expected[0] == 201:
            assert (reply.json()["reverses"], reply.json()["reversed_amount"]) == (None, 0)

    @rule(data=st.data(), action=st.sampled_from(["post", "void"]), amount=st.one_of(st.none(), amounts))
    def resolve(self, data: st.DataObject, action: str, amount: int | None) -> None:
        if not self.model.transfers:
            return
        transfer_id = data.draw(st.sampled_from(list(self.model.transfers)))
        expected = self.model.resolve(transfer_id, action, amount)
        body = {"amount": amount} if action == "post" and amount is not None else None
        reply = self.call("POST", f"/v1/transfers/{transfer_id}/{action}", body)
        assert matches(self.answer(reply), expected), reply.json()

    @rule(
        data=st.data(),
        legs=st.integers(1, 3),
        pending=st.booleans(),
        unbalanced=st.integers(0, 5),
        reuse=st.sampled_from(["new", "new", "conflict", "replay"]),
    )
    def transaction(self, data: st.DataObject, legs: int, pending: bool, unbalanced: int, reuse: str) -> None:
        entries = []
        for _ in range(legs):
            currency = data.draw(st.sampled_from(["USD", "USD", "EUR"]))
            amount = data.draw(entry_amounts)
            entries.append(
                {
                    "account_id": self.pick(data, currency),
                    "direction": "debit",
                    "amount": amount,
                    "currency": currency,
                }
            )
            entries.append(
                {
                    "account_id": self.pick(data, currency),
                    "direction": "credit",
                    "amount": amount,
                    "currency": currency,
                }
            )
        entries = data.draw(st.permutations(entries))
        if unbalanced == 0:  # one in six is off by one
            e = entries[0]
            e["amount"] = e["amount"] - 1 if e["amount"] > 1 else 2
        transaction_id = str(uuid.uuid4())
        ordinary = [i for i, t in self.model.transactions.items() if t.reverses is None]
        if reuse != "new" and ordinary:
            transaction_id = data.draw(st.sampled_from(ordinary))
        body = {"id": transaction_id, "entries": entries, "pending": pending, "timeout_seconds": 0, "metadata": {}}
        if reuse == "replay" and ordinary:
            body = self.model.transactions[transaction_id].body
        versions = expected_versions_for(
            data, self.model, list(dict.fromkeys(e["account_id"] for e in body["entries"]))
        )
        status, code, index = self.model.create_transaction(body, versions)
        sent = {**body, "expected_versions": versions} if versions else body
        reply = self.call("POST", "/v1/transactions", sent)
        assert matches(self.answer(reply), (status, code)), (sent, reply.json())
        if index is not None:
            assert reply.json()["errors"][0]["index"] == index, (sent, reply.json())
        if status in (200, 201):
            got = reply.json()
            assert got["entries"] == self.model.transactions[transaction_id].body["entries"]
            assert got["status"] == self.model.transactions[transaction_id].status

    @rule(data=st.data(), action=st.sampled_from(["post", "void"]))
    def resolve_transaction(self, data: st.DataObject, action: str) -> None:
        if not self.model.transactions:
            return
        transaction_id = data.draw(st.sampled_from(list(self.model.transactions)))
        expected = self.model.resolve_transaction(transaction_id, action)
        reply = self.call("POST", f"/v1/transactions/{transaction_id}/{action}")
        assert matches(self.answer(reply), expected), reply.json()

    @rule(data=st.data(), amount=st.one_of(st.none(), st.integers(1, 600)), reuse=st.booleans())
    def reverse(self, data: st.DataObject, amount: int | None, reuse: bool) -> None:
        if not self.model.transfers:
            return
        original_id = data.draw(st.sampled_from([*self.model.transfers] * 4 + [GHOST]))
        reversals = [i for i, t in self.model.transfers.items() if t.reverses is not None]
        new_id = data.draw(st.sampled_from(reversals)) if reuse and reversals else str(uuid.uuid4())
        body: dict[str, Any] = {"id": new_id}
        if amount is not None:
            body["amount"] = amount
        original = self.model.transfers.get(original_id)
        if original is not None:
            moved = [original.body["debit_account_id"], original.body["credit_account_id"]]
            versions = expected_versions_for(data, self.model, moved)
            if versions:
                body["expected_versions"] = versions
        expected = self.model.reverse(original_id, body)
        reply = self.call("POST", f"/v1/transfers/{original_id}/reverse", body)
        assert matches(self.answer(reply), expected), (original_id, body, reply.json())
        if expected[0] in (200, 201):
            stored = self.model.transfers[new_id]
            assert (reply.json()["amount"], reply.json()["reverses"]) == (stored.body["amount"], stored.reverses)
            got = self.call("GET", f"/v1/transfers/{stored.reverses}").json()
            assert got["reversed_amount"] == self.model.transfers[stored.reverses].reversed_amount

    @rule(data=st.data(), reuse=st.booleans())
    def reverse_transaction(self, data: st.DataObject, reuse: bool) -> None:
        ordinary = [i for i, t in self.model.transactions.items() if t.reverses is None]
        original_id = data.draw(st.sampled_from([*ordinary] * 4 + [GHOST]))
        reversals = [i for i, t in self.model.transactions.items() if t.reverses is not None]
        new_id = data.draw(st.sampled_from(reversals)) if reuse and reversals else str(uuid.uuid4())
        expected = self.model.reverse_transaction(original_id, {"id": new_id})
        reply = self.call("POST", f"/v1/transactions/{original_id}/reverse", {"id": new_id})
        assert matches(self.answer(reply), expected), (original_id, new_id, reply.json())
        if expected[0] == 201:
            got = self.call("GET", f"/v1/transactions/{original_id}").json()
            assert got["reversed_by"] == [new_id]

    @rule(data=st.data(), verb=st.sampled_from(["freeze", "freeze", "unfreeze", "unfreeze", "close"]))
    def lifecycle(self, data: st.DataObject, verb: str) -> None:
        account_id = data.draw(st.sampled_from(self.account_ids()))
        expected = self.model.lifecycle(account_id, verb)
        reply = self.call("POST", f"/v1/accounts/{account_id}/{verb}")
        assert matches(self.answer(reply), expected), (account_id, verb, reply.json())
        if expected[0] == 200:
            assert reply.json()["status"] == self.model.accounts[account_id].status

    @rule(
        data=st.data(),
        limit=st.one_of(st.none(), limits),
        metadata=st.one_of(st.none(), st.sampled_from([{}, {"k": "a"}, {"k": "b"}])),
    )
    def patch(self, data: st.DataObject, limit: int | None, metadata: dict[str, str] | None) -> None:
        account_id = data.draw(st.sampled_from(self.account_ids()))
        body: dict[str, Any] = {}
        if limit is not None:
            body["overdraft_limit"] = limit
        if metadata is not None:
            body["metadata"] = metadata
        versions = expected_versions_for(data, self.model, [account_id])
        if versions:
            body["expected_versions"] = versions
        allowed = self.model.patch(account_id, body)
        reply = self.call("PATCH", f"/v1/accounts/{account_id}", body)
        assert self.answer(reply) in allowed, (account_id, body, reply.json())
        if reply.status_code == 200:
            assert reply.json()["version"] == self.model.accounts[account_id].version

    @invariant()
    def accounts_match_the_model(self) -> None:
        for account_id, model in self.model.accounts.items():
            got = self.call("GET", f"/v1/accounts/{account_id}").json()
            fields = ("debits_posted", "credits_posted", "debits_pending", "credits_pending", "status", "version")
            assert tuple(got[f] for f in fields) == (
                model.dp,
                model.cp,
                model.dpe,
                model.cpe,
                model.status,
                model.version,
            ), account_id
            assert (got["overdraft_limit"], got["metadata"]) == (model.limit, model.metadata), account_id


def test_ledger_matches_the_model(ledger_processes: dict[str, ServiceProcess]) -> None:
    clients = [
        httpx.Client(base_url=p.url, headers={"X-Internal-Token": INTERNAL_TOKEN}, timeout=30)
        for p in ledger_processes.values()
    ]
    LedgerMachine.clients = clients
    try:
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(
                max_examples=25, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
            ),
        )
    finally:
        for client in clients:
            client.close()
