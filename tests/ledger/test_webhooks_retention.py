"""The deliveries log's retention and the failing-endpoints gauge (services/ledger/webhooks/housekeeping.py).

Against a database of its own, rows written with SQL: attempts older than the retention go, in
statements that each delete at most one batch, newer ones stay, and the delivery worker does it by
itself once started; the gauge counts the endpoints in ``failing`` state.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from services.ledger.webhooks import housekeeping
from services.ledger.webhooks.worker import DeliveryWorker, WebhookConfig
from shared import metrics
from tests.ledger.test_webhooks_support import private_database

DAY = 86_400.0


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with private_database() as dsn:
        yield dsn


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=4)
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            await conn.execute("TRUNCATE webhook_deliveries, webhook_endpoints")
        yield pool
    finally:
        await pool.close()


async def _endpoint(conn: asyncpg.Connection, status: str = "enabled") -> tuple[uuid.UUID, uuid.UUID]:
    tenant, endpoint = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        """INSERT INTO webhook_endpoints (tenant_id, id, url, event_types, secret, created_at, delivered_seq, status)
           VALUES ($1, $2, 'https://example.com/hook', '{*}', 'whsec_x', clock_timestamp(), 0, $3)""",
        tenant,
        endpoint,
        status,
    )
    return tenant, endpoint


async def _attempts(
    conn: asyncpg.Connection, endpoint: tuple[uuid.UUID, uuid.UUID], count: int, age_days: float
) -> None:
    """``count`` failed attempts made ``age_days`` ago (seq 1..count)."""
    await conn.execute(
        """INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_seq, event_type, attempt, status,
                                           response_code, error, duration_ms, attempted_at)
           SELECT $1, $2, s, 'transfer.created', 1, 'failed', 500, 'HTTP 500', 3,
                  clock_timestamp() - make_interval(secs => $4)
             FROM generate_series(1, $3) s""",
        *endpoint,
        count,
        age_days * DAY,
    )


async def _ages(conn: asyncpg.Connection) -> dict[int, int]:
    """Rows left per age in whole days."""
    rows = await conn.fetch(
        """SELECT floor(extract(epoch FROM clock_timestamp() - attempted_at) / 86400)::int AS days, count(*) AS n
             FROM webhook_deliveries GROUP BY 1"""
    )
    return {r["days"]: r["n"] for r in rows}


async def test_attempts_past_the_retention_are_deleted_one_bounded_batch_per_statement(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        old, recent = await _endpoint(conn), await _endpoint(conn)
        await _attempts(conn, old, 1200, age_days=40)
        await _attempts(conn, recent, 30, age_days=29)  # inside 30 days: kept
        await _attempts(conn, old, 20, age_days=0)  # written after the old ones (higher pk): kept
        assert await housekeeping.prune_deliveries(conn, 30 * DAY) == housekeeping.PRUNE_BATCH
        assert await _ages(conn) == {40: 1200 - housekeeping.PRUNE_BATCH, 29: 30, 0: 20}
    assert await housekeeping.prune_round(pool, 30 * DAY) == 1200 - housekeeping.PRUNE_BATCH
    async with pool.acquire() as conn:
        assert await _ages(conn) == {29: 30, 0: 20}
        assert await housekeeping.prune_deliveries(conn, 30 * DAY) == 0  # nothing old: a no-op
        assert await housekeeping.prune_deliveries(conn, 28 * DAY) == 30  # a shorter retention
        assert await _ages(conn) == {0: 20}


async def test_a_round_stops_after_its_batch_budget(pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(housekeeping, "PRUNE_BATCH", 10)
    monkeypatch.setattr(housekeeping, "PRUNE_MAX_BATCHES", 3)
    async with pool.acquire() as conn:
        await _attempts(conn, await _endpoint(conn), 45, age_days=31)
    assert await housekeeping.prune_round(pool, 30 * DAY) == 30  # three batches of ten, then the next round
    assert await housekeeping.prune_round(pool, 30 * DAY) == 15
    async with pool.acquire() as conn:
        assert await _ages(conn) == {}


async def test_the_worker_prunes_and_reports_failing_endpoints_by_itself(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = metrics.Metrics("ledger")
    monkeypatch.setattr(metrics, "_current", recorded)
    async with pool.acquire() as conn:
        failing = [await _endpoint(conn, "failing") for _ in range(2)]
        await _attempts(conn, failing[0], 50, age_days=8)
        await _attempts(conn, failing[1], 5, age_days=1)
    worker = DeliveryWorker(pool, WebhookConfig(retention_seconds=7 * DAY, poll_interval_seconds=0.05))
    worker.start()
    try:
        async with pool.acquire() as conn:
            for _ in range(100):
                if await _ages(conn) == {1: 5}:
                    break
                await asyncio.sleep(0.05)
            assert await _ages(conn) == {1: 5}
    finally:
        await worker.stop()
    (line,) = recorded.lines(now_ms=0)
    assert line[metrics.WEBHOOK_ENDPOINTS_FAILING] == 2


async def test_no_retention_keeps_everything(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await _attempts(conn, await _endpoint(conn), 5, age_days=3650)
    await housekeeping.housekeeping_round(pool, 0.0)
    async with pool.acquire() as conn:
        assert await _ages(conn) == {3650: 5}


def test_the_retention_setting_reaches_the_worker_in_seconds() -> None:
    from shared.settings import Settings, WebhookSettings

    config = WebhookConfig.of(Settings(webhooks=WebhookSettings(delivery_retention_days=2.5)))
    assert config.retention_seconds == 2.5 * DAY
    assert WebhookConfig.of(Settings()).retention_seconds == 30 * DAY
