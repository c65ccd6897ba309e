"""Hundreds of concurrent transfers from many tasks, through two ledger processes at once, against a
few hot accounts with limit flags, with retries of the same ids. Afterwards every invariant is
checked from the database: nothing lost, nothing applied twice, no limit ever exceeded."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict

import aiohttp
import asyncpg

from services.ledger.verify import verify
from tests.ledger.conftest import client_for
from tests.support.http import ApiClient
from tests.support.processes import ServiceProcess

TASKS = 40
OPERATIONS_PER_TASK = 12


async def test_concurrent_transfers_keep_every_invariant(
    ledger_processes: dict[str, ServiceProcess], http: aiohttp.ClientSession, db: asyncpg.Connection
) -> None:
    tenant = str(uuid.uuid4())
    clients = [client_for(http, p, tenant) for p in ledger_processes.values()]
    setup = clients[0]
    source = await setup.create_account()
    hot = [await setup.create_account(flags={"debits_must_not_exceed_credits": True}) for _ in range(4)]
    capped = await setup.create_account(flags={"credits_must_not_exceed_debits": True})
    for account in hot:
        assert (await setup.transfer(source["id"], account["id"], 1_000)).status == 201
    assert (await setup.transfer(capped["id"], source["id"], 3_000)).status == 201

    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    acknowledged: dict[str, dict] = {}
    pending_ids: list[str] = []
    rng = random.Random(20261129)

    async def send(client: ApiClient, body: dict) -> None:
        reply = await client.call("POST", "/v1/transfers", body)
        statuses[body["id"]][reply.status] += 1
        assert reply.status in (200, 201, 422), reply.body
        if reply.status in (200, 201):
            acknowledged[body["id"]] = reply.body
            if body.get("pending"):
                pending_ids.append(body["id"])

    async def worker(seed: int) -> None:
        local = random.Random(seed)
        for _ in range(OPERATIONS_PER_TASK):
            roll = local.random()
            if roll < 0.15 and pending_ids:
                target = local.choice(pending_ids)
                action = local.choice(["post", "void"])
                client = local.choice(clients)
                reply = await client.call("POST", f"/v1/transfers/{target}/{action}")
                assert reply.status in (200, 422), reply.body
                continue
            debit, credit = local.sample([*hot, capped], 2)
            body = {
                "id": str(uuid.uuid4()),
                "debit_account_id": debit["id"],
                "credit_account_id": credit["id"],
                "amount": local.randint(1, 400),
                "currency": "USD",
                "pending": roll < 0.35,
            }
            # A third of the transfers are sent again, some concurrently, through either process.
            copies = 1 if local.random() < 0.66 else local.randint(2, 3)
            await asyncio.gather(*(send(local.choice(clients), body) for _ in range(copies)))

    await asyncio.gather(*(worker(rng.randrange(2**32)) for _ in range(TASKS)))

    assert len(acknowledged) > 100, "the load should mostly succeed"
    for transfer_id, seen in statuses.items():
        assert seen[201] <= 1, f"{transfer_id} was created {seen[201]} times"
        if seen[200]:
            assert seen[201] == 1, f"{transfer_id} replayed without being created: {seen}"
    stored = {
        str(r["id"]): r
        for r in await db.fetch(
            "SELECT id, amount, debit_account_id FROM transfers WHERE tenant_id = $1", uuid.UUID(tenant)
        )
    }
    for transfer_id, body in acknowledged.items():
        assert transfer_id in stored, f"acknowledged transfer {transfer_id} is missing"
        assert stored[transfer_id]["amount"] == body["amount"]
    refused = [i for i, seen in statuses.items() if not (seen[200] or seen[201])]
    assert not set(refused) & set(stored), "a refused transfer was stored"

    report = await verify(db)
    assert report.ok, report.discrepancies
    for account in hot:
        row = await db.fetchrow("SELECT * FROM accounts WHERE id = $1", uuid.UUID(account["id"]))
        assert row["debits_posted"] + row["debits_pending"] <= row["credits_posted"]
    row = await db.fetchrow("SELECT * FROM accounts WHERE id = $1", uuid.UUID(capped["id"]))
    assert row["credits_posted"] + row["credits_pending"] <= row["debits_posted"]
