"""Coalescing: concurrent single transfer writes leave the gateway as one ledger call.

Every ``POST /v1/transfers`` (and ``.../post``, ``.../void``) of this process is queued here as a
:class:`~shared.transfer_group.GroupItem`. While fewer than ``max_inflight`` group calls are in
flight, the queue leaves at once as one ``POST /internal/transfer-groups`` (at most ``max_items``
items), so a lone request is sent immediately, with no timer; requests that arrive while the calls
are in flight queue up and leave together as soon as one returns. The ledger applies the items
one at a time in queue order and answers each exactly as a lone call (:mod:`shared.transfer_group`),
so the ledger pays one HTTP exchange per group instead of one per transfer.

Failure semantics are a lone call's, item by item: if the group call cannot be made or gets no
answer, every item of it fails as a lone call would (503 ``unavailable``; the write may or may not
have been applied, and the client retries with the same transfer id, which the ledger treats as a
replay). A process that dies with items queued has sent nothing for them and answered nothing: no
client holds a 2xx for a write that did not commit.

Items of several tenants may share a call: each carries its own tenant, and no item's outcome
depends on another's (there is no atomicity across items).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from shared import transfer_group
from shared.errors import PROBLEM_MEDIA_TYPE
from shared.http import ServiceClient, UpstreamResponse, UpstreamUnavailable
from shared.transfer_group import GroupItem

log = logging.getLogger(__name__)

_Entry = tuple[GroupItem, "asyncio.Future[UpstreamResponse]"]


class Coalescer:
    def __init__(self, client: ServiceClient, *, max_inflight: int, max_items: int) -> None:
        self._client = client
        self._max_inflight = max(1, max_inflight)
        self._max_items = max(1, max_items)
        self._queue: deque[_Entry] = deque()
        self._inflight: set[asyncio.Task[None]] = set()

    async def submit(self, item: GroupItem) -> UpstreamResponse:
        """The ledger's answer to ``item``, exactly as to a lone call (raises UpstreamUnavailable)."""
        future: asyncio.Future[UpstreamResponse] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._launch()
        return await future

    def _launch(self) -> None:
        while self._queue and len(self._inflight) < self._max_inflight:
            group: list[_Entry] = []
            while self._queue and len(group) < self._max_items:
                entry = self._queue.popleft()
                if not entry[1].cancelled():  # its client went away before it was sent
                    group.append(entry)
            if not group:
                return
            task = asyncio.create_task(self._send(group))
            self._inflight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._launch()

    async def _send(self, group: list[_Entry]) -> None:
        try:
            body = transfer_group.ENCODER.encode([item for item, _ in group])
            response = await self._client.request(
                "POST", transfer_group.GROUP_PATH, body=body, headers={"Content-Type": transfer_group.MEDIA_TYPE}
            )
            answers = _answers(response, len(group))
        except UpstreamUnavailable as exc:
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException as exc:  # every client must hear back, whatever happened
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            raise
        for (_, future), answer in zip(group, answers, strict=True):
            if not future.done():
                future.set_result(answer)

    async def drain(self) -> None:
        """Wait for the group calls in flight (graceful shutdown)."""
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)


def _answers(response: UpstreamResponse, count: int) -> list[UpstreamResponse]:
    """One lone-call response per item from the group call's response."""
    if response.status != 200:
        # The call as a whole was refused (a bad internal credential, the ledger's own outage):
        # every item gets that answer, as each lone call would have.
        return [response] * count
    try:
        results = transfer_group.RESULTS.decode(response.body)
    except (ValueError, TypeError):
        results = []
    if len(results) != count:
        log.error("malformed transfer group answer", extra={"items": count, "results": len(results)})
        raise UpstreamUnavailable("ledger", "malformed group answer", maybe_applied=True)
    return [
        UpstreamResponse(
            status=r.status,
            body=r.body,
            content_type=r.content_type or PROBLEM_MEDIA_TYPE,
            retry_after=r.retry_after or None,
        )
        for r in results
    ]
