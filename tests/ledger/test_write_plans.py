"""The write functions keep plans made once per connection (migration 0015); those plans must stay
right when they were made on a tiny table that then grew without statistics (the failure 0009 saw:
a join on (tenant_id, id) planned on an empty ``transfers`` used an index on tenant_id alone).

The plans are read from PostgreSQL itself: ``auto_explain`` logs each nested statement's plan, and
``client_min_messages = log`` delivers those lines to this connection.
"""

from __future__ import annotations

import json
import uuid

import asyncpg

NEW_ACCOUNTS = """
INSERT INTO accounts (tenant_id, id, currency, normal_balance, debits_must_not_exceed_credits,
                      credits_must_not_exceed_debits, metadata, created_at)
SELECT gen_random_uuid(), gen_random_uuid(), 'USD', 'credit', false, false, '{}', now()
  FROM generate_series(1, $1)
"""


async def _plans_of(conn: asyncpg.Connection, sql: str, *args: object) -> str:
    lines: list[str] = []
    conn.add_log_listener(lambda _c, message: lines.append(str(message)))
    await conn.execute(
        "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; "
        "SET auto_explain.log_nested_statements = on; SET client_min_messages = log"
    )
    try:
        async with conn.transaction():
            await conn.execute(sql, *args)
    finally:
        await conn.execute("RESET client_min_messages; SET auto_explain.log_min_duration = -1")
    return "\n".join(lines)


async def test_the_accounts_update_planned_on_a_tiny_table_probes_the_primary_key(
    private_db: asyncpg.Connection,
) -> None:
    await private_db.execute(NEW_ACCOUNTS, 1)
    first = await private_db.fetchval("SELECT pk FROM accounts")
    async with private_db.transaction():  # the plan is made now, with one account in the table
        await private_db.execute(
            "SELECT ledger_write($1::jsonb)", json.dumps({"accounts": [{"pk": first, "version": 1}]})
        )
    await private_db.execute(NEW_ACCOUNTS, 20_000)  # no ANALYZE: the cached plan is kept
    last = await private_db.fetchval("SELECT max(pk) FROM accounts")
    doc = json.dumps({"accounts": [{"pk": last, "version": 1}, {"pk": first, "version": 2}]})

    plans = await _plans_of(private_db, "SELECT ledger_write($1::jsonb)", doc)

    update = plans[plans.index("Update on accounts") :]
    assert "Index Scan using accounts_pkey" in update.split("\n\n")[0], plans
    assert "Seq Scan on accounts" not in plans, plans
    rows = await private_db.fetch(
        "SELECT pk, version FROM accounts WHERE pk = ANY($1::bigint[]) ORDER BY pk", [first, last]
    )
    assert [(r["pk"], r["version"]) for r in rows] == [(first, 2), (last, 1)]


async def test_a_transfer_update_is_planned_with_the_table_as_it_is(private_db: asyncpg.Connection) -> None:
    tenant = uuid.uuid4()
    await private_db.execute(NEW_ACCOUNTS, 2)
    debit, credit = [r["id"] for r in await private_db.fetch("SELECT id FROM accounts ORDER BY pk")]

    def pending(transfer_id: uuid.UUID, seq: int) -> dict[str, object]:
        return {
            "tenant_id": str(tenant), "id": str(transfer_id), "debit_account_id": str(debit),
            "credit_account_id": str(credit), "amount": 5, "currency": "USD", "pending": True,
            "timeout_seconds": 0, "status": "pending", "posted_amount": 0, "expires_at": None,
            "metadata": {}, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "seq": seq, "resolved_seq": None, "created_by_key_id": None, "resolved_by_key_id": None,
            "reverses": None,
        }  # fmt: skip

    def posted(transfer_id: uuid.UUID) -> dict[str, object]:
        return {
            "tenant_id": str(tenant), "id": str(transfer_id), "status": "posted", "posted_amount": 5,
            "updated_at": "2026-01-01T00:00:01Z", "resolved_seq": 2, "resolved_by_key_id": None,
            "reversed_amount": 0,
        }  # fmt: skip

    first = uuid.uuid4()
    async with private_db.transaction():  # created and posted while the table is empty: plans made now
        await private_db.execute("SELECT ledger_write($1::jsonb)", json.dumps({"new": [pending(first, 1)]}))
        await private_db.execute("SELECT ledger_write($1::jsonb)", json.dumps({"updated": [posted(first)]}))
    await private_db.execute(
        """INSERT INTO transfers (tenant_id, id, debit_account_id, credit_account_id, amount, currency, pending,
                                  timeout_seconds, status, posted_amount, metadata, created_at, updated_at, seq)
           SELECT $1, gen_random_uuid(), $2, $3, 1, 'USD', false, 0, 'posted', 1, '{}', now(), now(), g
             FROM generate_series(10, 30000) g""",
        tenant,
        debit,
        credit,
    )
    second = uuid.uuid4()
    async with private_db.transaction():
        await private_db.execute("SELECT ledger_write($1::jsonb)", json.dumps({"new": [pending(second, 3)]}))

    plans = await _plans_of(private_db, "SELECT ledger_write($1::jsonb)", json.dumps({"updated": [posted(second)]}))

    update = plans[plans.index("Update on transfers") :]
    assert "Index Scan using transfers_pkey" in update.split("\n\n")[0], plans
    assert await private_db.fetchval(
        "SELECT status FROM transfers WHERE tenant_id = $1 AND id = $2", tenant, second
    ) == ("posted")
