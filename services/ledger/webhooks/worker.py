"""The delivery worker every ledger process runs: POSTs each endpoint's events, in order, at least once.

Loop: every ``WEBHOOK_POLL_INTERVAL_SECONDS`` the worker leases due endpoints that have events past
their cursor (:func:`.store.claim`, at most ``WEBHOOK_MAX_CONCURRENCY`` at once) and works each in
its own task, which delivers the endpoint's matching events one at a time in seq order:

- success is a 2xx within :data:`DELIVERY_TIMEOUT_SECONDS`; the cursor is committed right after it,
  with the attempt's log row, so only an attempt in flight when the process dies can be repeated;
- anything else (other status, redirect: never followed, timeout, refused address) is logged, the
  next attempt is scheduled with exponential backoff and full jitter
  (``uniform(0, min(WEBHOOK_RETRY_MAX_SECONDS, WEBHOOK_RETRY_BASE_SECONDS * 2**(n-1)))``) and the
  lease is given up; once the first failure of the run is ``WEBHOOK_GIVE_UP_SECONDS`` old the
  endpoint is marked ``failing`` and nothing more is sent until it is enabled again.

Before each attempt the task makes sure its lease outlives the attempt (renewing it), so two
processes never deliver to one endpoint at once. On a graceful stop each task finishes the attempt
in flight and commits it, and the leases are given back so another process resumes at once; after a
crash the lease expires (``WEBHOOK_LEASE_SECONDS``) and another process resumes from the cursor.
One aiohttp session per process; with private URLs disallowed it resolves names through
:class:`.url_safety.PublicOnlyResolver`. Beside the deliveries, :mod:`.housekeeping` prunes the
deliveries log and reports the failing endpoints; every failed attempt counts in
``WebhookDeliveryFailures``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import msgspec

from services.ledger.db import DATABASE_DOWN
from services.ledger.journal import Event
from services.ledger.webhooks import housekeeping, signing, store
from services.ledger.webhooks.url_safety import PublicOnlyResolver, UnsafeAddress, address_allowed, literal_address
from shared.metrics import WEBHOOK_DELIVERY_FAILURES, current_metrics
from shared.settings import Settings

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_SECONDS = 10.0
"""A delivery counts only when the endpoint answers 2xx within this long (docs/api.md section 12)."""

BATCH = 100
"""Events read per query while an endpoint is worked."""

MIN_LEASE_SECONDS = DELIVERY_TIMEOUT_SECONDS + 5
"""A lease always outlives an attempt, so an attempt never starts under a lease about to expire."""

MAX_ERROR_LENGTH = 300


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """The webhook settings a ledger process works with (shared/settings/ledger.py, WebhookSettings, documents each)."""

    allow_private_urls: bool = False
    require_https: bool = False
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 3600.0
    give_up_seconds: float = 86_400.0
    poll_interval_seconds: float = 0.5
    lease_seconds: float = 30.0
    max_concurrency: int = 32
    retention_seconds: float = 30 * 86_400.0
    """Age at which attempts leave the deliveries log (0: never; :mod:`.housekeeping`)."""

    @classmethod
    def of(cls, settings: Settings) -> WebhookConfig:
        return cls(
            allow_private_urls=settings.webhooks.allow_private_urls,
            require_https=settings.webhooks.require_https,
            retry_base_seconds=settings.webhooks.retry_base_seconds,
            retry_max_seconds=settings.webhooks.retry_max_seconds,
            give_up_seconds=settings.webhooks.give_up_seconds,
            poll_interval_seconds=settings.webhooks.poll_interval_seconds,
            lease_seconds=max(settings.webhooks.lease_seconds, MIN_LEASE_SECONDS),
            max_concurrency=max(settings.webhooks.max_concurrency, 1),
            retention_seconds=max(settings.webhooks.delivery_retention_days, 0.0) * 86_400,
        )

    def retry_delay(self, failed_attempts: int) -> float:
        """Full jitter: a uniform delay up to the exponential backoff for the n-th failure (n >= 1)."""
        ceiling = min(self.retry_max_seconds, self.retry_base_seconds * 2 ** min(failed_attempts - 1, 40))
        return random.uniform(0, ceiling)


class _LeaseLost(Exception):
    """Another process holds the endpoint now, it was deleted or it was marked failing."""


@dataclass
class DeliveryWorker:
    pool: asyncpg.Pool
    config: WebhookConfig
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    _session: aiohttp.ClientSession | None = field(default=None, init=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _active: dict[tuple[uuid.UUID, uuid.UUID], asyncio.Task[None]] = field(default_factory=dict, init=False)
    _loop_task: asyncio.Task[None] | None = field(default=None, init=False)
    _housekeeping: asyncio.Task[None] | None = field(default=None, init=False)

    def start(self) -> None:
        resolver = None if self.config.allow_private_urls else PublicOnlyResolver()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=resolver, limit=self.config.max_concurrency * 2),
            timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_SECONDS),
            headers={"user-agent": "ledger-webhooks/1"},
            trust_env=False,  # never through a proxy named by the environment
        )
        self._loop_task = asyncio.create_task(self._claim_forever(), name="webhook-worker")
        self._housekeeping = asyncio.create_task(
            housekeeping.housekeeping_forever(self.pool, self.config.retention_seconds, self._stopping),
            name="webhook-housekeeping",
        )

    async def stop(self, grace_seconds: float = DELIVERY_TIMEOUT_SECONDS + 2) -> None:
        """Let attempts in flight finish and commit, give the leases back, close the session."""
        self._stopping.set()
        for background in (self._loop_task, self._housekeeping):
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
        tasks = list(self._active.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(Exception):
            async with self.pool.acquire(timeout=2) as conn:
                await store.release(conn, self.owner)
        if self._session is not None:
            await self._session.close()

    async def _claim_forever(self) -> None:
        while not self._stopping.is_set():
            free = self.config.max_concurrency - len(self._active)
            if free > 0:
                try:
                    async with self.pool.acquire(timeout=5) as conn:
                        rows = await store.claim(conn, self.owner, self.config.lease_seconds, free)
                except asyncio.CancelledError:
                    raise
                except asyncpg.UndefinedTableError:
                    rows = []  # migrations not applied yet: nothing to deliver
                except (*DATABASE_DOWN, asyncpg.PostgresError):
                    log.warning("webhook claim failed", exc_info=True)
                    rows = []
                for row in rows:
                    key = (row["tenant_id"], row["id"])
                    task = asyncio.create_task(self._work(row), name=f"webhook-{row['id']}")
                    self._active[key] = task
                    task.add_done_callback(functools.partial(self._forget, key))
            await asyncio.sleep(self.config.poll_interval_seconds)

    def _forget(self, key: tuple[uuid.UUID, uuid.UUID], task: asyncio.Task[None]) -> None:
        # Only this task's entry: the endpoint may already be claimed again by a newer task (the
        # old one gave the lease back just before it ended).
        if self._active.get(key) is task:
            del self._active[key]

    def _lease_deadline(self) -> float:
        """When this process's lease ends by its own clock, a second early for the database's."""
        return time.monotonic() + self.config.lease_seconds - 1

    async def _work(self, endpoint: asyncpg.Record) -> None:
        """Deliver the endpoint's events until it is caught up, an attempt fails or the lease is lost."""
        tenant_id, endpoint_id = endpoint["tenant_id"], endpoint["id"]
        lease_until = self._lease_deadline()
        try:
            cursor: int = endpoint["delivered_seq"]
            failed: int = endpoint["failed_attempts"]
            types = list(endpoint["event_types"])
            while not self._stopping.is_set():
                async with self.pool.acquire(timeout=5) as conn:
                    head = await store.head_seq(conn, tenant_id)
                    events = await store.matching_events(conn, tenant_id, cursor, head, types, BATCH)
                    if not events:
                        # Caught up: skip what it does not subscribe to, then let the lease go.
                        if head > cursor:
                            await store.advance(
                                conn, self.owner, self.config.lease_seconds, tenant_id, endpoint_id, head
                            )
                        await store.release(conn, self.owner, tenant_id, endpoint_id)
                        return
                for event in events:
                    if self._stopping.is_set():
                        break
                    if lease_until - time.monotonic() < DELIVERY_TIMEOUT_SECONDS + 1:
                        async with self.pool.acquire(timeout=5) as conn:
                            if not await store.renew(
                                conn, self.owner, self.config.lease_seconds, tenant_id, endpoint_id
                            ):
                                raise _LeaseLost
                        lease_until = self._lease_deadline()
                    attempt = await self._attempt(endpoint, event, failed + 1)
                    async with self.pool.acquire(timeout=5) as conn:
                        if attempt.succeeded:
                            if not await store.record_success(conn, self.owner, self.config.lease_seconds, attempt):
                                raise _LeaseLost
                            lease_until = self._lease_deadline()
                            cursor, failed = event.seq, 0
                            continue
                        delay = self.config.retry_delay(failed + 1)
                        status = await store.record_failure(
                            conn, self.owner, attempt, delay, self.config.give_up_seconds
                        )
                    if (metrics := current_metrics()) is not None and status is not None:
                        metrics.count(WEBHOOK_DELIVERY_FAILURES)
                    if status == "failing":
                        log.warning("webhook endpoint marked failing", extra={"endpoint_id": str(endpoint_id)})
                    return  # the lease is given up: the endpoint is claimed again when the retry is due
                else:
                    if len(events) < BATCH:
                        cursor = max(cursor, head)  # everything up to head it receives is delivered
                        async with self.pool.acquire(timeout=5) as conn:
                            if not await store.advance(
                                conn, self.owner, self.config.lease_seconds, tenant_id, endpoint_id, head
                            ):
                                raise _LeaseLost
                        lease_until = self._lease_deadline()
            async with self.pool.acquire(timeout=5) as conn:  # stopping: hand the endpoint over
                await store.release(conn, self.owner, tenant_id, endpoint_id)
        except _LeaseLost:
            log.info("webhook lease lost", extra={"endpoint_id": str(endpoint_id)})
        except asyncio.CancelledError:
            raise
        except Exception:
            # The database is down or the endpoint vanished mid-way: the lease expires and the
            # endpoint is claimed again, by this process or another, from its committed cursor.
            log.warning("webhook delivery interrupted", extra={"endpoint_id": str(endpoint_id)}, exc_info=True)

    async def _attempt(self, endpoint: asyncpg.Record, event: Event, number: int) -> store.Attempt:
        """One POST of ``event``; never raises for anything the endpoint or the network does."""
        assert self._session is not None
        url: str = endpoint["url"]
        body = msgspec.json.encode(event)
        msg_id = signing.message_id(endpoint["tenant_id"], event.seq)
        headers = signing.headers(endpoint["secret"], msg_id, int(time.time()), body)
        code: int | None = None
        error: str | None = None
        started = time.monotonic()
        try:
            # aiohttp resolves names through PublicOnlyResolver, but connects to IP literals directly.
            literal = literal_address(urlsplit(url).hostname or "")
            if literal is not None and not self.config.allow_private_urls and not address_allowed(literal):
                raise UnsafeAddress(f"{literal} is not a public address")
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                code = response.status
        except TimeoutError:
            error = f"no answer within {DELIVERY_TIMEOUT_SECONDS:g} s"
        except aiohttp.ClientConnectorError as exc:
            # PublicOnlyResolver's refusal arrives wrapped, with its message only in os_error.
            refused = isinstance(exc.os_error, UnsafeAddress)
            error = (f"address not allowed: {exc.os_error}" if refused else f"{type(exc).__name__}: {exc}")[
                :MAX_ERROR_LENGTH
            ]
        except UnsafeAddress as exc:
            error = f"address not allowed: {exc}"
        except (aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
        duration_ms = int((time.monotonic() - started) * 1000)
        succeeded = code is not None and 200 <= code < 300
        if code is not None and not succeeded:
            error = "redirects are not followed" if 300 <= code < 400 else f"HTTP {code}"
        return store.Attempt(
            tenant_id=endpoint["tenant_id"],
            endpoint_id=endpoint["id"],
            event_seq=event.seq,
            event_type=event.type,
            attempt=number,
            succeeded=succeeded,
            response_code=code,
            error=error,
            duration_ms=duration_ms,
        )
