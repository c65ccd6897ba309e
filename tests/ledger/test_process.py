"""Process-level behaviour: concurrent migration runners, group commit isolation, graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

from cli.launcher import drop_database
from services.ledger.migrate import discover, migrate
from tests.ledger.conftest import client_for, ledger_env
from tests.support.processes import ServiceProcess, free_port


async def test_migrations_apply_once_from_concurrent_runners(database_url: str) -> None:
    dsn = urlunsplit(urlsplit(database_url)._replace(path=f"/mig_{uuid.uuid4().hex[:10]}"))
    results = await asyncio.gather(*(migrate(dsn) for _ in range(5)))
    expected = [m.version for m in discover()]
    assert sorted(v for applied in results for v in applied) == expected  # each applied exactly once
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == expected
        assert await migrate(dsn) == []
    finally:
        await conn.close()
        await drop_database(database_url, urlsplit(dsn).path[1:])


async def test_group_commit_gives_each_caller_its_own_result(
    ledger_processes: dict[str, ServiceProcess], http: aiohttp.ClientSession
) -> None:
    """Many concurrent callers share groups; some items break the limit; each hears only about itself."""
    client = client_for(http, ledger_processes["grouped"])
    funded = await client.create_account(flags={"debits_must_not_exceed_credits": True})
    source, sink = await client.create_account(), await client.create_account()
    await client.transfer(source["id"], funded["id"], 1_000)
    ids = [str(uuid.uuid4()) for _ in range(150)]
    replies = await asyncio.gather(*(client.transfer(funded["id"], sink["id"], 10, id=i) for i in ids))
    created = [r for r in replies if r.status == 201]
    refused = [r for r in replies if r.status == 422]
    assert len(created) == 100 and len(refused) == 50
    assert all(r.code == "exceeds_credits" for r in refused)
    for transfer_id, reply in zip(ids, replies, strict=True):
        if reply.status == 201:
            assert reply.body["id"] == transfer_id
    sink_now = (await client.call("GET", f"/v1/accounts/{sink['id']}")).body
    assert sink_now["credits_posted"] == 1_000


async def test_sigterm_finishes_in_flight_requests(database_url: str, db: asyncpg.Connection) -> None:
    port = free_port()
    process = ServiceProcess("ledger", port, ledger_env(database_url, port, grouped=True)).start()
    async with aiohttp.ClientSession() as http:
        client = client_for(http, process)
        a, b = await client.create_account(), await client.create_account()

        async def attempt(transfer_id: str) -> int | None:
            try:
                return (await client.transfer(a["id"], b["id"], 1, id=transfer_id)).status
            except aiohttp.ClientConnectionError:
                return None  # sent after the listener closed: never acknowledged

        ids = [str(uuid.uuid4()) for _ in range(200)]
        tasks = [asyncio.create_task(attempt(i)) for i in ids]
        # Signal once the first transfers are committed, so some are surely in flight (no fixed sleep).
        deadline = time.monotonic() + 30
        while not await db.fetchval(
            "SELECT count(*) FROM transfers WHERE id = ANY($1::uuid[])", [uuid.UUID(i) for i in ids]
        ):
            assert time.monotonic() < deadline, "no transfer was committed within 30 s"
            await asyncio.sleep(0.005)
        process.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        statuses = await asyncio.gather(*tasks)
    # uvicorn re-raises the signal after its graceful shutdown, so -SIGTERM is a clean exit too.
    assert await asyncio.to_thread(process.process.wait, 30) in (0, -signal.SIGTERM)  # type: ignore[union-attr]
    assert "Application shutdown complete" in process.log_path.read_text()
    assert set(statuses) <= {201, None, 503}, statuses
    acknowledged = {i for i, s in zip(ids, statuses, strict=True) if s == 201}
    assert acknowledged, "some requests should have been served before the signal"
    stored = {
        str(r["id"])
        for r in await db.fetch("SELECT id FROM transfers WHERE id = ANY($1::uuid[])", [uuid.UUID(i) for i in ids])
    }
    assert acknowledged <= stored


async def test_terminated_connections_answer_503_never_500(
    ledger_processes: dict[str, ServiceProcess], http: aiohttp.ClientSession, database_url: str
) -> None:
    """pg_terminate_backend of the ledger's connections under load: 201 or 503, then it recovers."""
    client = client_for(http, ledger_processes["grouped"])
    a, b = await client.create_account(), await client.create_account()
    database = urlsplit(database_url).path.lstrip("/")
    admin = await asyncpg.connect(urlunsplit(urlsplit(database_url)._replace(path="/postgres")))
    statuses: list[int] = []
    terminated = 0
    try:
        for round_ in range(10):
            tasks = [asyncio.create_task(client.transfer(a["id"], b["id"], 1)) for _ in range(30)]
            await asyncio.sleep(0.004 * (round_ % 5))
            terminated += await admin.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
            statuses += [reply.status for reply in await asyncio.gather(*tasks)]
    finally:
        await admin.close()
    assert terminated > 0, "the fault was never injected"
    assert set(statuses) <= {201, 503}, sorted(set(statuses))
    # It recovers by itself: a client retrying a 503 after Retry-After gets through.
    for _ in range(20):
        reply = await client.transfer(a["id"], b["id"], 1)
        if reply.status != 503:
            break
        await asyncio.sleep(float(reply.headers["Retry-After"]) / 4)
    assert reply.status == 201
