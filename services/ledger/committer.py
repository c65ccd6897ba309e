"""Group commit: concurrent write requests share one database transaction.

Callers :meth:`GroupCommitter.submit` a :class:`~services.ledger.operations.WriteRequest` (or
:meth:`~GroupCommitter.submit_many` an ordered list, for a coalesced group from the gateway) and
await its outcomes. Requests queue in arrival order and leave together as groups of up to
``max_items`` operations; at most ``max_inflight`` groups commit at once, each in its own
transaction on its own connection. There is no timer: a request that can start at once does, and
the busier the ledger, the larger the groups.

Groups in flight together touch disjoint sets of accounts. A request whose accounts overlap a
group in flight (or a request queued before it) waits for the next group, so a hot account's
groups run one after another, while requests on other accounts keep the other slots busy. A post
or void names a transfer, not accounts, so its accounts are unknown until the transaction reads
them: it conflicts with everything (it starts only when no group is in flight, and nothing queued
after it overtakes it). This scheduling is for speed only; correctness never depends on it: every
transaction locks its accounts in ``pk`` order (:mod:`.store`), so overlapping transactions, from
this process or another, serialise on the row locks.

A group is applied by :func:`services.ledger.store.apply_requests` in arrival order, with exactly
the rules and one-at-a-time semantics of a lone request; a request that fails a rule fails only
itself. If the group's transaction fails for any reason other than the database being down, its
requests are re-run one by one, so one poisonous request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.ledger import spans, store
from services.ledger.db import DATABASE_DOWN, connection
from services.ledger.operations import ChangeAccount, CreateTransaction, CreateTransfer, Outcome, WriteRequest
from services.ledger.state import Key
from shared.errors import ProblemError
from shared.metrics import GROUP_SIZE, TRANSFERS_COMMITTED, current_metrics

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Waiter:
    request: WriteRequest
    future: asyncio.Future[list[Outcome]]
    span: Any
    """Its ``ledger.write`` span (None: tracing off, or an item of a coalesced group)."""
    accounts: frozenset[Key] | None
    """The accounts it writes; None when unknown before the transaction reads them (post, void)."""


def accounts_of(request: WriteRequest) -> frozenset[Key] | None:
    keys: set[Key] = set()
    for op in request.operations:
        if isinstance(op, CreateTransfer):
            keys.add((op.tenant_id, op.body.debit_account_id))
            keys.add((op.tenant_id, op.body.credit_account_id))
        elif isinstance(op, CreateTransaction):
            keys.update((op.tenant_id, e.account_id) for e in op.body.entries)
        elif isinstance(op, ChangeAccount):
            keys.add((op.tenant_id, op.account_id))
        else:
            return None
    return frozenset(keys)


class GroupCommitter:
    def __init__(self, pool: asyncpg.Pool, *, max_items: int, max_inflight: int, enabled: bool = True) -> None:
        self._pool = pool
        self._max_items = max_items
        self._max_inflight = max(1, max_inflight)
        self._enabled = enabled
        self._queue: deque[_Waiter] = deque()
        self._queued_accounts: Counter[Key] = Counter()
        self._queued_unknown = 0
        self._inflight: dict[asyncio.Task[None], frozenset[Key] | None] = {}
        self._inflight_accounts: Counter[Key] = Counter()
        self._inflight_unknown = 0

    async def submit(self, request: WriteRequest) -> list[Outcome]:
        """Apply ``request`` (in a group when enabled) and return one outcome per operation."""
        with spans.write(request) as span:
            if not self._enabled:
                async with connection(self._pool) as conn:
                    with spans.group([span], len(request.operations)):
                        results = await store.apply_requests(conn, [request])
                self._record(1, results)
                return results[0]
            waiter = self._waiter(request, span)
            if len(self._inflight) < self._max_inflight and not self._conflicts(waiter.accounts, queued=True):
                # Free slot and nothing in its way: it starts now, without scanning the queue
                # (which holds only requests blocked by groups in flight).
                self._start([waiter])
            else:
                self._enqueue(waiter)
            return await waiter.future

    def submit_many(self, requests: Sequence[WriteRequest]) -> list[asyncio.Future[list[Outcome]]]:
        """Queue ``requests`` in this order; one future of outcomes each. They are applied one at a
        time in this order, usually in one transaction (more when they exceed ``max_items``)."""
        if not self._enabled:
            return [asyncio.ensure_future(self.submit(request)) for request in requests]
        waiters = [self._waiter(request, None) for request in requests]
        for waiter in waiters:
            self._enqueue(waiter)
        self._start_groups()
        return [waiter.future for waiter in waiters]

    def _waiter(self, request: WriteRequest, span: Any) -> _Waiter:
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        return _Waiter(request, future, span, accounts_of(request))

    def _enqueue(self, waiter: _Waiter) -> None:
        self._queue.append(waiter)
        if waiter.accounts is None:
            self._queued_unknown += 1
        else:
            self._queued_accounts.update(waiter.accounts)

    def _dequeued(self, waiter: _Waiter) -> None:
        if waiter.accounts is None:
            self._queued_unknown -= 1
        else:
            for key in waiter.accounts:
                left = self._queued_accounts[key] - 1
                if left > 0:
                    self._queued_accounts[key] = left
                else:
                    del self._queued_accounts[key]

    def _conflicts(self, accounts: frozenset[Key] | None, *, queued: bool) -> bool:
        """Whether a request on ``accounts`` must wait for a group in flight (or, with ``queued``,
        for a request already queued)."""
        if accounts is None:
            return bool(self._inflight) or (queued and bool(self._queue))
        if self._inflight_unknown or (queued and self._queued_unknown):
            return True
        if any(self._inflight_accounts[key] > 0 for key in accounts):
            return True
        return queued and any(self._queued_accounts[key] > 0 for key in accounts)

    def _start_groups(self) -> None:
        while self._queue and len(self._inflight) < self._max_inflight:
            group = self._take_group()
            if not group:
                return
            self._start(group)

    def _take_group(self) -> list[_Waiter]:
        """Remove and return the next group: queued requests, in order, that conflict neither with
        a group in flight nor with an earlier request left in the queue."""
        group: list[_Waiter] = []
        kept: deque[_Waiter] = deque()
        skipped: set[Key] = set()
        skipped_unknown = False
        items = 0
        for waiter in self._queue:
            if waiter.future.cancelled():
                self._dequeued(waiter)
                continue
            size = len(waiter.request.operations)
            accounts = waiter.accounts
            blocked = (
                skipped_unknown
                or (group and items + size > self._max_items)
                or self._conflicts(accounts, queued=False)
                or (accounts is None and bool(skipped))
                or (accounts is not None and not skipped.isdisjoint(accounts))
            )
            if blocked:
                kept.append(waiter)
                if accounts is None:
                    skipped_unknown = True
                else:
                    skipped.update(accounts)
                continue
            self._dequeued(waiter)
            group.append(waiter)
            items += size
        self._queue = kept
        return group

    def _start(self, group: list[_Waiter]) -> None:
        known = [w.accounts for w in group]
        accounts: frozenset[Key] | None = None if any(a is None for a in known) else frozenset().union(*known)  # type: ignore[arg-type]
        task = asyncio.create_task(self._commit(group))
        self._inflight[task] = accounts
        if accounts is None:
            self._inflight_unknown += 1
        else:
            self._inflight_accounts.update(accounts)
        task.add_done_callback(self._group_done)

    def _group_done(self, task: asyncio.Task[None]) -> None:
        accounts = self._inflight.pop(task)
        if accounts is None:
            self._inflight_unknown -= 1
        else:
            self._inflight_accounts.subtract(accounts)
            for key in accounts:
                if self._inflight_accounts[key] <= 0:
                    del self._inflight_accounts[key]
        self._start_groups()

    async def _commit(self, group: list[_Waiter]) -> None:
        try:
            operations = sum(len(w.request.operations) for w in group)
            with spans.group([w.span for w in group], operations):
                async with connection(self._pool) as conn:
                    try:
                        results = await store.apply_requests(conn, [w.request for w in group])
                    except DATABASE_DOWN:
                        raise
                    except Exception as exc:
                        if len(group) == 1:
                            raise
                        # Not the exception text: a database error's detail quotes the failing row
                        # (amounts, metadata). Its type and SQLSTATE say what failed.
                        log.error(
                            "group transaction failed; re-running its requests one by one",
                            extra={"error": type(exc).__name__, "sqlstate": getattr(exc, "sqlstate", None)},
                        )
                        await self._commit_one_by_one(conn, group)
                        return
            self._record(len(group), results)
            for waiter, outcomes in zip(group, results, strict=True):
                if not waiter.future.done():
                    waiter.future.set_result(outcomes)
        except BaseException as exc:  # every caller must hear back, whatever happened
            error = exc if isinstance(exc, ProblemError | Exception) else RuntimeError("group commit cancelled")
            for waiter in group:
                if not waiter.future.done():
                    waiter.future.set_exception(error)
            if not isinstance(exc, Exception):
                raise

    def _record(self, requests: int, results: list[list[Outcome]]) -> None:
        committed = sum(o.applied for outcomes in results for o in outcomes)
        metrics = current_metrics()
        if metrics is not None:
            metrics.count(TRANSFERS_COMMITTED, committed)
            metrics.sample(GROUP_SIZE, requests)

    async def _commit_one_by_one(self, conn: asyncpg.Connection, group: list[_Waiter]) -> None:
        for waiter in group:
            try:
                outcomes = (await store.apply_requests(conn, [waiter.request]))[0]
            except DATABASE_DOWN:
                raise
            except Exception as exc:
                if not waiter.future.done():
                    waiter.future.set_exception(exc)
                continue
            if not waiter.future.done():
                waiter.future.set_result(outcomes)

    async def drain(self) -> None:
        """Wait for the groups in flight (graceful shutdown: acknowledged work is committed)."""
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
