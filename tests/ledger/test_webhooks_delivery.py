"""Webhook delivery by real ledger processes to a receiver on loopback (docs/api.md section 12).

Events are produced through the API (accounts and transfers); the receiver checks every signature
with an independent Standard Webhooks implementation. Covered: seq order per endpoint, event-type
filters, retries after failures with one stable ``webhook-id``, ``failing`` after the give-up time
and ``enable`` resuming from the first undelivered event, the deliveries log, and the address rule
re-checked at delivery time (DNS rebinding).

The module's ledger never gives up within a test (``FAST_RETRIES``), so a retry is never cut short
by a slow machine; giving up is tested on a ledger of its own that gives up after
:data:`GIVE_UP_SECONDS`.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import asyncpg
import pytest

from services.ledger.webhooks.worker import WebhookConfig
from tests.ledger.conftest import client_for
from tests.ledger.test_webhooks_support import (
    Receiver,
    all_events,
    create_endpoint,
    private_database,
    verify_signature,
    webhook_ledger_env,
)
from tests.support.processes import ServiceProcess, free_port

GIVE_UP_SECONDS = 2
"""The giving-up ledger's ``WEBHOOK_GIVE_UP_SECONDS``."""


@pytest.fixture(scope="module")
def ledger_database() -> Iterator[str]:
    with private_database() as dsn:
        yield dsn


@pytest.fixture(scope="module")
def ledger(ledger_database: str) -> Iterator[ServiceProcess]:
    port = free_port()
    process = ServiceProcess("ledger", port, webhook_ledger_env(ledger_database, port)).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def strict_ledger() -> Iterator[ServiceProcess]:
    """Its own database: the other process, which allows private addresses, would deliver too."""
    with private_database() as dsn:
        port = free_port()
        env = webhook_ledger_env(dsn, port, WEBHOOK_ALLOW_PRIVATE_URLS="false")
        process = ServiceProcess("ledger", port, env).start()
        yield process
        process.stop()


@pytest.fixture(scope="module")
def giving_up_ledger() -> Iterator[ServiceProcess]:
    """Gives up after :data:`GIVE_UP_SECONDS`; its own database, so that no process with another
    give-up time works its endpoints."""
    with private_database() as dsn:
        port = free_port()
        env = webhook_ledger_env(dsn, port, WEBHOOK_GIVE_UP_SECONDS=str(GIVE_UP_SECONDS))
        process = ServiceProcess("ledger", port, env).start()
        yield process
        process.stop()


@pytest.fixture
async def db(giving_up_ledger: ServiceProcess) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(giving_up_ledger.env["DATABASE_URL"])
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


def arrived(receiver: Receiver, name: str, count: int) -> bool:
    return len(receiver.got[name]) >= count


def test_the_verifier_reproduces_the_specification_vector() -> None:
    """Positive and negative controls for the verifier every other test relies on."""
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    secret, body = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", b'{"test": 2432232314}'
    assert verify_signature(secret, headers, body, now=1614265330)
    assert not verify_signature(secret, headers, b'{"test": 2432232315}', now=1614265330)
    assert not verify_signature(secret, {**headers, "webhook-id": "msg_other"}, body, now=1614265330)
    assert not verify_signature(secret, headers, body, now=1614265330 + 3600)  # replayed later


