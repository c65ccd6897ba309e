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
from tests.ledger.ledger_model import (
    GHOST,
    MAX_ACCOUNTS,
    Expected,
    Model,
    ModelAccount,
    amounts,
    entry_amounts,
    limits,
    matches,
)
from tests.support.processes import ServiceProcess


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
