"""What a ledger process holds while it runs: the pool, the group committer, the expiry sweeper."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import asyncpg

from services.ledger import store
from services.ledger.committer import GroupCommitter
from services.ledger.db import DATABASE_DOWN, create_pool
from shared.errors import ProblemError
from shared.settings import Settings

log = logging.getLogger(__name__)

NEXT_EXPIRY = (
    "SELECT min(expires_at) - clock_timestamp() FROM transfers WHERE status = 'pending' AND expires_at IS NOT NULL"
)


@dataclass
class LedgerRuntime:
    pool: asyncpg.Pool
    committer: GroupCommitter
    internal_token: bytes
    sweep_interval: float
    _sweeper: asyncio.Task[None] | None = field(default=None, init=False)

    @classmethod
    async def start(cls, settings: Settings) -> LedgerRuntime:
        pool = await create_pool(settings.database_url, settings.database_pool_size)
        committer = GroupCommitter(
            pool,
            max_items=settings.group_commit_max_items,
            max_inflight=settings.group_commit_max_inflight,
            enabled=settings.group_commit_enabled,
        )
        runtime = cls(pool, committer, settings.internal_token.encode(), settings.expiry_sweep_interval_seconds)
        runtime._sweeper = asyncio.create_task(runtime._sweep_forever(), name="expiry-sweeper")
        return runtime

    async def stop(self) -> None:
        """Graceful: stop sweeping, let committing groups finish, then close the connections."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.committer.drain()
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
                async with self.pool.acquire(timeout=5) as conn:
                    expired = await store.expire_due(conn)
                    if expired:
                        continue
                    until_next = await conn.fetchval(NEXT_EXPIRY)
                if until_next is not None:
                    delay = min(delay, max(until_next.total_seconds(), 0.005))
            except asyncio.CancelledError:
                raise
            except DATABASE_DOWN:
                delay = 1.0
            except Exception:
                log.exception("expiry sweep failed")
                delay = 1.0
            await asyncio.sleep(delay)
