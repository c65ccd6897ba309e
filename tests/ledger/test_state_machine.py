"""A hypothesis state machine drives the ledger over HTTP and compares every answer and every
balance with a deliberately simple in-memory model of public-api.md section 5."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from tests.ledger.conftest import INTERNAL_TOKEN
from tests.support.processes import ServiceProcess

MAX = 2**63 - 1
amounts = st.one_of(st.integers(1, 500), st.integers(MAX - 1000, MAX))


@dataclass
class ModelAccount:
    currency: str
    dmnec: bool
    cmned: bool
    dp: int = 0
    cp: int = 0
    dpe: int = 0
    cpe: int = 0


@dataclass
class ModelTransfer:
    body: dict
    status: str
    posted_amount: int


@dataclass
class Model:
    accounts: dict[str, ModelAccount] = field(default_factory=dict)
    transfers: dict[str, ModelTransfer] = field(default_factory=dict)

    def create(self, body: dict) -> tuple[int, str | None]:
        existing = self.transfers.get(body["id"])
        if existing is not None:
            return (200, None) if existing.body == body else (409, "id_conflict")
        if body["debit_account_id"] == body["credit_account_id"]:
            return 422, "same_account"
        debit = self.accounts.get(body["debit_account_id"])
        credit = self.accounts.get(body["credit_account_id"])
        if debit is None or credit is None:
            return 404, "account_not_found"
        if debit.currency != body["currency"] or credit.currency != body["currency"]:
            return 422, "currency_mismatch"
        amount, pending = body["amount"], body["pending"]
        dp, dpe = (debit.dp, debit.dpe + amount) if pending else (debit.dp + amount, debit.dpe)
        cp, cpe = (credit.cp, credit.cpe + amount) if pending else (credit.cp + amount, credit.cpe)
        if debit.dmnec and dp + dpe > debit.cp:
            return 422, "exceeds_credits"
        if credit.cmned and cp + cpe > credit.dp:
            return 422, "exceeds_debits"
        if dp + dpe > MAX or cp + cpe > MAX:
            return 422, "overflow"
        debit.dp, debit.dpe, credit.cp, credit.cpe = dp, dpe, cp, cpe
        self.transfers[body["id"]] = ModelTransfer(body, "pending" if pending else "posted", 0 if pending else amount)
        return 201, None

    def resolve(self, transfer_id: str, action: str, amount: int | None) -> tuple[int, str | None]:
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            return 404, "transfer_not_found"
        if transfer.status != "pending":
            return 422, "transfer_not_pending"
        full = transfer.body["amount"]
        posted = 0 if action == "void" else (full if amount is None else amount)
        if posted > full:
            return 422, "amount_exceeds_pending"
        debit = self.accounts[transfer.body["debit_account_id"]]
        credit = self.accounts[transfer.body["credit_account_id"]]
        debit.dpe -= full
        credit.cpe -= full
        debit.dp += posted
        credit.cp += posted
        transfer.status, transfer.posted_amount = ("voided", 0) if action == "void" else ("posted", posted)
        return 200, None


class LedgerMachine(RuleBasedStateMachine):
    clients: list[httpx.Client] = []

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.tenant = str(uuid.uuid4())
        self.step = 0

    def call(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        self.step += 1
        client = self.clients[self.step % len(self.clients)]  # alternate between ledger processes
        return client.request(method, path, json=body, headers={"X-Tenant-Id": self.tenant})

    @initialize()
    def open_accounts(self) -> None:
        for currency, dmnec, cmned in [
            ("USD", False, False),
            ("USD", True, False),
            ("USD", False, True),
            ("USD", True, False),
            ("EUR", False, False),
        ]:
            body = {
                "currency": currency,
                "flags": {"debits_must_not_exceed_credits": dmnec, "credits_must_not_exceed_debits": cmned},
            }
            reply = self.call("POST", "/v1/accounts", body)
            assert reply.status_code == 201
            self.model.accounts[reply.json()["id"]] = ModelAccount(currency, dmnec, cmned)

    @rule(
        data=st.data(),
        amount=amounts,
        pending=st.booleans(),
        reuse=st.booleans(),
        currency=st.sampled_from(["USD", "USD", "USD", "EUR"]),
    )
    def transfer(self, data: st.DataObject, amount: int, pending: bool, reuse: bool, currency: str) -> None:
        ids = [*self.model.accounts, str(uuid.UUID(int=1))]
        debit = data.draw(st.sampled_from(ids))
        credit = data.draw(st.sampled_from(ids))
        transfer_id = str(uuid.uuid4())
        if reuse and self.model.transfers:
            transfer_id = data.draw(st.sampled_from(list(self.model.transfers)))
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
        expected = self.model.create(body)
        reply = self.call("POST", "/v1/transfers", body)
        got = (reply.status_code, reply.json().get("code"))
        assert got == expected, (body, reply.json())

    @rule(data=st.data(), action=st.sampled_from(["post", "void"]), amount=st.one_of(st.none(), amounts))
    def resolve(self, data: st.DataObject, action: str, amount: int | None) -> None:
        if not self.model.transfers:
            return
        transfer_id = data.draw(st.sampled_from(list(self.model.transfers)))
        expected = self.model.resolve(transfer_id, action, amount)
        body = {"amount": amount} if action == "post" and amount is not None else None
        reply = self.call("POST", f"/v1/transfers/{transfer_id}/{action}", body)
        assert (reply.status_code, reply.json().get("code")) == expected, reply.json()

    @invariant()
    def balances_match_the_model(self) -> None:
        for account_id, model in self.model.accounts.items():
            got = self.call("GET", f"/v1/accounts/{account_id}").json()
            assert (got["debits_posted"], got["credits_posted"], got["debits_pending"], got["credits_pending"]) == (
                model.dp,
                model.cp,
                model.dpe,
                model.cpe,
            ), account_id


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
