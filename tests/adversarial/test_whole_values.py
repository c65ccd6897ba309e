"""Whole-value patterns and the database-constraint backstop (issue 14, item 1).

Python's ``$`` also matches just before a final newline, so ``"USD\\n"`` once passed the schema and
failed the database's CHECK (a 5xx, with the failing row in the ledger's log), and on a transfer
answered ``currency_mismatch`` instead of 400. Every such value is now refused as invalid, and any
constraint violation a request still manages to cause is a 400, never a 5xx.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.adversarial.conftest import Victim, assert_problem, rows_of
from tests.support.api import Api
from tests.support.platform import Platform

TRAILING = ["USD\n", "USD\n\n", "USD\r\n", "\nUSD", "USD\u2028", "USD\x00"]


async def test_a_currency_with_a_trailing_newline_is_invalid_everywhere(
    api: Api, victim: Victim, db: asyncpg.Connection
) -> None:
    token = victim.tenant.token
    before = await rows_of(db, victim.tenant)
    for currency in TRAILING:
        reply = await api.call("POST", "/v1/accounts", json={"currency": currency}, token=token)
        assert_problem(reply, 400, "invalid_request")
        assert reply.json["errors"][0]["field"] == "currency", reply

        transfer = {
            "id": str(uuid.uuid4()),
            "debit_account_id": victim.debit,
            "credit_account_id": victim.credit,
            "amount": 5,
            "currency": currency,
        }
        reply = await api.call("POST", "/v1/transfers", json=transfer, token=token)
        assert_problem(reply, 400, "invalid_request")  # not 422 currency_mismatch: it is not a currency

        batch = {"transfers": [{**transfer, "id": str(uuid.uuid4()), "currency": "USD"}, transfer], "atomic": True}
        reply = await api.call("POST", "/v1/transfers/batch", json=batch, token=token)
        assert_problem(reply, 400, "invalid_request")
        assert reply.json["errors"][0]["index"] == 1, reply
    for query in ["USD%0A", "USD%0A%0A", "USD%0D%0A"]:
        reply = await api.call("GET", f"/v1/accounts?currency={query}", token=token)
        assert_problem(reply, 400, "invalid_request")
    assert await rows_of(db, victim.tenant) == before


@pytest.fixture
async def probe_constraints(db: asyncpg.Connection) -> AsyncIterator[str]:
    """CHECK constraints that refuse one metadata key, standing in for a validation gap: input that
    passes every schema check yet violates a constraint of the database."""
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    names = {table: f"test_{probe.replace('-', '_')}_{table}" for table in ("accounts", "transfers")}
    for table, name in names.items():
        await db.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK (NOT metadata ? '{probe}') NOT VALID")
    try:
        yield probe
    finally:
        for table, name in names.items():
            await db.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")


async def test_a_constraint_violation_caused_by_input_is_400_and_logs_no_row(
    api: Api, platform: Platform, victim: Victim, db: asyncpg.Connection, probe_constraints: str
) -> None:
    token = victim.tenant.token
    secret = f"secret-{uuid.uuid4().hex}"
    metadata = {probe_constraints: secret}
    before = await rows_of(db, victim.tenant)

    reply = await api.call("POST", "/v1/accounts", json={"currency": "USD", "metadata": metadata}, token=token)
    assert_problem(reply, 400, "invalid_request")

    transfer = {
        "id": str(uuid.uuid4()),
        "debit_account_id": victim.debit,
        "credit_account_id": victim.credit,
        "amount": 5,
        "currency": "USD",
        "metadata": metadata,
    }
    reply = await api.call("POST", "/v1/transfers", json=transfer, token=token)
    assert_problem(reply, 400, "invalid_request")
    # A batch item goes through the same group transaction as its neighbours.
    batch = {"transfers": [{**transfer, "id": str(uuid.uuid4()), "metadata": {}}, transfer]}
    reply = await api.call("POST", "/v1/transfers/batch", json=batch, token=token)
    assert reply.status < 500, reply

    # The ledger logged the constraint by name, never the row that carried the values.
    log = platform.ledger.log_path.read_text()
    assert secret not in log
    assert "request refused by a database constraint" in log
    accounts, _, _ = await rows_of(db, victim.tenant)
    assert accounts == before[0]
