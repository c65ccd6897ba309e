"""What the delivery worker does besides delivering: prune the deliveries log, report failing endpoints.

Every :data:`INTERVAL_SECONDS` each ledger process

- deletes attempts older than ``WEBHOOK_DELIVERY_RETENTION_DAYS`` from ``webhook_deliveries``, in
  batches of :data:`PRUNE_BATCH` rows, each its own short statement, at most :data:`PRUNE_MAX_BATCHES`
  per round (so a large backlog after enabling retention is worked off over several rounds, never in
  one long transaction that would hold locks and bloat the WAL at once);
- sets the ``WebhookEndpointsFailing`` gauge to the number of endpoints in ``failing`` state (all
  tenants; every process reports the same count, the alarm reads the maximum).

Pruning reads the log from its oldest row by primary key (``pk`` grows with time, and
``attempted_at`` is at most one delivery timeout earlier than the insert), so each batch costs an
index range of :data:`PRUNE_BATCH` rows whether or not there is anything to delete: no index on
``attempted_at`` is needed, and a log with nothing old costs one short scan. ``SKIP LOCKED`` lets the
processes of a fleet prune side by side without waiting on each other. Cursors of the deliveries
list are ``pk`` positions, so a page cursor stays valid across pruning (the rows before it are gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from services.ledger.db import DATABASE_DOWN
from shared.metrics import WEBHOOK_ENDPOINTS_FAILING, current_metrics

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 30.0
"""Shorter than the metrics interval (60 s), so every flush carries the failing-endpoints gauge."""

PRUNE_BATCH = 500
"""Rows one prune statement looks at (and deletes at most)."""

PRUNE_MAX_BATCHES = 20
"""Batches per round: at most 10,000 rows per process every 30 s, far above any delivery rate."""

PRUNE = """
WITH oldest AS (SELECT pk FROM webhook_deliveries ORDER BY pk LIMIT $2 FOR UPDATE SKIP LOCKED)
DELETE FROM webhook_deliveries d USING oldest
 WHERE d.pk = oldest.pk AND d.attempted_at < clock_timestamp() - make_interval(secs => $1)
"""


async def prune_deliveries(conn: asyncpg.Connection, older_than_seconds: float, batch: int = PRUNE_BATCH) -> int:
    """Deletes attempts older than ``older_than_seconds`` among the ``batch`` oldest rows; the count deleted."""
    status: str = await conn.execute(PRUNE, older_than_seconds, batch)
    return int(status.split()[-1])


async def count_failing(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM webhook_endpoints WHERE status = 'failing'"))


async def prune_round(pool: asyncpg.Pool, retention_seconds: float) -> int:
    """One round: full batches until one is not full or :data:`PRUNE_MAX_BATCHES` ran; rows deleted."""
    deleted = 0
    for _ in range(PRUNE_MAX_BATCHES):
        async with pool.acquire(timeout=5) as conn:
            count = await prune_deliveries(conn, retention_seconds, PRUNE_BATCH)
        deleted += count
        if count < PRUNE_BATCH:
            break
        await asyncio.sleep(0.05)  # between batches, the pool's connections are the writers' again
    return deleted


async def housekeeping_round(pool: asyncpg.Pool, retention_seconds: float) -> None:
    async with pool.acquire(timeout=5) as conn:
        failing = await count_failing(conn)
    metrics = current_metrics()
    if metrics is not None:
        metrics.gauge(WEBHOOK_ENDPOINTS_FAILING, failing)
    if retention_seconds > 0:
        deleted = await prune_round(pool, retention_seconds)
        if deleted:
            log.info("webhook deliveries pruned", extra={"rows": deleted})


async def housekeeping_forever(pool: asyncpg.Pool, retention_seconds: float, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        try:
            await housekeeping_round(pool, retention_seconds)
        except asyncio.CancelledError:
            raise
        except asyncpg.UndefinedTableError:
            pass  # migrations not applied yet
        except (*DATABASE_DOWN, asyncpg.PostgresError):
            log.warning("webhook housekeeping failed", exc_info=True)
        with contextlib.suppress(TimeoutError):  # asyncio.timeout: see journal.EventWaiters.wait
            async with asyncio.timeout(INTERVAL_SECONDS):
                await stopping.wait()
