"""Slow clients (slowloris): a client that connects and stalls, mid-headers or mid-body, is cut off
after ``REQUEST_READ_TIMEOUT_SECONDS`` while everyone else is served; nothing it sent is written.

A gateway of its own (same dependencies) runs with a 1 s read timeout so the test does not wait
for the 30 s default. The stalled sockets then wait for the server to close them; their read
timeout is only a guard against a server that never does.
"""

from __future__ import annotations

import asyncio

import asyncpg

from tests.adversarial.conftest import Victim, rows_of
from tests.support.api import Api
from tests.support.platform import Platform

GUARD_SECONDS = 60.0


async def _stall(port: int, sent: bytes) -> bytes:
    """Send ``sent``, never finish the request, and return what the server answers until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(sent)
        await writer.drain()
        received = b""
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), GUARD_SECONDS)
            except TimeoutError:
                return received + b"<still open>"
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk
    finally:
        writer.close()


async def test_stalled_requests_are_cut_off_and_others_served(
    platform: Platform, api: Api, victim: Victim, db: asyncpg.Connection
) -> None:
    gateway = await asyncio.to_thread(platform.extra_gateway, REQUEST_READ_TIMEOUT_SECONDS="1")
    token = victim.tenant.token.encode()
    body = b'{"currency": "USD", "metadata": {"sent": "slowly"}}'
    head = b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + b"\r\n"
    stalls = {
        "connects and says nothing": b"",
        "half a request line": b"POST /v1/acc",
        "headers, never the blank line": head + b"Content-Type: application/json\r\n",
        "headers, half the body": head
        + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body[:20],
        "chunked, never the last chunk": head
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(body)
        + body
        + b"\r\n",
    }
    try:
        stalled = [
            (name, asyncio.create_task(_stall(gateway.port, sent))) for name, sent in stalls.items() for _ in range(4)
        ]
        await asyncio.sleep(0.2)  # the stalled connections are open before the others come

        # Everyone else is served meanwhile, through the same gateway.
        for _ in range(5):
            reply = await api.call(
                "POST", "/v1/accounts", json={"currency": "EUR"}, token=victim.tenant.token, base_url=gateway.url
            )
            assert reply.status == 201, reply
        answers = [(name, await task) for name, task in stalled]
    finally:
        await asyncio.to_thread(gateway.stop)
    for name, received in answers:
        assert not received.endswith(b"<still open>"), f"{name}: the server kept a stalled connection open"
        # Closed without an answer, or answered 4xx: never a 2xx, never a 5xx.
        assert received == b"" or received.startswith(b"HTTP/1.1 4"), (name, received[:200])
    accounts, transfers, counters = await rows_of(db, victim.tenant)
    assert (accounts, transfers, counters) == (2 + 5, 0, 0)
    assert await db.fetchval('SELECT count(*) FROM accounts WHERE metadata @> \'{"sent": "slowly"}\'') == 0
