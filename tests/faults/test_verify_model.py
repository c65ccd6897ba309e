"""``./scripts/admin verify`` on the ledger model of issue 11: each new invariant corrupted by SQL is
named, with the object it concerns.

A real ledger process writes the data through its HTTP API into a database of its own (one tenant
per scenario) and is stopped; then each test corrupts its own tenant's rows the way a bug or a
manual fix could, and reads the verifier's JSON report for that tenant: balanced transactions,
reversals never above the posted amount, no movement on a frozen or closed account, versions equal
to the number of changes, limits with the overdraft limit, running balances of the entries, links
between a transaction and its reversal, expiry of pending transactions.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from cli.launcher import drop_database
from services.ledger.migrate import migrate
from services.ledger.verify import verify
from shared.settings import get_settings
from tests.ledger.conftest import INTERNAL_TOKEN, ledger_env
from tests.support.processes import ROOT, ServiceProcess, free_port


def _database(name: str) -> str:
    return urlunsplit(urlsplit(get_settings().database.url)._replace(path=f"/{name}"))


def admin_verify(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [str(ROOT / "scripts" / "admin"), "verify", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class Tenant:
    """One scenario's tenant and the ids a test corrupts."""

    id: str
    client: httpx.Client
    ids: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, body: Any = None, status: int | None = None) -> dict[str, Any]:
        reply = self.client.request(method, path, json=body, headers={"X-Tenant-Id": self.id})
        assert reply.status_code in ((status,) if status else (200, 201)), (path, body, reply.text)
        result: dict[str, Any] = reply.json()
        return result

    def account(self, name: str, **fields: Any) -> str:
        self.ids[name] = self.call("POST", "/v1/accounts", {"currency": "USD", **fields})["id"]
        return self.ids[name]

    def transfer(self, debit: str, credit: str, amount: int, **fields: Any) -> str:
        body = {
            "id": str(uuid.uuid4()),
            "debit_account_id": self.ids[debit],
            "credit_account_id": self.ids[credit],
            "amount": amount,
            "currency": "USD",
            **fields,
        }
        return str(self.call("POST", "/v1/transfers", body)["id"])

    def transaction(self, legs: list[tuple[str, str, int]], **fields: Any) -> str:
        entries = [{"account_id": self.ids[a], "direction": d, "amount": n, "currency": "USD"} for a, d, n in legs]
        return str(self.call("POST", "/v1/transactions", {"id": str(uuid.uuid4()), "entries": entries, **fields})["id"])


@dataclass
class Ledger:
    url: str
    clean: subprocess.CompletedProcess[str]
    tenants: dict[str, Tenant]


def _populate(client: httpx.Client) -> dict[str, Tenant]:
    tenants: dict[str, Tenant] = {}

    def tenant(name: str) -> Tenant:
        tenants[name] = Tenant(str(uuid.uuid4()), client)
        return tenants[name]

    split = tenant("split")
    for name in ("customer", "merchant", "fees"):
        split.account(name)
    split.ids["transaction"] = split.transaction(
        [("customer", "debit", 1_000), ("merchant", "credit", 970), ("fees", "credit", 30)]
    )

    reversals = tenant("reversals")
    reversals.account("a"), reversals.account("b")
    for name in ("x", "y"):
        reversals.ids[name] = reversals.transfer("a", "b", 100)
        reversed_ = reversals.call(
            "POST", f"/v1/transfers/{reversals.ids[name]}/reverse", {"id": str(uuid.uuid4()), "amount": 60}
        )
        reversals.ids[f"r{name}"] = reversed_["id"]

    undone = tenant("undone")
    undone.account("a"), undone.account("b")
    undone.ids["original"] = undone.transaction([("a", "debit", 5), ("b", "credit", 5)])
    undone.call("POST", f"/v1/transactions/{undone.ids['original']}/reverse", {"id": str(uuid.uuid4())})

    # An account changed (v1: PATCH) and then moved (v2): rewriting v1 as a freeze or a close makes
    # the v2 movement one on a frozen or closed account.
    for name in ("frozen", "closed"):
        moved = tenant(name)
        moved.account("k"), moved.account("source")
        moved.call("PATCH", f"/v1/accounts/{moved.ids['k']}", {"metadata": {"note": "checked"}})
        moved.transfer("source", "k", 10)

    versions = tenant("versions")
    versions.account("a"), versions.account("b")
    versions.transfer("a", "b", 3)

    limits = tenant("limits")
    limits.account("g", flags={"debits_must_not_exceed_credits": True}, overdraft_limit=100)
    limits.account("sink")
    limits.transfer("g", "sink", 80)

    entries = tenant("entries")
    entries.account("a"), entries.account("b")
    entries.transfer("a", "b", 7)

    expiry = tenant("expiry")
    expiry.account("a"), expiry.account("b")
    expiry.ids["held"] = expiry.transaction([("a", "debit", 4), ("b", "credit", 4)], pending=True, timeout_seconds=3600)
    return tenants


