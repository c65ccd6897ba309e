"""The SQL of webhooks (migration 0014): endpoints, the delivery workers' leases, the deliveries log.

Leases: a worker claims due endpoints with ONE statement (``FOR UPDATE SKIP LOCKED`` picks rows no
other claimer is taking, the outer ``UPDATE`` sets ``lease_owner``/``lease_until``), so at any time
an endpoint is worked by at most one process; every later change a worker makes is conditional on
``lease_owner`` still being itself, so a worker that lost its lease (it stalled past
``lease_until`` and another claimed the endpoint) changes nothing and stops. ``delivered_seq`` only
moves forward (``GREATEST``), and a 2xx is recorded in the same transaction as the cursor move.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from services.ledger.journal import Event, event_from_row
from shared.timefmt import rfc3339

ENDPOINT_COLUMNS = "tenant_id, id, pk, url, event_types, secret, created_at, status, delivered_seq, failed_attempts"


# -- the API -----------------------------------------------------------------------------------------


async def create_endpoint(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, url: str, event_types: list[str], secret: str
) -> asyncpg.Record:
    """A new endpoint, enabled, receiving the events committed after it (the tenant's head now)."""
    row = await conn.fetchrow(
        f"""INSERT INTO webhook_endpoints (tenant_id, id, url, event_types, secret, created_at, delivered_seq)
            VALUES ($1, $2, $3, $4, $5, clock_timestamp(),
                    coalesce((SELECT seq FROM event_heads WHERE tenant_id = $1), 0))
            RETURNING {ENDPOINT_COLUMNS}""",
        tenant_id,
        uuid.uuid4(),
        url,
        event_types,
        secret,
    )
    assert row is not None
    return row


async def list_endpoints(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, after_pk: int, limit: int
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            f"""SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
                 WHERE tenant_id = $1 AND pk > $2 ORDER BY pk LIMIT $3""",
            tenant_id,
            after_pk,
            limit,
        )
    )


async def get_endpoint(conn: asyncpg.Connection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2", tenant_id, endpoint_id
    )


