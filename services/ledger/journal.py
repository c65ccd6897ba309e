"""The event journal (docs/api.md section 12): what the write path appends, and how it is read.

Every committed change is one event, appended by the same database transaction as the change,
numbered per tenant 1, 2, 3... without gaps, in commit order, and chained: ``hash = sha256(prev_hash
|| canonical(event without hash))`` (hex; the first ``prev_hash`` is 64 zeros). docs/events.md states
the recipe a client uses to recompute it.

``data`` is the public object right after the change (transfer, transaction or account), encoded
here ONCE as canonical JSON (keys sorted by code point, no whitespace, UTF-8), stored verbatim and
served byte for byte, so what a client reads is what was hashed. The write path chains a group's
events here (:func:`chains_document`) and the database only checks that the chain continues from
its head under the head lock (``ledger_append_chained``, migration 0015); an account creation lets
the database chain its one event (``ledger_append_events``, migration 0013).

Reading: :func:`read_events` returns the tenant's events after a seq; :class:`EventWaiters` lets
``GET /v1/events?wait=`` sleep until the tenant's next commit (LISTEN on ``ledger_events``, with a
short re-check interval so a missed notification only delays an answer, never loses an event).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections import defaultdict
from typing import Any

import asyncpg
import msgspec

from services.ledger.present import account_from_row, account_of, transaction_of, transfer_of
from services.ledger.state import AccountState, EventRecord, LedgerState, TransactionState, TransferState
from shared.credentials import database_password
from shared.timefmt import rfc3339

log = logging.getLogger(__name__)

CANONICAL = msgspec.json.Encoder(order="sorted")
"""Canonical JSON of an event's ``data``: keys sorted, no whitespace, UTF-8 (docs/events.md)."""

RECHECK_SECONDS = 0.25
"""A long-poll re-reads at least this often, whether or not a notification arrived."""


def event_data(subject: AccountState | TransferState | TransactionState) -> str:
    """The canonical JSON text of the public object an event carries."""
    if isinstance(subject, TransferState):
        return CANONICAL.encode(transfer_of(subject)).decode()
    if isinstance(subject, TransactionState):
        return CANONICAL.encode(transaction_of(subject)).decode()
    return CANONICAL.encode(account_of(subject)).decode()


GENESIS = "0" * 64
"""The ``prev_hash`` of a tenant's first event."""


def chains_document(state: LedgerState) -> list[dict[str, Any]]:
    """The events of one write, chained: for ``ledger_append_chained`` in the small groups' document
    (migration 0015), and for ``ledger_append_chain`` over arrays (0016, :func:`.write.append_chain`).

    Per tenant, in applied order, each event gets ``seq = head + 1, 2, ...`` and ``hash =
    sha256(prev_hash || canonical)`` from the head lock-and-read saw (``state.heads``). The canonical
    text is built by concatenation, keys already in code point order (data, occurred_at, prev_hash,
    seq, type) and ``data`` canonical itself: the same bytes 0013's SQL builds and docs/events.md
    specifies. If the head moved before the append locked it, the database re-chains them.
    """
    occurred_at = rfc3339(state.now)
    by_tenant: dict[uuid.UUID, list[EventRecord]] = {}
    for event in state.events:
        by_tenant.setdefault(event.tenant_id, []).append(event)
    document: list[dict[str, Any]] = []
    for tenant, events in by_tenant.items():
        start_seq, start_hash = state.heads.get(tenant, (0, GENESIS))
        seq, prev = start_seq, start_hash
        rows = []
        for event in events:
            seq += 1
            canonical = (
                f'{{"data":{event.data},"occurred_at":"{occurred_at}","prev_hash":"{prev}",'
                f'"seq":{seq},"type":"{event.type}"}}'
            )
            prev = hashlib.sha256((prev + canonical).encode()).hexdigest()
            rows.append((event.type, occurred_at, event.data, prev))
        document.append({"tenant_id": tenant, "seq": start_seq, "hash": start_hash, "events": rows})
    return document


def account_created(row: Any) -> list[object]:
    """The ``account.created`` event of a freshly inserted account row, as a one-event document."""
    event = {
        "tenant_id": row["tenant_id"],
        "type": "account.created",
        "occurred_at": rfc3339(row["created_at"]),
        "data": CANONICAL.encode(account_from_row(row)).decode(),
    }
    return [event]


class Event(msgspec.Struct):
    """The public event object; ``data`` is served verbatim (the hashed text)."""

    seq: int
    type: str
    occurred_at: str
    data: msgspec.Raw
    prev_hash: str
    hash: str


READ_EVENTS = """
SELECT seq, type, occurred_at, data, prev_hash, hash FROM events
 WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
"""


def event_from_row(row: Any) -> Event:
    """The public event of an ``events`` row; ``data`` verbatim, as hashed."""
    return Event(
        seq=row["seq"],
        type=row["type"],
        occurred_at=rfc3339(row["occurred_at"]),
        data=msgspec.Raw(row["data"].encode()),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


async def read_events(conn: asyncpg.Connection, tenant_id: uuid.UUID, after: int, limit: int) -> list[Event]:
    return [event_from_row(r) for r in await conn.fetch(READ_EVENTS, tenant_id, after, limit)]


class EventWaiters:
    """Wakes long-polls of a tenant when a commit appended events for it (one LISTEN per process)."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)

    async def start(self) -> None:
        try:
            self._conn = await asyncpg.connect(self._dsn, password=database_password(self._dsn))
            await self._conn.add_listener("ledger_events", self._notified)
        except (OSError, asyncpg.PostgresError):
            # Long-polls still work by re-reading every RECHECK_SECONDS.
            log.warning("event notifications unavailable; long-polls re-check periodically", exc_info=True)
            self._conn = None

    async def stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        tenant = payload.split(":", 1)[0]
        for event in self._waiters.get(tenant, ()):
            event.set()

    async def wait(self, tenant_id: uuid.UUID, seconds: float) -> None:
        """Return after a notification for the tenant, or after ``seconds`` (at most RECHECK_SECONDS)."""
        key = str(tenant_id)
        event = asyncio.Event()
        self._waiters[key].add(event)
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation (the client
            # went away, the server stops) that arrives as the notification does.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(seconds, RECHECK_SECONDS)):
                    await event.wait()
        finally:
            self._waiters[key].discard(event)
            if not self._waiters[key]:
                del self._waiters[key]
