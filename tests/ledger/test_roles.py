"""Least-privilege database roles (migration 0005, issue 13 item 2), on the real PostgreSQL.

``ledger_migrate`` owns the schema and is who later migrations run as; ``ledger_app`` can only read
and write rows. The last test runs the ledger service itself as ``ledger_app``: if the service
needed anything beyond DML, it would fail there, not in AWS.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest

from cli.launcher import drop_database
from cli.local_services import with_database
from services.ledger.migrate import APP_ROLE, MIGRATION_ROLE, migrate
from shared.settings import get_settings
from tests.ledger.conftest import client_for, ledger_env
from tests.support.processes import ServiceProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


def as_user(dsn: str, user: str) -> str:
    """``dsn`` with its user replaced (the local server trusts loopback, so no password)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(as_user(database_url, APP_ROLE))
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def migrator(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(as_user(database_url, MIGRATION_ROLE))
    try:
        yield conn
    finally:
        await conn.close()


async def test_the_migration_role_owns_every_object_of_the_schema(db: asyncpg.Connection) -> None:
    owners = await db.fetch(
        """SELECT c.relname AS name, pg_get_userbyid(c.relowner) AS owner FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace
           UNION ALL
           SELECT p.proname, pg_get_userbyid(p.proowner) FROM pg_proc p
            WHERE p.pronamespace = current_schema()::regnamespace"""
    )
    names = {r["name"] for r in owners}
    assert {"accounts", "transfers", "ledger_block_seq", "schema_migrations", "ledger_write"} <= names
    # ... including what migrations after 0005 created (0006's ledger_write): the runner ran them
    # as the migration role.
    assert {r["name"]: r["owner"] for r in owners if r["owner"] != MIGRATION_ROLE} == {}


async def test_the_app_role_reads_and_writes_rows(app: asyncpg.Connection) -> None:
    assert await app.fetchval("SELECT current_user") == APP_ROLE
    tr = app.transaction()
    await tr.start()
    try:
        tenant, account = uuid.uuid4(), uuid.uuid4()
        await app.execute(
            """INSERT INTO accounts (tenant_id, id, currency, normal_balance, debits_must_not_exceed_credits,
                                     credits_must_not_exceed_debits, metadata, created_at)
               VALUES ($1, $2, 'USD', 'credit', false, false, '{}', now())""",
            tenant,
            account,
        )
        await app.execute("UPDATE accounts SET credits_posted = 5 WHERE tenant_id = $1", tenant)
        assert await app.fetchval("SELECT credits_posted FROM accounts WHERE tenant_id = $1", tenant) == 5
        assert await app.fetchval("SELECT nextval('ledger_block_seq')") > 0
        await app.execute("DELETE FROM accounts WHERE tenant_id = $1", tenant)
    finally:
        await tr.rollback()
    for function in ("ledger_lock_and_read", "ledger_write"):
        oid = await app.fetchval("SELECT oid FROM pg_proc WHERE proname = $1", function)
        assert await app.fetchval("SELECT has_function_privilege($1::oid, 'EXECUTE')", oid), function


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE intruder (id int)",
        "CREATE FUNCTION intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "ALTER TABLE accounts ADD COLUMN intruder int",
        "DROP TABLE transfers",
        "TRUNCATE transfers",
        "CREATE INDEX intruder ON transfers (amount)",
        "SELECT count(*) FROM schema_migrations",
        "DELETE FROM schema_migrations",
        "SET ROLE ledger_migrate",
        "COMMENT ON TABLE accounts IS 'mine'",
    ],
)
async def test_the_app_role_can_change_no_schema_and_no_migration_history(
    app: asyncpg.Connection, statement: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app.execute(statement)


async def test_the_migration_role_can_change_the_schema(migrator: asyncpg.Connection) -> None:
    tr = migrator.transaction()
    await tr.start()
    try:
        await migrator.execute("CREATE TABLE later_migration (id int)")
        await migrator.execute("ALTER TABLE transfers ADD COLUMN later_column int")
        # What a later migration creates is usable by the application at once (default privileges).
        assert await migrator.fetchval("SELECT has_table_privilege('ledger_app', 'later_migration', 'INSERT')")
        assert not await migrator.fetchval("SELECT has_table_privilege('ledger_app', 'later_migration', 'TRUNCATE')")
    finally:
        await tr.rollback()


async def test_a_second_database_on_the_same_server_migrates_with_the_roles_already_there() -> None:
    base = get_settings().database.url
    name = f"test_roles_{uuid.uuid4().hex[:10]}"
    dsn = with_database(base, name)
    try:
        # Two runners at once: the advisory lock orders them, the roles exist already (from this
        # session's database), and each grant lands in this database.
        first, second = await asyncio.gather(migrate(dsn), migrate(dsn))
        assert sorted(first + second) == sorted(first or second) and 5 in (first or second)
        conn = await asyncpg.connect(as_user(dsn, APP_ROLE))
        try:
            assert await conn.fetchval("SELECT count(*) FROM accounts") == 0
        finally:
            await conn.close()
    finally:
        await drop_database(base, name)


@pytest.fixture(scope="module")
def app_role_ledger(database_url: str) -> Iterator[ServiceProcess]:
    port = free_port()
    process = ServiceProcess("ledger", port, ledger_env(as_user(database_url, APP_ROLE), port, grouped=True))
    process.start()
    yield process
    process.stop()


async def test_the_ledger_service_runs_as_the_app_role(app_role_ledger: ServiceProcess, db: asyncpg.Connection) -> None:
    async with aiohttp.ClientSession() as http:
        ledger = client_for(http, app_role_ledger)
        a, b = await ledger.create_account(), await ledger.create_account()
        posted = await ledger.transfer(a["id"], b["id"], 100)
        assert posted.status == 201, posted.body
        pending = await ledger.transfer(a["id"], b["id"], 40, pending=True, timeout_seconds=1)
        assert pending.status == 201, pending.body
        batch = await ledger.call(
            "POST",
            "/v1/transfers/batch",
            {
                "atomic": True,
                "transfers": [
                    {
                        "id": str(uuid.uuid4()),
                        "debit_account_id": a["id"],
                        "credit_account_id": b["id"],
                        "amount": 1,
                        "currency": "USD",
                    }
                ],
            },
        )
        assert batch.status in (200, 201), batch.body
        history = await ledger.call("GET", f"/v1/accounts/{a['id']}/transfers")
        assert history.status == 200, history.body
        for _ in range(50):  # the expiry sweeper, also running as ledger_app, releases the reservation
            got = await ledger.call("GET", f"/v1/transfers/{pending.body['id']}")
            if got.body["status"] == "expired":
                break
            await asyncio.sleep(0.2)
        assert got.body["status"] == "expired"
    user = await db.fetchval(
        "SELECT usename FROM pg_stat_activity WHERE datname = current_database() AND usename = $1 LIMIT 1", APP_ROLE
    )
    assert user == APP_ROLE


async def test_the_migration_task_command_migrates_a_fresh_database() -> None:
    # What the <env>-ledger-migrate task runs: `python -m services.ledger.migrate`.
    import subprocess
    import sys

    base = get_settings().database.url
    name = f"test_migrate_cmd_{uuid.uuid4().hex[:8]}"
    root = ROOT
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), "DATABASE_URL": with_database(base, name)}
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.ledger.migrate"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "applied migrations: [1, 2, 3" in done.stdout
        again = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.ledger.migrate"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0 and "none (up to date)" in again.stdout
    finally:
        await drop_database(base, name)
