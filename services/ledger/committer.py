"""Group commit: concurrent write requests share one database transaction.

Callers :meth:`GroupCommitter.submit` a :class:`~services.ledger.rules.WriteRequest` and await its
outcomes. While fewer than ``max_inflight`` groups are committing, a request starts a group at
once, so a lone request waits for nothing. Requests that arrive while groups are committing queue
up and leave together as the next group (up to ``max_items`` operations) as soon as a slot frees:
the busier the ledger, the larger the groups, with no timer to tune.

A group is applied by :func:`services.ledger.store.apply_requests` in arrival order, with exactly
the rules and one-at-a-time semantics of a lone request; a request that fails a rule fails only
itself. If the group's transaction fails for any reason other than the database being down, its
requests are re-run one by one, so one poisonous request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import asyncpg

from services.ledger import spans, store
from services.ledger.db import DATABASE_DOWN, connection
from services.ledger.rules import Outcome, WriteRequest
from shared.errors import ProblemError
from shared.metrics import GROUP_SIZE, TRANSFERS_COMMITTED, current_metrics

log = logging.getLogger(__name__)

_Waiter = tuple[WriteRequest, "asyncio.Future[list[Outcome]]", Any]
"""A queued request, the future its caller awaits, and its ``ledger.write`` span (None: tracing off)."""


class GroupCommitter:
    def __init__(self, pool: asyncpg.Pool, *, max_items: int, max_inflight: int, enabled: bool = True) -> None:
        self._pool = pool
        self._max_items = max_items
        self._max_inflight = max_inflight if enabled else 0
        self._enabled = enabled
        self._queue: deque[_Waiter] = deque()
        self._inflight: set[asyncio.Task[None]] = set()

    async def submit(self, request: WriteRequest) -> list[Outcome]:
        """Apply ``request`` (in a group when enabled) and return one outcome per operation."""
        with spans.write(request) as span:
            if not self._enabled:
                async with connection(self._pool) as conn:
                    with spans.group([span], len(request.operations)):
                        results = await store.apply_requests(conn, [request])
                self._record(1, results)
                return results[0]
            future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
            self._queue.append((request, future, span))
            self._start_groups()
            return await future

    def _start_groups(self) -> None:
        while self._queue and len(self._inflight) < self._max_inflight:
            group: list[_Waiter] = []
            items = 0
            while self._queue and (not group or items + len(self._queue[0][0].operations) <= self._max_items):
                waiter = self._queue.popleft()
                if waiter[1].cancelled():
                    continue
                group.append(waiter)
                items += len(waiter[0].operations)
            if not group:
                continue
            task = asyncio.create_task(self._commit(group))
            self._inflight.add(task)
            task.add_done_callback(self._group_done)

    def _group_done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._start_groups()

    async def _commit(self, group: list[_Waiter]) -> None:
        try:
            operations = sum(len(request.operations) for request, _, _ in group)
            with spans.group([span for _, _, span in group], operations):
                async with connection(self._pool) as conn:
                    try:
                        results = await store.apply_requests(conn, [request for request, _, _ in group])
                    except DATABASE_DOWN:
                        raise
                    except Exception:
                        if len(group) == 1:
                            raise
                        log.exception("group transaction failed; re-running its requests one by one")
                        await self._commit_one_by_one(conn, group)
                        return
            self._record(len(group), results)
            for (_, future, _), outcomes in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(outcomes)
        except BaseException as exc:  # every caller must hear back, whatever happened
            error = exc if isinstance(exc, ProblemError | Exception) else RuntimeError("group commit cancelled")
            for _, future, _ in group:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(exc, Exception):
                raise

    def _record(self, requests: int, results: list[list[Outcome]]) -> None:
        committed = sum(o.applied for outcomes in results for o in outcomes)
        metrics = current_metrics()
        if metrics is not None:
            metrics.count(TRANSFERS_COMMITTED, committed)
            metrics.sample(GROUP_SIZE, requests)

    async def _commit_one_by_one(self, conn: asyncpg.Connection, group: list[_Waiter]) -> None:
        for request, future, _ in group:
            try:
                outcomes = (await store.apply_requests(conn, [request]))[0]
            except DATABASE_DOWN:
                raise
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                continue
            if not future.done():
                future.set_result(outcomes)

    async def drain(self) -> None:
        """Wait for the groups in flight (graceful shutdown: acknowledged work is committed)."""
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
