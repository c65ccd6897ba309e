"""What a ledger process holds while it runs: the pool, the group committer, the expiry sweeper."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import asyncpg

from services.ledger import store
from services.ledger.committer import GroupCommitter
from services.ledger.db import DATABASE_DOWN, connection, create_pool
from services.ledger.journal import EventWaiters
from services.ledger.verify import verify
from services.ledger.webhooks.worker import DeliveryWorker, WebhookConfig
from shared.errors import ProblemError
from shared.metrics import VERIFIER_DISCREPANCIES, current_metrics
from shared.settings import Settings

log = logging.getLogger(__name__)

NEXT_EXPIRY = (
    "SELECT min(expires_at) - clock_timestamp() FROM transfers WHERE status = 'pending' AND expires_at IS NOT NULL"
)


VERIFIER_LOCK = 0x7E21F1
"""Advisory lock held while a verifier run is in progress: one run at a time across the fleet."""


@dataclass
class LedgerRuntime:
    pool: asyncpg.Pool
    committer: GroupCommitter
    internal_token: str
    sweep_interval: float
    verifier_interval: float
    events: EventWaiters = field(init=False)
    """Wakes ``GET /v1/events?wait=`` long-polls when a tenant's events commit."""
    webhooks: DeliveryWorker = field(init=False)
    """Delivers the tenants' events to their webhook endpoints (services/ledger/webhooks/worker.py)."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)

    @classmethod
    async def start(cls, settings: Settings) -> LedgerRuntime:
        pool = await create_pool(settings.database.url, settings.database.pool_size)
        committer = GroupCommitter(
            pool,
            max_items=settings.ledger.group_commit_max_items,
            max_inflight=settings.ledger.group_commit_max_inflight,
            enabled=settings.ledger.group_commit_enabled,
        )
        runtime = cls(
            pool,
            committer,
            settings.process.internal_token,
            settings.ledger.expiry_sweep_interval_seconds,
            settings.ledger.verifier_interval_seconds,
        )
        runtime.events = EventWaiters(settings.database.url)
        await runtime.events.start()
        runtime.webhooks = DeliveryWorker(pool, WebhookConfig.of(settings))
        runtime.webhooks.start()
        runtime._tasks.append(asyncio.create_task(runtime._sweep_forever(), name="expiry-sweeper"))
        if runtime.verifier_interval > 0:
            runtime._tasks.append(asyncio.create_task(runtime._verify_forever(), name="verifier"))
        return runtime

    async def stop(self) -> None:
        """Graceful: stop background work, let committing groups finish, then close the connections."""
        await self.webhooks.stop()  # first: an attempt in flight finishes and commits its cursor
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.committer.drain()
        await self.events.stop()
        await self.pool.close()

    async def ready(self) -> str | None:
        try:
            async with asyncio.timeout(2):
                await self.pool.fetchval("SELECT 1")
        except (ProblemError, *DATABASE_DOWN) as exc:  # type: ignore[misc]
            return f"database: {type(exc).__name__}"
        return None

    async def _sweep_forever(self) -> None:
        """Release reservations at their expiry, whether or not anyone looks at them.

        Sleeps until the next known expiry (at most ``sweep_interval``), so a reservation is
        released within milliseconds of ``expires_at``; reads already show it released before.
        """
        while True:
            delay = self.sweep_interval
            try:
                async with connection(self.pool) as conn:
                    expired = await store.expire_due(conn)
                    if expired:
                        continue
                    until_next = await conn.fetchval(NEXT_EXPIRY)
                if until_next is not None:
                    delay = min(delay, max(until_next.total_seconds(), 0.005))
            except asyncio.CancelledError:
                raise
            except ProblemError:  # the database is down (see db.connection): try again shortly
                delay = 1.0
            except Exception:
                log.exception("expiry sweep failed")
                delay = 1.0
            await asyncio.sleep(delay)

    async def _verify_forever(self) -> None:
        """Run the verifier periodically and publish its result as the VerifierDiscrepancies metric."""
        while True:
            await asyncio.sleep(self.verifier_interval)
            try:
                async with self.pool.acquire(timeout=5) as conn:
                    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", VERIFIER_LOCK):
                        continue
                    try:
                        report = await verify(conn)
                    finally:
                        await conn.execute("SELECT pg_advisory_unlock($1)", VERIFIER_LOCK)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("verifier run failed")
                continue
            metrics = current_metrics()
            if metrics is not None:
                metrics.gauge(VERIFIER_DISCREPANCIES, len(report.discrepancies))
            if report.ok:
                log.info("verifier: consistent", extra={"accounts": report.accounts, "transfers": report.transfers})
            else:
                log.error("verifier: discrepancies found", extra={"discrepancies": report.discrepancies})
