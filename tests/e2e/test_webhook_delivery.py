"""Webhook deliveries survive the processes delivering them (docs/api.md section 12).

- SIGKILL: two ledger processes share a database; transfers are written through both while the
  receiver gets the stream; the receiver holds one delivery unanswered, so the process that sent it
  (it holds the endpoint's lease) is killed in the middle of an attempt, and writes go on through
  the other. The other takes the endpoint over once the lease expires and the receiver ends with
  every event, in seq order, none lost; the one repeat is the event that was in flight when the
  process died.
- SIGTERM (a deploy): the backlog is written before the endpoint is due, then the delivering
  process stops gracefully mid-stream and a new one starts: nothing acknowledged is delivered
  again, nothing is lost.

Neither depends on how fast the writes go compared with the deliveries: the kill comes while an
attempt is held in flight, and the stop while most of a backlog written beforehand is still to go.

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
TRANSFERS_BEFORE_KILL = 100
"""Written while the stream starts; the rest after the kill."""
KILL_AT = 21
"""The delivery in flight when its sender is killed (the 21st the receiver gets)."""


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


async def hold_back(dsn: str, endpoint_id: str) -> None:
    """Makes the endpoint not due until it is enabled (``POST .../enable`` makes it due at once)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE webhook_endpoints SET next_attempt_at = 'infinity' WHERE id = $1", uuid.UUID(endpoint_id)
        )
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
    first, second = start_ledger(dsn), start_ledger(dsn)
    try:
        async with aiohttp.ClientSession() as http:
            tenant = str(uuid.uuid4())
            clients = [client_for(http, p, tenant) for p in (first, second)]
            # The receiver holds the 21st request unanswered: whichever process sent it is caught
            # mid-attempt, holding the lease with undelivered events (that one at least), however
            # fast or slow the writes and the deliveries went until then.
            receiver.hold["stream"] = KILL_AT
            endpoint = await create_endpoint(clients[0], receiver.url("stream"), ["transfer.*", "account.*"])
            a, b = await clients[0].create_account(), await clients[1].create_account()
            writer = asyncio.create_task(write_transfers(clients, a["id"], b["id"], TRANSFERS_BEFORE_KILL))
            await receiver.wait_for(lambda: receiver.holding("stream"), f"delivery {KILL_AT} to be in flight")
            in_flight = receiver.got["stream"][KILL_AT - 1].event["seq"]
            holder = await lease_holder(dsn, endpoint["id"])
            pids = {p.process.pid: p for p in (first, second)}  # type: ignore[union-attr]
            assert holder in pids, "the lease is held by one of the two processes"
            victim = pids[holder]
            survivor = second if victim is first else first
            await asyncio.to_thread(victim.kill)
            # The lease still names the victim: no one else delivers until it expires.
            assert await lease_holder(dsn, endpoint["id"]) == holder
            receiver.release("stream")  # the answer goes nowhere: the victim is gone
            # Writes go on through the survivor (each tried on the dead process first in turn).
            written = await writer + await write_transfers(clients, a["id"], b["id"], TRANSFERS - TRANSFERS_BEFORE_KILL)
            assert written == TRANSFERS
            journal = await all_events(client_for(http, survivor, tenant))
            assert [e["type"] for e in journal].count("transfer.created") == TRANSFERS
            expected = [e["seq"] for e in journal]
            await receiver.wait_for(
                lambda: receiver.seqs("stream")[-1:] == expected[-1:], "the survivor to deliver the rest", 90
            )
            await asyncio.sleep(0.3)
            # Every event once, in seq order, but the one in flight when the victim died: it was
            # never acknowledged, so the survivor delivers it again (at least once).
            position = expected.index(in_flight)
            assert receiver.seqs("stream") == expected[: position + 1] + expected[position:]
            for r in receiver.got["stream"]:
                assert verify_signature(endpoint["secret"], r.headers, r.body, now=time.time())
    finally:
        first.stop()
        second.stop()


async def test_graceful_restart_delivers_nothing_twice(receiver: Receiver, dsn: str) -> None:
    process = start_ledger(dsn)
    replacement: ServiceProcess | None = None
    try:
        async with aiohttp.ClientSession() as http:
            tenant = str(uuid.uuid4())
            client = client_for(http, process, tenant)
            endpoint = await create_endpoint(client, receiver.url("deploy"), ["transfer.created"])
            # Not due while the backlog is written (the tenant has no event yet, so no worker has
            # claimed it): however slow the writes, the whole stream is still to deliver when it
            # is enabled.
            await hold_back(dsn, endpoint["id"])
            a, b = await client.create_account(), await client.create_account()
            assert await write_transfers([client], a["id"], b["id"], 60) == 60
            # At least 0.25 s an event: 55 events still to go when the stop is sent, some 14 s of
            # stream, while the stop takes effect within the attempt in flight.
            receiver.delay = 0.25
            enabled = await client.call("POST", f"/v1/webhook-endpoints/{endpoint['id']}/enable")
            assert enabled.status == 200, enabled.body
            await receiver.wait_for(lambda: len(receiver.got["deploy"]) >= 5, "the stream to start")
            # In a thread: the receiver runs on this event loop and must answer meanwhile.
            code = await asyncio.to_thread(process.stop, signal.SIGTERM)
            assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop
            assert "Application shutdown complete" in process.log_path.read_text()
            stopped_at = len(receiver.got["deploy"])
            assert stopped_at < 60, "the stop came mid-stream"
            receiver.delay = 0.0
            replacement = start_ledger(dsn)
            await receiver.wait_for(lambda: len(receiver.got["deploy"]) >= 60, "the rest after the restart")
            await asyncio.sleep(0.3)
            expected = [e["seq"] for e in await all_events(client_for(http, replacement, tenant))][2:]
            assert_complete(receiver.seqs("deploy"), expected, repeats_allowed=0)
    finally:
        process.stop()
        if replacement is not None:
            replacement.stop()
