"""``./scripts/admin verify`` end to end: 0 on a consistent ledger, non-zero naming each discrepancy.

The ledger is written through the ledger's own write path (``store.apply_requests``, the code the
service runs) into a database of its own, then corrupted by SQL the way a bug or a manual fix
could: a counter changed behind the ledger's back, a reservation held past its expiry.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from cli.launcher import drop_database
from services.ledger import account_store, store
from services.ledger.db import init_connection
from services.ledger.migrate import migrate
from services.ledger.operations import CreateTransfer, PostPending, VoidPending, WriteRequest
from shared.ledger_api import AccountCreate, AccountFlags, TransferCreate
from shared.settings import get_settings
from tests.support.processes import ROOT


@dataclass
class Ledger:
    url: str
    conn: asyncpg.Connection
    tenant: uuid.UUID
    accounts: list[uuid.UUID]
    pending: uuid.UUID


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


@pytest.fixture
async def ledger() -> AsyncIterator[Ledger]:
    name = f"verify_{uuid.uuid4().hex[:12]}"
    url = _database(name)
    await migrate(url)
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    tenant = uuid.uuid4()
    try:
        accounts = []
        for flags in (AccountFlags(), AccountFlags(debits_must_not_exceed_credits=True), AccountFlags()):
            _, row = await account_store.create_account(conn, tenant, AccountCreate(currency="USD", flags=flags))
            accounts.append(row["id"])
        bank, alice, bob = accounts

        def transfer(debit: uuid.UUID, credit: uuid.UUID, amount: int, **extra: object) -> TransferCreate:
            return TransferCreate(
                id=uuid.uuid4(),
                debit_account_id=debit,
                credit_account_id=credit,
                amount=amount,
                currency="USD",
                **extra,
            )  # type: ignore[arg-type]

        held, posted, voided = (transfer(alice, bob, 10, pending=True, timeout_seconds=3600) for _ in range(3))
        requests = [
            WriteRequest([CreateTransfer(tenant, transfer(bank, alice, 100))]),
            WriteRequest([CreateTransfer(tenant, t) for t in (held, posted, voided)], atomic=True),
            WriteRequest([PostPending(tenant, posted.id, 4), VoidPending(tenant, voided.id)]),
        ]
        for outcomes in await store.apply_requests(conn, requests):
            assert all(o.code is None for o in outcomes), outcomes
        yield Ledger(url, conn, tenant, accounts, held.id)
    finally:
        await conn.close()
        await drop_database(url, name)


async def test_consistent_ledger_exits_zero(ledger: Ledger) -> None:
    result = await asyncio.to_thread(admin_verify, ledger.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("verified 3 accounts, 4 transfers and 0 transactions: OK"), result.stdout
    report = json.loads((await asyncio.to_thread(admin_verify, ledger.url, "--json")).stdout)
    assert report == {"ok": True, "accounts": 3, "transfers": 4, "transactions": 0, "discrepancies": []}


async def test_counter_changed_by_sql_is_named(ledger: Ledger) -> None:
    bob = ledger.accounts[2]
    await ledger.conn.execute("UPDATE accounts SET credits_posted = credits_posted + 1 WHERE id = $1", bob)
    result = await asyncio.to_thread(admin_verify, ledger.url)
    assert result.returncode == 1, result.stdout
    # Named three ways: the counters against the transfers, against the account's last entry, and
    # the tenant's balance.
    assert "3 discrepancies" in result.stdout, result.stdout
    lines = result.stdout.splitlines()
    counters = [line for line in lines if "[counters]" in line]
    assert (
        len(counters) == 1
        and str(bob) in counters[0]
        and "stores 0/5/0/10 but its transfers and transactions sum to 0/4/0/10" in counters[0]
    ), result.stdout
    balance = [line for line in lines if "[balance]" in line]
    assert len(balance) == 1 and str(ledger.tenant) in balance[0] and "USD" in balance[0], result.stdout
    report = json.loads((await asyncio.to_thread(admin_verify, ledger.url, "--json")).stdout)
    assert report["ok"] is False
    assert sorted(d["kind"] for d in report["discrepancies"]) == ["balance", "counters", "entries"]


async def test_reservation_held_past_expiry_is_named(ledger: Ledger) -> None:
    await ledger.conn.execute(
        "UPDATE transfers SET expires_at = clock_timestamp() - interval '1 hour' WHERE id = $1", ledger.pending
    )
    result = await asyncio.to_thread(admin_verify, ledger.url)
    assert result.returncode == 1, result.stdout
    assert f"[expiry] transfer {ledger.pending}" in result.stdout, result.stdout


async def test_altered_event_is_named_as_the_first_broken_link(ledger: Ledger) -> None:
    seq = await ledger.conn.fetchval(
        "SELECT min(seq) FROM events WHERE tenant_id = $1 AND type = 'transfer.posted'", ledger.tenant
    )
    await ledger.conn.execute(
        """UPDATE events SET data = replace(data, '"posted_amount":4', '"posted_amount":5')
            WHERE tenant_id = $1 AND seq = $2""",
        ledger.tenant,
        seq,
    )
    result = await asyncio.to_thread(admin_verify, ledger.url)
    assert result.returncode == 1, result.stdout
    assert f"[chain] tenant {ledger.tenant}: event {seq}: its hash does not match its content" in result.stdout


async def test_row_changed_behind_the_journal_is_named(ledger: Ledger) -> None:
    await ledger.conn.execute('UPDATE transfers SET metadata = \'{"note": "edited"}\' WHERE id = $1', ledger.pending)
    result = await asyncio.to_thread(admin_verify, ledger.url)
    assert result.returncode == 1, result.stdout
    assert f"[journal] transfer {ledger.pending} (tenant {ledger.tenant}) is not what its newest event" in result.stdout


async def test_incremental_by_default_full_on_request(ledger: Ledger) -> None:
    assert (await asyncio.to_thread(admin_verify, ledger.url)).returncode == 0
    checked = await ledger.conn.fetchval("SELECT seq FROM event_checkpoints WHERE tenant_id = $1", ledger.tenant)
    assert checked == await ledger.conn.fetchval("SELECT max(seq) FROM events WHERE tenant_id = $1", ledger.tenant)
    # An old event altered after it was verified: the incremental run starts after it ...
    await ledger.conn.execute(
        "UPDATE events SET occurred_at = occurred_at + interval '1 second' WHERE tenant_id = $1 AND seq = 2",
        ledger.tenant,
    )
    assert (await asyncio.to_thread(admin_verify, ledger.url)).returncode == 0
    # ... and --full replays every chain from the start.
    full = await asyncio.to_thread(admin_verify, ledger.url, "--full")
    assert full.returncode == 1 and f"tenant {ledger.tenant}: event 2: its hash does not match" in full.stdout
    # New work after the checkpoint is checked by the incremental run.
    bank, alice, _ = ledger.accounts
    later = TransferCreate(id=uuid.uuid4(), debit_account_id=bank, credit_account_id=alice, amount=1, currency="USD")
    await store.apply_requests(ledger.conn, [WriteRequest([CreateTransfer(ledger.tenant, later)])])
    newest = await ledger.conn.fetchval("SELECT max(seq) FROM events WHERE tenant_id = $1", ledger.tenant)
    await ledger.conn.execute(
        "UPDATE events SET type = 'transfer.voided' WHERE tenant_id = $1 AND seq = $2", ledger.tenant, newest
    )
    result = await asyncio.to_thread(admin_verify, ledger.url)
    assert result.returncode == 1 and f"event {newest}: its hash does not match" in result.stdout, result.stdout
