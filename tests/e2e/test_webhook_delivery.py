"""Webhook deliveries survive the processes delivering them (docs/api.md section 12).

- SIGKILL: two ledger processes share a database; transfers are written through both while the
  receiver gets the stream; the process holding the endpoint's lease is killed mid-stream and
  writes go on through the other. The other takes the endpoint over once the lease expires and the
  receiver ends with every event, in seq order, none lost; the only repeat allowed is the one event
  that was in flight when the process died.
- SIGTERM (a deploy): the delivering process stops gracefully mid-stream and a new one starts:
  nothing acknowledged is delivered again, nothing is lost.

Each test has a database of its own, so no other ledger process of the suite delivers its events.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import asyncpg
import pytest

from tests.ledger.conftest import client_for
from tests.ledger.test_webhooks_support import (
    Receiver,
    all_events,
    create_endpoint,
    private_database,
    verify_signature,
    webhook_ledger_env,
)
from tests.support.http import ApiClient
from tests.support.processes import ServiceProcess, free_port

TRANSFERS = 150


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = await Receiver(delay=0.01).start()  # a slow receiver: an attempt is usually in flight
    yield receiver
    await receiver.stop()


@pytest.fixture
def dsn() -> Iterator[str]:
    with private_database() as dsn:
        yield dsn


def start_ledger(dsn: str) -> ServiceProcess:
    port = free_port()
    return ServiceProcess("ledger", port, webhook_ledger_env(dsn, port, WEBHOOK_LEASE_SECONDS="15")).start()


async def lease_holder(dsn: str, endpoint_id: str, within: float = 30.0) -> int:
    """The pid of the process holding the endpoint's lease (owner is ``host:pid:nonce``)."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + within
        while True:
            owner = await conn.fetchval(
                "SELECT lease_owner FROM webhook_endpoints WHERE id = $1 AND lease_until > now()",
                uuid.UUID(endpoint_id),
            )
            if owner:
                return int(owner.split(":")[1])
            assert time.monotonic() < deadline, "no process took the endpoint"
            await asyncio.sleep(0.01)
    finally:
        await conn.close()


async def write_transfers(clients: list[ApiClient], a: str, b: str, count: int) -> int:
    """Writes ``count`` transfers round-robin through the clients that still answer."""
    written = 0
    for i in range(count):
        transfer_id = str(uuid.uuid4())  # the same id on every try: never two transfers for one
        for client in clients[i % len(clients) :] + clients[: i % len(clients)]:
            try:
                if (await client.transfer(a, b, 1, id=transfer_id)).status in (200, 201):
                    written += 1
                    break
            except aiohttp.ClientError:
                continue  # that process is gone: the next one
        await asyncio.sleep(0.005)
    return written


def assert_complete(received: list[int], expected: list[int], repeats_allowed: int) -> None:
    deduplicated = [s for i, s in enumerate(received) if i == 0 or received[i - 1] != s]
    assert deduplicated == expected, "every event, in seq order"
    assert len(received) - len(expected) <= repeats_allowed, f"repeats: {len(received) - len(expected)}"


async def test_sigkill_of_the_delivering_process_loses_nothing(receiver: Receiver, dsn: str) -> None:
    if True:
        first, second = start_ledger(dsn), start_ledger(dsn)
        try:
            async with aiohttp.ClientSession() as http:
                tenant = str(uuid.uuid4())
                clients = [client_for(http, p, tenant) for p in (first, second)]
                receiver.delay = 0.02  # slower than the writer: a backlog, so the endpoint stays leased
                endpoint = await create_endpoint(clients[0], receiver.url("stream"), ["transfer.*", "account.*"])
                a, b = await clients[0].create_account(), await clients[1].create_account()
                writer = asyncio.create_task(write_transfers(clients, a["id"], b["id"], TRANSFERS))
                await receiver.wait_for(lambda: len(receiver.got["stream"]) >= 20, "the stream to start")
                holder = await lease_holder(dsn, endpoint["id"])
                victim, survivor = (first, second) if holder == first.process.pid else (second, first)  # type: ignore[union-attr]
                assert holder == victim.process.pid  # type: ignore[union-attr]
                before = len(receiver.got["stream"])
                await asyncio.to_thread(victim.kill)
                # The lease still names the victim: it was the one delivering when it died.
                assert await lease_holder(dsn, endpoint["id"]) == victim.process.pid  # type: ignore[union-attr]
                written = await writer
                assert written == TRANSFERS
                survivor_client = client_for(http, survivor, tenant)
                journal = await all_events(survivor_client)
                assert [e["type"] for e in journal].count("transfer.created") == TRANSFERS
                expected = [e["seq"] for e in journal]
                await receiver.wait_for(
                    lambda: receiver.seqs("stream")[-1:] == expected[-1:], "the survivor to deliver the rest", 90
                )
                await asyncio.sleep(0.3)
                received = receiver.seqs("stream")
                assert before < len(expected), "the kill came mid-stream"
                assert_complete(received, expected, repeats_allowed=1)
                for r in receiver.got["stream"]:
                    assert verify_signature(endpoint["secret"], r.headers, r.body, now=time.time())
        finally:
            first.stop()
            second.stop()


async def test_graceful_restart_delivers_nothing_twice(receiver: Receiver, dsn: str) -> None:
    if True:
        process = start_ledger(dsn)
        replacement: ServiceProcess | None = None
        try:
            async with aiohttp.ClientSession() as http:
                tenant = str(uuid.uuid4())
                client = client_for(http, process, tenant)
                endpoint = await create_endpoint(client, receiver.url("deploy"), ["transfer.created"])
                a, b = await client.create_account(), await client.create_account()
                receiver.delay = 0.1  # about 6 s of stream: the stop surely comes in the middle of it
                assert await write_transfers([client], a["id"], b["id"], 60) == 60
                await receiver.wait_for(lambda: len(receiver.got["deploy"]) >= 10, "the stream to start")
                # In a thread: the receiver runs on this event loop and must answer meanwhile.
                code = await asyncio.to_thread(process.stop, signal.SIGTERM)
                assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop
                assert "Application shutdown complete" in process.log_path.read_text()
                stopped_at = len(receiver.got["deploy"])
                assert stopped_at < 60, "the stop came mid-stream"
                replacement = start_ledger(dsn)
                await receiver.wait_for(lambda: len(receiver.got["deploy"]) >= 60, "the rest after the restart")
                await asyncio.sleep(0.3)
                expected = [e["seq"] for e in await all_events(client_for(http, replacement, tenant))][2:]
                assert_complete(receiver.seqs("deploy"), expected, repeats_allowed=0)
                assert endpoint["id"]
        finally:
            process.stop()
            if replacement is not None:
                replacement.stop()
