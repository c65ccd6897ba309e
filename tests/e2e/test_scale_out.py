"""Scale-out stays correct (issue 10, item 5): two gateways, each coalescing into its own ledger
process, against one PostgreSQL and one Redis. Concurrent transfers over shared accounts, a third
of them sent twice (some at once, through both gateways); afterwards every id is stored once, the
counters equal the sums of the stored transfers and the verifier finds nothing."""

from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg

from services.ledger.verify import verify
from tests.support.api import Api, Reply
from tests.support.platform import Platform, quick_tenant


async def test_two_gateways_and_two_ledgers_apply_each_transfer_once(
    api: Api, platform: Platform, database_url: str
) -> None:
    second_ledger = platform.extra_ledger()
    second_gateway = platform.extra_gateway(LEDGER_URL=second_ledger.url)
    try:
        tenant = await quick_tenant(platform, api)
        accounts = [(await api.account(tenant))["id"] for _ in range(6)]
        gateways = [platform.url, second_gateway.url]
        rng = random.Random(7)
        bodies = []
        for _ in range(300):
            debit, credit = rng.sample(accounts, 2)
            bodies.append(
                {
                    "id": str(uuid.uuid4()),
                    "debit_account_id": debit,
                    "credit_account_id": credit,
                    "amount": rng.randint(1, 100),
                    "currency": "USD",
                }
            )
        sends = [(body, gateways[i % 2]) for i, body in enumerate(bodies)]
        sends += [(body, gateways[(i + 1) % 2]) for i, body in enumerate(bodies) if i % 3 == 0]
        rng.shuffle(sends)
        semaphore = asyncio.Semaphore(40)

        async def send(body: dict[str, object], url: str) -> Reply:
            async with semaphore:
                return await api.call("POST", "/v1/transfers", json=body, token=tenant.token, base_url=url)

        replies = await asyncio.gather(*(send(body, url) for body, url in sends))
        assert {r.status for r in replies} <= {200, 201}, {r.status for r in replies}
        created = sum(r.status == 201 for r in replies)
        assert created == len(bodies)  # each id created exactly once, whichever gateway and ledger
    finally:
        second_gateway.stop()
        second_ledger.stop()

    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetch("SELECT id, amount FROM transfers WHERE tenant_id = $1", uuid.UUID(tenant.tenant_id))
        assert {str(r["id"]) for r in stored} == {b["id"] for b in bodies}
        assert {str(r["id"]): r["amount"] for r in stored} == {b["id"]: b["amount"] for b in bodies}
        report = await verify(conn)
        assert report.ok, report.discrepancies
    finally:
        await conn.close()
