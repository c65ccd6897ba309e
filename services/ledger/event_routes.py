"""``GET /v1/events``: the tenant's event journal after a seq, with an optional long-poll.

``after`` (default 0), ``limit`` (1-1000, default 100) and ``wait`` (0-30 seconds, default 0) are
integers; anything else is 400 ``invalid_request`` naming the parameter. The answer is
``{"data": [event, ...]}`` in seq order; with ``wait`` it comes as soon as at least one event is
there, or with an empty ``data`` once the wait has passed. Events are only ever read committed, and
per tenant commit order is seq order (migration 0013), so a client that continues from the last seq
it saw never misses one.
"""

from __future__ import annotations

import re
import time
from typing import Any

import msgspec
from litestar import Request, Response, get

from services.ledger.db import connection
from services.ledger.journal import Event, read_events
from services.ledger.routes import tenant_of
from services.ledger.runtime import LedgerRuntime
from shared.errors import ErrorCode, ProblemError
from shared.web import json_response

MAX_WAIT_SECONDS = 30
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_INTEGER = re.compile(r"[0-9]{1,19}")


class EventPage(msgspec.Struct):
    data: list[Event]


def _integer(request: Request[Any, Any, Any], name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw) or not low <= int(raw) <= high:
        raise ProblemError(ErrorCode.INVALID_REQUEST, f"{name} must be an integer from {low} to {high}", field=name)
    return int(raw)


@get("/v1/events")
async def list_events(request: Request[Any, Any, Any]) -> Response[bytes]:
    tenant = tenant_of(request)
    after = _integer(request, "after", 0, 0, 2**63 - 1)
    limit = _integer(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    wait = _integer(request, "wait", 0, 0, MAX_WAIT_SECONDS)
    runtime: LedgerRuntime = request.app.state.ledger
    deadline = time.monotonic() + wait
    while True:
        async with connection(runtime.pool) as conn:
            events = await read_events(conn, tenant, after, limit)
        remaining = deadline - time.monotonic()
        if events or remaining <= 0:
            return json_response(EventPage(data=events))
        await runtime.events.wait(tenant, remaining)


ROUTES = [list_events]