async def delete_endpoint(conn: asyncpg.Connection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> bool:
    """Deletes the endpoint and its deliveries log; a worker delivering to it stops at its next step."""
    deleted = await conn.fetchval(
        "DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2 RETURNING true", tenant_id, endpoint_id
    )
    return bool(deleted)


async def enable_endpoint(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> asyncpg.Record | None:
    """Enabled again, due at once, with a fresh retry schedule; its cursor is kept, so deliveries
    resume with the first event it has not acknowledged."""
    return await conn.fetchrow(
        f"""UPDATE webhook_endpoints
               SET status = 'enabled', failed_attempts = 0, failing_since = NULL, next_attempt_at = '-infinity'
             WHERE tenant_id = $1 AND id = $2
         RETURNING {ENDPOINT_COLUMNS}""",
        tenant_id,
        endpoint_id,
    )


async def list_deliveries(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, position: int, limit: int, descending: bool
) -> list[asyncpg.Record]:
    """Attempts after ``position`` in the order asked (newest first: ``position`` is the upper bound)."""
    where, order = ("pk < $3", "pk DESC") if descending else ("pk > $3", "pk")
    return list(
        await conn.fetch(
            f"""SELECT pk, event_seq, event_type, attempt, status, response_code, error, duration_ms, attempted_at
                  FROM webhook_deliveries
                 WHERE tenant_id = $1 AND endpoint_id = $2 AND {where}
                 ORDER BY {order} LIMIT $4""",
            tenant_id,
            endpoint_id,
            position,
            limit,
        )
    )


# -- the delivery workers ------------------------------------------------------------------------------


CLAIM = f"""
UPDATE webhook_endpoints w
   SET lease_owner = $1, lease_until = clock_timestamp() + make_interval(secs => $2)
  FROM (SELECT c.tenant_id, c.id FROM webhook_endpoints c
         WHERE c.status = 'enabled' AND c.next_attempt_at <= clock_timestamp()
           AND c.lease_until < clock_timestamp()
           AND EXISTS (SELECT 1 FROM event_heads h WHERE h.tenant_id = c.tenant_id AND h.seq > c.delivered_seq)
         ORDER BY c.next_attempt_at
         LIMIT $3
         FOR UPDATE OF c SKIP LOCKED) due
 WHERE w.tenant_id = due.tenant_id AND w.id = due.id
RETURNING {", ".join(f"w.{c.strip()}" for c in ENDPOINT_COLUMNS.split(","))}
"""


async def claim(conn: asyncpg.Connection, owner: str, lease_seconds: float, limit: int) -> list[asyncpg.Record]:
    """Leases up to ``limit`` enabled endpoints that are due and have events past their cursor."""
    return list(await conn.fetch(CLAIM, owner, lease_seconds, limit))


async def renew(
    conn: asyncpg.Connection, owner: str, lease_seconds: float, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> bool:
    """Extends this worker's lease; False when it no longer holds it (or the endpoint is gone)."""
    return bool(
        await conn.fetchval(
            """UPDATE webhook_endpoints SET lease_until = clock_timestamp() + make_interval(secs => $2)
                WHERE tenant_id = $3 AND id = $4 AND lease_owner = $1 AND status = 'enabled' RETURNING true""",
            owner,
            lease_seconds,
            tenant_id,
            endpoint_id,
        )
    )


async def head_seq(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> int:
    return int(await conn.fetchval("SELECT coalesce((SELECT seq FROM event_heads WHERE tenant_id = $1), 0)", tenant_id))


async def matching_events(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, after: int, upto: int, event_types: list[str], limit: int
) -> list[Event]:
    """The tenant's events in (after, upto] an endpoint subscribed to ``event_types`` receives, in seq order."""
    rows = await conn.fetch(
        """SELECT seq, type, occurred_at, data, prev_hash, hash FROM events
            WHERE tenant_id = $1 AND seq > $2 AND seq <= $3
              AND ('*' = ANY($4::text[]) OR type = ANY($4::text[])
                   OR split_part(type, '.', 1) || '.*' = ANY($4::text[]))
            ORDER BY seq LIMIT $5""",
        tenant_id,
        after,
        upto,
        event_types,
        limit,
    )
    return [event_from_row(r) for r in rows]


async def advance(
    conn: asyncpg.Connection, owner: str, lease_seconds: float, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, seq: int
) -> bool:
    """Moves the cursor past events the endpoint does not receive; False when the lease is lost."""
    return bool(
        await conn.fetchval(
            """UPDATE webhook_endpoints
                  SET delivered_seq = GREATEST(delivered_seq, $5),
                      lease_until = clock_timestamp() + make_interval(secs => $2)
                WHERE tenant_id = $3 AND id = $4 AND lease_owner = $1 RETURNING true""",
            owner,
            lease_seconds,
            tenant_id,
            endpoint_id,
            seq,
        )
    )


async def release(
    conn: asyncpg.Connection, owner: str, tenant_id: uuid.UUID | None = None, endpoint_id: uuid.UUID | None = None
) -> None:
    """Gives up this worker's lease on one endpoint (or, without one, on all), so another process
    may take it at once instead of when the lease would expire."""
    await conn.execute(
        """UPDATE webhook_endpoints SET lease_owner = NULL, lease_until = '-infinity'
            WHERE lease_owner = $1 AND ($2::uuid IS NULL OR (tenant_id = $2 AND id = $3))""",
        owner,
        tenant_id,
        endpoint_id,
    )


class Attempt(msgspec.Struct):
    """What one delivery attempt did (a row of the deliveries log)."""

    tenant_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_seq: int
    event_type: str
    attempt: int
    succeeded: bool
    response_code: int | None
    error: str | None
    duration_ms: int


_LOG = """INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_seq, event_type, attempt, status,
                                          response_code, error, duration_ms, attempted_at)
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, clock_timestamp() - make_interval(secs => $10))"""


async def _log(conn: asyncpg.Connection, attempt: Attempt) -> None:
    await conn.execute(
        _LOG,
        attempt.tenant_id,
        attempt.endpoint_id,
        attempt.event_seq,
        attempt.event_type,
        attempt.attempt,
        "succeeded" if attempt.succeeded else "failed",
        attempt.response_code,
        attempt.error,
        attempt.duration_ms,
        attempt.duration_ms / 1000,  # attempted_at: when the request started
    )


async def record_success(conn: asyncpg.Connection, owner: str, lease_seconds: float, attempt: Attempt) -> bool:
    """The 2xx and the cursor move, in one transaction; False (nothing written) when the lease is lost."""
    async with conn.transaction():
        held = await conn.fetchval(
            """UPDATE webhook_endpoints
                  SET delivered_seq = GREATEST(delivered_seq, $5), failed_attempts = 0, failing_since = NULL,
                      lease_until = clock_timestamp() + make_interval(secs => $2)
                WHERE tenant_id = $3 AND id = $4 AND lease_owner = $1 RETURNING true""",
            owner,
            lease_seconds,
            attempt.tenant_id,
            attempt.endpoint_id,
            attempt.event_seq,
        )
        if held:
            await _log(conn, attempt)
    return bool(held)


async def record_failure(
    conn: asyncpg.Connection, owner: str, attempt: Attempt, retry_in: float, give_up_seconds: float
) -> str | None:
    """The failed attempt, the next one scheduled ``retry_in`` seconds from now and the lease given
    up; the endpoint becomes ``failing`` when its first failure is ``give_up_seconds`` old. Returns
    the endpoint's status, None when the lease is lost (nothing written)."""
    async with conn.transaction():
        status: str | None = await conn.fetchval(
            """UPDATE webhook_endpoints
                  SET failed_attempts = failed_attempts + 1,
                      failing_since = coalesce(failing_since, clock_timestamp()),
                      status = CASE WHEN clock_timestamp() - coalesce(failing_since, clock_timestamp())
                                         >= make_interval(secs => $5) THEN 'failing' ELSE status END,
                      next_attempt_at = clock_timestamp() + make_interval(secs => $4),
                      lease_owner = NULL, lease_until = '-infinity'
                WHERE tenant_id = $2 AND id = $3 AND lease_owner = $1 RETURNING status""",
            owner,
            attempt.tenant_id,
            attempt.endpoint_id,
            retry_in,
            give_up_seconds,
        )
        if status is not None:
            await _log(conn, attempt)
    return status


def endpoint_fields(row: Any) -> dict[str, Any]:
    """The public fields of an endpoint row (never its secret)."""
    return {
        "id": row["id"],
        "url": row["url"],
        "event_types": list(row["event_types"]),
        "status": row["status"],
        "created_at": rfc3339(row["created_at"]),
    }