async def test_signed_in_order_and_filtered(
    ledger: ServiceProcess, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    client = client_for(http, ledger)
    transfers_ep = await create_endpoint(client, receiver.url("transfers"), ["transfer.*"])
    accounts_ep = await create_endpoint(client, receiver.url("accounts"), ["account.created"])
    mixed_ep = await create_endpoint(client, receiver.url("all"), ["account.*", "transfer.created"])
    every_ep = await create_endpoint(client, receiver.url("every"), ["*"])
    a, b = await client.create_account(), await client.create_account()
    replies = await asyncio.gather(*(client.transfer(a["id"], b["id"], 1 + i) for i in range(40)))
    assert all(r.status == 201 for r in replies)
    pending = await client.transfer(a["id"], b["id"], 7, pending=True)
    assert pending.status == 201
    assert (await client.call("POST", f"/v1/transfers/{pending.body['id']}/post", {})).status == 200

    journal = await all_events(client)
    expected = {
        "transfers": [e["seq"] for e in journal if e["type"].startswith("transfer.")],
        "accounts": [e["seq"] for e in journal if e["type"] == "account.created"],
        "all": [e["seq"] for e in journal if e["type"].startswith("account.") or e["type"] == "transfer.created"],
        "every": [e["seq"] for e in journal],
    }
    assert len(expected["transfers"]) == 42 and len(expected["accounts"]) == 2 and len(expected["all"]) == 43
    for name, seqs in expected.items():
        await receiver.wait_for(functools.partial(arrived, receiver, name, len(seqs)), f"{name} events")
    await asyncio.sleep(0.3)  # nothing more arrives
    by_seq = {e["seq"]: e for e in journal}
    secrets = {
        "transfers": transfers_ep["secret"],
        "accounts": accounts_ep["secret"],
        "all": mixed_ep["secret"],
        "every": every_ep["secret"],
    }
    for name, seqs in expected.items():
        assert receiver.seqs(name) == seqs, name  # every matching event, once, in seq order
        for received in receiver.got[name]:
            assert verify_signature(secrets[name], received.headers, received.body, now=time.time())
            assert not verify_signature(
                secrets["accounts" if name != "accounts" else "all"], received.headers, received.body, now=time.time()
            )
            assert received.headers["content-type"] == "application/json"
            assert received.event == by_seq[received.event["seq"]]  # the event object, as GET /v1/events has it
            assert set(received.event) == {"seq", "type", "occurred_at", "data", "prev_hash", "hash"}
    ids = [r.headers["webhook-id"] for r in receiver.got["all"]]
    assert len(set(ids)) == len(ids)
    assert receiver.got["transfers"][-1].event["type"] == "transfer.posted"


async def test_retries_after_failures_then_succeeds(
    ledger: ServiceProcess, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    client = client_for(http, ledger)
    receiver.script["flaky"] = [500, 503, 404]
    endpoint = await create_endpoint(client, receiver.url("flaky"), ["account.created"])
    first, second = await client.create_account(), await client.create_account()
    await receiver.wait_for(lambda: len(receiver.got["flaky"]) >= 5, "three failures and two deliveries")
    await asyncio.sleep(0.3)
    got = receiver.got["flaky"]
    assert [r.event["data"]["id"] for r in got] == [first["id"]] * 4 + [second["id"]]
    assert len({r.headers["webhook-id"] for r in got[:4]}) == 1  # one id across retries of one event
    assert all(verify_signature(endpoint["secret"], r.headers, r.body, now=time.time()) for r in got)

    # The receiver has the last delivery a moment before the worker commits its log row.
    deadline = time.monotonic() + 30
    while True:
        log = await client.call("GET", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")
        assert log.status == 200, log.body
        if len(log.body["data"]) >= 5 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    rows = log.body["data"]
    assert [(d["attempt"], d["status"], d["response_code"]) for d in rows] == [
        (1, "failed", 500),
        (2, "failed", 503),
        (3, "failed", 404),
        (4, "succeeded", 200),
        (1, "succeeded", 200),
    ]
    assert [d["event_seq"] for d in rows] == [got[0].event["seq"]] * 4 + [got[4].event["seq"]]
    assert all(d["event_type"] == "account.created" and d["duration_ms"] >= 0 for d in rows)
    assert all(d["attempted_at"].endswith("Z") for d in rows)
    newest = await client.call(
        "GET", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", params={"order": "desc", "limit": "2"}
    )
    assert [d["attempt"] for d in newest.body["data"]] == [1, 4] and newest.body["next_cursor"]
    rest = await client.call(
        "GET",
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries",
        params={"order": "desc", "limit": "2", "cursor": newest.body["next_cursor"]},
    )
    assert [d["attempt"] for d in rest.body["data"]] == [3, 2]
    # Backoff: the retries were spread out, not sent back to back.
    assert got[3].at - got[0].at > 0.02


async def test_failing_then_enable_resumes_from_the_first_undelivered_event(
    giving_up_ledger: ServiceProcess, http: aiohttp.ClientSession, receiver: Receiver, db: asyncpg.Connection
) -> None:
    client = client_for(http, giving_up_ledger)
    receiver.always["down"] = 500
    endpoint = await create_endpoint(client, receiver.url("down"), ["account.created"])
    accounts = [await client.create_account() for _ in range(3)]
    path = f"/v1/webhook-endpoints/{endpoint['id']}"

    async def status() -> str:
        reply = await client.call("GET", path)
        return str(reply.body["status"])

    deadline = time.monotonic() + 30
    while await status() != "failing":
        assert time.monotonic() < deadline, "not marked failing within 30 s"
        await asyncio.sleep(0.1)
    attempts = len(receiver.got["down"])
    # How many retries fit in the give-up time depends on the machine's load; the first failure
    # never gives up (it is 0 s old), so there were at least two.
    assert attempts >= 2 and {r.event["data"]["id"] for r in receiver.got["down"]} == {accounts[0]["id"]}
    # Given up on time, not early: the failure that marked the endpoint failing was recorded (the
    # log row's attempted_at + duration: when the worker wrote it, after the status) at least
    # GIVE_UP_SECONDS after the first failure (failing_since).
    failing_since = await db.fetchval(
        "SELECT failing_since FROM webhook_endpoints WHERE id = $1", uuid.UUID(endpoint["id"])
    )
    recorded = await db.fetch(
        """SELECT attempted_at + make_interval(secs => duration_ms / 1000.0) AS at FROM webhook_deliveries
            WHERE endpoint_id = $1 ORDER BY pk""",
        uuid.UUID(endpoint["id"]),
    )
    assert len(recorded) == attempts
    assert (recorded[-1]["at"] - failing_since).total_seconds() >= GIVE_UP_SECONDS - 0.001
    await asyncio.sleep(0.5)
    assert len(receiver.got["down"]) == attempts  # a failing endpoint gets nothing more
    listed = (await client.call("GET", "/v1/webhook-endpoints")).body["data"]
    assert [e["status"] for e in listed if e["id"] == endpoint["id"]] == ["failing"]  # still listed

    receiver.always["down"] = 200
    enabled = await client.call("POST", f"{path}/enable")
    assert enabled.status == 200 and enabled.body["status"] == "enabled"
    await receiver.wait_for(lambda: len(receiver.got["down"]) >= attempts + 3, "the three events after enable")
    resumed = [r.event["data"]["id"] for r in receiver.got["down"][attempts:]]
    assert resumed == [a["id"] for a in accounts]
    # The receiver has the third delivery a moment before the worker commits its log row.
    deadline = time.monotonic() + 30
    while True:
        log = (await client.call("GET", f"{path}/deliveries", params={"limit": "1000"})).body["data"]
        if len(log) >= attempts + 3 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert [d["status"] for d in log] == ["failed"] * attempts + ["succeeded"] * 3
    delivered = await db.fetchval(
        "SELECT delivered_seq FROM webhook_endpoints WHERE id = $1", uuid.UUID(endpoint["id"])
    )
    assert delivered == receiver.got["down"][-1].event["seq"]


async def test_deleted_endpoint_gets_nothing_more(
    ledger: ServiceProcess, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    client = client_for(http, ledger)
    endpoint = await create_endpoint(client, receiver.url("gone"), ["account.created"])
    await client.create_account()
    await receiver.wait_for(lambda: len(receiver.got["gone"]) == 1, "the first event")
    assert (await client.call("DELETE", f"/v1/webhook-endpoints/{endpoint['id']}")).status == 204
    await client.create_account()
    await asyncio.sleep(0.5)
    assert len(receiver.got["gone"]) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_private_addresses_are_refused_at_delivery_time(
    strict_ledger: ServiceProcess, http: aiohttp.ClientSession, receiver: Receiver, host: str
) -> None:
    """A name may resolve to a public address when registered and to a private one later (DNS
    rebinding): deliveries check the address they connect to, whatever was checked before."""
    client = client_for(http, strict_ledger)
    endpoint = await create_endpoint(client, "https://93.184.215.14/hook", ["account.created"])
    rebound = receiver.url("rebound").replace("127.0.0.1", host)
    conn = await asyncpg.connect(strict_ledger.env["DATABASE_URL"])
    try:
        await conn.execute("UPDATE webhook_endpoints SET url = $1 WHERE id = $2", rebound, uuid.UUID(endpoint["id"]))
    finally:
        await conn.close()
    await client.create_account()
    path = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"
    deadline = time.monotonic() + 30
    while not (log := (await client.call("GET", path)).body["data"]):
        assert time.monotonic() < deadline, "no attempt within 30 s"
        await asyncio.sleep(0.05)
    assert log[0]["status"] == "failed" and log[0]["response_code"] is None
    assert log[0]["error"].startswith("address not allowed"), log[0]
    assert receiver.got["rebound"] == []
    await client.call("DELETE", f"/v1/webhook-endpoints/{endpoint['id']}")


def test_retry_delays_are_full_jitter_under_an_exponential_ceiling() -> None:
    config = WebhookConfig(retry_base_seconds=5, retry_max_seconds=3600)
    for failures in range(1, 80):
        ceiling = min(3600, 5 * 2 ** (failures - 1))
        delays = [config.retry_delay(failures) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays), failures
        assert max(delays) > ceiling / 2 and min(delays) < ceiling / 2  # spread over the whole range