@pytest.fixture(scope="module")
def ledger() -> Iterator[Ledger]:
    name = f"verify_model_{uuid.uuid4().hex[:12]}"
    url = _database(name)
    asyncio.run(migrate(url))
    port = free_port()
    process = ServiceProcess("ledger", port, ledger_env(url, port, grouped=True))
    try:
        process.start()
        with httpx.Client(base_url=process.url, headers={"X-Internal-Token": INTERNAL_TOKEN}, timeout=30) as client:
            tenants = _populate(client)
        process.stop()
        yield Ledger(url, admin_verify(url), tenants)
    finally:
        process.stop()

        async def drop() -> None:
            await drop_database(url, name)

        asyncio.run(drop())


@pytest.fixture
async def db(ledger: Ledger) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(ledger.url)
    try:
        yield conn
    finally:
        await conn.close()


async def findings(db: asyncpg.Connection, tenant: Tenant) -> list[dict[str, str]]:
    """The discrepancies the verifier reports for ``tenant`` (each test corrupts only its own).

    The verifier's own function, in process: the CLI around it (slow to start on a busy machine)
    is run by the fixture on the clean ledger and by the first corruption test."""
    report = await verify(db)
    assert not report.ok
    return [d for d in report.discrepancies if tenant.id in d["detail"]]


def uid(value: str) -> uuid.UUID:
    return uuid.UUID(value)


def test_the_populated_model_verifies(ledger: Ledger) -> None:
    assert ledger.clean.returncode == 0, ledger.clean.stdout + ledger.clean.stderr
    assert ledger.clean.stdout.startswith("verified "), ledger.clean.stdout
    assert "transactions: OK" in ledger.clean.stdout.splitlines()[0], ledger.clean.stdout


async def test_unbalanced_transaction_is_named(ledger: Ledger, db: asyncpg.Connection) -> None:
    t = ledger.tenants["split"]
    await db.execute(
        "UPDATE transactions SET entries = jsonb_set(entries, '{2,amount}', '31') WHERE tenant_id = $1 AND id = $2",
        uid(t.id),
        uid(t.ids["transaction"]),
    )
    result = await asyncio.to_thread(admin_verify, ledger.url)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    named = [line for line in lines if line.strip().startswith("[transactions]")]
    assert len(named) == 1 and t.ids["transaction"] in named[0] and "USD" in named[0], result.stdout
    found = await findings(db, t)
    # The fees account's counters no longer follow from the transaction either.
    assert {d["kind"] for d in found} == {"transactions", "counters"}, found
    assert any(t.ids["fees"] in d["detail"] for d in found if d["kind"] == "counters"), found
    report = json.loads((await asyncio.to_thread(admin_verify, ledger.url, "--json")).stdout)
    assert report["ok"] is False and report["transactions"] >= 1
    assert {"transactions", "counters"} <= {d["kind"] for d in report["discrepancies"]}


async def test_reversals_above_the_posted_amount_are_named(ledger: Ledger, db: asyncpg.Connection) -> None:
    t = ledger.tenants["reversals"]
    # Y's reversal now claims to reverse X: X's reversals sum to 120 of 100, Y's to 0 of its 60.
    await db.execute(
        "UPDATE transfers SET reverses = $3 WHERE tenant_id = $1 AND id = $2",
        uid(t.id),
        uid(t.ids["ry"]),
        uid(t.ids["x"]),
    )
    found = await findings(db, t)
    assert {d["kind"] for d in found} == {"reversals"}, found
    x = next(d["detail"] for d in found if t.ids["x"] in d["detail"])
    assert "posted 100" in x and "reversed_amount 60" in x and "sum to 120" in x, found
    assert any(t.ids["y"] in d["detail"] and "sum to 0" in d["detail"] for d in found), found


