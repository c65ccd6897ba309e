"""Nothing acknowledged is lost, nothing is applied twice: load through the gateway while every
process and dependency is killed or restarted in turn.

While concurrent clients move money (see :mod:`tests.faults.load`), each fault below is injected in
turn, each time after the platform made progress again since the previous one:

- SIGKILL of the ledger, of the gateway and of the session service, each restarted by the test;
- ``pg_terminate_backend`` of every connection to the ledger database;
- a PostgreSQL restart (``pg_ctl stop -m immediate``: a crash, so start-up replays the WAL);
- a Redis restart (the gateway's sessions, rate limits and kept Idempotency-Key responses).

Afterwards every acknowledged transfer is stored exactly once with the acknowledged content, no
refused or unacknowledged one is stored, counters and histories agree with the transfers, the
verifier (in process and ``./scripts/admin verify``) passes, and a new client is served at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import aiohttp
import asyncpg
import pytest

from services.ledger.verify import verify
from tests.faults.check import accounts_match, stored_matches_journal, wait_for_expiry_sweep
from tests.faults.load import Client, Journal, LoadTenant
from tests.support.api import Api
from tests.support.pgcluster import PrivatePostgres
from tests.support.platform import Platform, quick_tenant

CLIENTS = 12
ROUNDS = 3
PROGRESS = 40
"""Operations the clients must complete after each fault (the platform serves again) before the next."""

TERMINATE = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""


def faults(platform: Platform, postgres: PrivatePostgres) -> list[tuple[str, Callable[[], None]]]:
    """Each fault, as a blocking call that injects it and restarts what it killed."""

    def kill(name: str) -> Callable[[], None]:
        def run() -> None:
            process = getattr(platform, name)
            process.kill()
            process.start()

        return run

    def terminate_backends() -> None:
        async def terminate() -> None:
            conn = await asyncpg.connect(postgres.url("ledger"))
            try:
                await conn.fetchval(TERMINATE)
            finally:
                await conn.close()

        asyncio.run(terminate())

    def restart_redis() -> None:
        platform.redis.stop()
        platform.redis.start()

    return [
        ("SIGKILL ledger", kill("ledger")),
        ("SIGKILL gateway", kill("gateway")),
        ("SIGKILL session service", kill("session")),
        ("pg_terminate_backend (every ledger connection)", terminate_backends),
        ("PostgreSQL restart (immediate)", postgres.restart),
        ("Redis restart", restart_redis),
    ]


async def _setup_tenant(platform: Platform, api: Api, name: str) -> LoadTenant:
    created = await quick_tenant(platform, api, name)
    tenant = LoadTenant(created.tenant_id, created.api_key, created.token)
    for currency in ("USD", "EUR"):
        tenant.funding[currency] = (await api.account(created, currency, normal_balance="debit"))["id"]
        tenant.customers[currency] = [
            (await api.account(created, currency, flags={"debits_must_not_exceed_credits": True}))["id"]
            for _ in range(4)
        ]
        tenant.capped[currency] = [
            (await api.account(created, currency, flags={"credits_must_not_exceed_debits": True}))["id"]
            for _ in range(2)
        ]
    return tenant


async def _progress(journal: Journal, tasks: list[asyncio.Task[None]], count: int, after: str) -> None:
    target = journal.completed + count
    for _ in range(2400):  # a guard, not a measurement: the platform must recover by itself
        if journal.completed >= target:
            return
        for task in tasks:
            if task.done():
                task.result()  # a client that crashed shows its exception here
        await asyncio.sleep(0.05)
    raise AssertionError(f"the clients made no progress after: {after}")


async def test_acknowledged_transfers_survive_crashes_and_outages(
    fault_platform: Platform, private_postgres: PrivatePostgres, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = fault_platform
    journal = Journal()
    injected: Counter[str] = Counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as http:
        api = Api(http, platform.url)
        tenants = [await _setup_tenant(platform, api, f"faults-{i}") for i in range(2)]
        stop = asyncio.Event()
        clients = [Client(i, http, platform.url, tenants[i % len(tenants)], journal, stop) for i in range(CLIENTS)]
        tasks = [asyncio.create_task(client.run()) for client in clients]
        try:
            await _progress(journal, tasks, PROGRESS, "start")
            for _ in range(ROUNDS):
                for name, inject in faults(platform, private_postgres):
                    await asyncio.to_thread(inject)
                    injected[name] += 1
                    await asyncio.to_thread(platform.wait_ready)
                    await _progress(journal, tasks, PROGRESS, name)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

        problems = [f"unexpected answer: {u}" for u in journal.unexpected]
        problems += [f"never answered: {u}" for u in journal.unresolved]
        conn = await asyncpg.connect(platform.env["DATABASE_URL"])
        try:
            await wait_for_expiry_sweep(conn)
            stored_problems, stored = await stored_matches_journal(conn, journal, tenants)
            problems += stored_problems
            problems += await accounts_match(http, platform.url, tenants, stored)
            report = await verify(conn)
        finally:
            await conn.close()
        problems += [f"verifier: [{d['kind']}] {d['detail']}" for d in report.discrepancies]
        assert problems == [], "\n".join(problems[:30])
        cli = platform.admin("verify", check=False)
        assert cli.returncode == 0, cli.stdout + cli.stderr

        # Served again without manual steps: a new tenant logs in and moves money at once.
        newcomer = await quick_tenant(platform, api, "after-faults")
        a, b = await api.account(newcomer), await api.account(newcomer)
        moved = await api.transfer(newcomer, a["id"], b["id"], 5)
        assert moved.status == 201, moved

    with capsys.disabled():
        print(
            f"\n[faults] {journal.completed} operations ({dict(journal.operations)}) in {journal.attempts} "
            f"attempts; {len(journal.acked)} transfers acknowledged, {len(journal.refused)} refused by rules, "
            f"{journal.resolved_by_read} post/void outcomes learned by a read after a lost answer; "
            f"retried: {dict(journal.transient)}\n"
            f"[faults] {sum(injected.values())} faults injected: {dict(injected)}; "
            f"verifier: {report.accounts} accounts, {report.transfers} transfers, consistent"
        )
