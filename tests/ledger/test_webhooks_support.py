"""Shared by the webhook tests (no tests here): a receiver on loopback, an independent Standard
Webhooks verifier, ledger process settings that make retries fast, and private databases.

Every ledger process runs a delivery worker that serves every endpoint of its database, so a test
whose deliveries depend on settings (private addresses allowed or not) runs its processes on a
database of its own: the suite's other ledger processes would otherwise deliver (or refuse) too.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from cli.launcher import drop_database
from cli.local_services import with_database
from services.ledger.migrate import migrate
from shared.settings import get_settings
from tests.ledger.conftest import ledger_env
from tests.support.http import ApiClient
from tests.support.processes import free_port

FAST_RETRIES = {
    "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
    "WEBHOOK_POLL_INTERVAL_SECONDS": "0.05",
    "WEBHOOK_RETRY_BASE_SECONDS": "0.05",
    "WEBHOOK_RETRY_MAX_SECONDS": "0.2",
    "WEBHOOK_GIVE_UP_SECONDS": "600",
}
"""A ledger that delivers to loopback and retries within tenths of seconds. It gives up only after
10 minutes, so however slow a loaded machine makes the retries, no endpoint is marked ``failing``
during a test that does not ask for it. A test about giving up sets a short
``WEBHOOK_GIVE_UP_SECONDS`` on a ledger (and database) of its own."""


@contextmanager
def private_database() -> Iterator[str]:
    """A freshly migrated database of its own, dropped afterwards."""
    base = get_settings().database.url
    name = f"test_wh_{uuid.uuid4().hex[:10]}"
    dsn = with_database(base, name)
    asyncio.run(migrate(dsn))
    try:
        yield dsn
    finally:

        async def drop() -> None:
            await drop_database(base, name)

        asyncio.run(drop())


def webhook_ledger_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    return {**ledger_env(database_url, port, grouped=True), **FAST_RETRIES, **extra}


def verify_signature(secret: str, headers: dict[str, str], body: bytes, now: float, tolerance: int = 300) -> bool:
    """Standard Webhooks verification written from the specification, independent of the service."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(now - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret[len("whsec_") :] if secret.startswith("whsec_") else secret)
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for candidate in headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return True
    return False


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event


@dataclass
class Receiver:
    """Records every POST to ``/{name}`` and answers it as scripted (default 200)."""

    got: dict[str, list[Received]] = field(default_factory=lambda: defaultdict(list))
    script: dict[str, list[int]] = field(default_factory=dict)
    """Statuses answered to the next requests to a name, in order; then ``always`` or 200."""
    always: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0
    hold: dict[str, int] = field(default_factory=dict)
    """The request to a name with this number (1: the first) is recorded, then left unanswered until
    :meth:`release`: its sender is caught in the middle of an attempt for as long as a test needs."""
    port: int = 0
    _runner: web.AppRunner | None = None
    _held: dict[str, asyncio.Event] = field(default_factory=dict)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        for gate in self._held.values():
            gate.set()  # else cleanup would wait for the held request
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.got[name].append(Received(headers, await request.read(), time.time()))
        if self.hold.get(name) == len(self.got[name]):
            gate = self._held[name] = asyncio.Event()
            await gate.wait()
        planned = self.script.get(name)
        status = planned.pop(0) if planned else self.always.get(name, 200)
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=status)

    def holding(self, name: str) -> bool:
        """Whether the request :attr:`hold` names for ``name`` has arrived and is being held."""
        return name in self._held and not self._held[name].is_set()

    def release(self, name: str) -> None:
        """Lets the held request to ``name`` be answered (as scripted)."""
        self._held[name].set()

    def seqs(self, name: str) -> list[int]:
        return [r.event["seq"] for r in self.got[name]]

    async def wait_for(self, check: Callable[[], bool], what: str, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while not check():
            assert time.monotonic() < deadline, f"timed out after {within:g} s waiting for {what}"
            await asyncio.sleep(0.02)


async def create_endpoint(client: ApiClient, url: str, event_types: list[str]) -> dict[str, Any]:
    reply = await client.call("POST", "/v1/webhook-endpoints", {"url": url, "event_types": event_types})
    assert reply.status == 201, reply.body
    return dict(reply.body)


async def all_events(client: ApiClient) -> list[dict[str, Any]]:
    """The tenant's whole journal, through ``GET /v1/events``."""
    events: list[dict[str, Any]] = []
    while True:
        reply = await client.call(
            "GET", "/v1/events", params={"after": str(events[-1]["seq"] if events else 0), "limit": "1000"}
        )
        assert reply.status == 200, reply.body
        if not reply.body["data"]:
            return events
        events.extend(reply.body["data"])