async def test_transaction_and_reversal_that_do_not_name_each_other_are_named(
    ledger: Ledger, db: asyncpg.Connection
) -> None:
    t = ledger.tenants["undone"]
    await db.execute(
        "UPDATE transactions SET reversed_by = NULL WHERE tenant_id = $1 AND id = $2", uid(t.id), uid(t.ids["original"])
    )
    found = await findings(db, t)
    assert [d["kind"] for d in found] == ["reversals"], found
    assert t.ids["original"] in found[0]["detail"], found


@pytest.mark.parametrize("status", ["frozen", "closed"])
async def test_movement_on_a_frozen_or_closed_account_is_named(
    ledger: Ledger, db: asyncpg.Connection, status: str
) -> None:
    t = ledger.tenants[status]
    await db.execute(
        "UPDATE account_changes SET status = $3, kind = $3 WHERE tenant_id = $1 AND account_id = $2 AND version = 1",
        uid(t.id),
        uid(t.ids["k"]),
        status,
    )
    found = await findings(db, t)
    assert [d["kind"] for d in found] == ["history"], found
    assert t.ids["k"] in found[0]["detail"] and f"while {status}" in found[0]["detail"], found


async def test_version_that_is_not_the_number_of_changes_is_named(ledger: Ledger, db: asyncpg.Connection) -> None:
    t = ledger.tenants["versions"]
    await db.execute(
        "UPDATE accounts SET version = version + 1 WHERE tenant_id = $1 AND id = $2", uid(t.id), uid(t.ids["a"])
    )
    found = await findings(db, t)
    assert [d["kind"] for d in found] == ["versions"], found
    assert t.ids["a"] in found[0]["detail"] and "version 2 but records 1 changes" in found[0]["detail"], found


async def test_movement_past_the_overdraft_limit_in_force_is_named(ledger: Ledger, db: asyncpg.Connection) -> None:
    t = ledger.tenants["limits"]
    # History: the limit recorded at creation, in force when the 80 left, becomes 50.
    await db.execute(
        "UPDATE account_changes SET overdraft_limit = 50 WHERE tenant_id = $1 AND account_id = $2 AND version = 0",
        uid(t.id),
        uid(t.ids["g"]),
    )
    found = await findings(db, t)
    assert [d["kind"] for d in found] == ["history"], found
    assert t.ids["g"] in found[0]["detail"] and "overdraft limit 50" in found[0]["detail"], found
    # Now: the account's own limit lowered behind the ledger's back (without the allowance a PATCH
    # leaves). The CHECK constraint refuses it; with the constraint gone, verify still names it.
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            "UPDATE accounts SET overdraft_limit = 50 WHERE tenant_id = $1 AND id = $2", uid(t.id), uid(t.ids["g"])
        )
    await db.execute("ALTER TABLE accounts DROP CONSTRAINT accounts_debit_limit")
    await db.execute(
        "UPDATE accounts SET overdraft_limit = 50 WHERE tenant_id = $1 AND id = $2", uid(t.id), uid(t.ids["g"])
    )
    found = await findings(db, t)
    assert sorted(d["kind"] for d in found) == ["history", "limits"], found
    assert any(t.ids["g"] in d["detail"] for d in found if d["kind"] == "limits"), found


async def test_entry_that_does_not_follow_from_the_one_before_is_named(ledger: Ledger, db: asyncpg.Connection) -> None:
    t = ledger.tenants["entries"]
    await db.execute(
        "UPDATE account_entries SET amount = amount + 1 WHERE tenant_id = $1 AND account_id = $2 AND seq = 1",
        uid(t.id),
        uid(t.ids["b"]),
    )
    found = await findings(db, t)
    assert [d["kind"] for d in found] == ["entries"], found
    assert t.ids["b"] in found[0]["detail"] and "entry 1" in found[0]["detail"], found


async def test_pending_transaction_held_past_expiry_is_named(ledger: Ledger, db: asyncpg.Connection) -> None:
    t = ledger.tenants["expiry"]
    await db.execute(
        "UPDATE transactions SET expires_at = clock_timestamp() - interval '1 hour' WHERE tenant_id = $1 AND id = $2",
        uid(t.id),
        uid(t.ids["held"]),
    )
    found = await findings(db, t)
    assert [d["kind"] for d in found] == ["expiry"], found
    assert f"transaction {t.ids['held']}" in found[0]["detail"], found
