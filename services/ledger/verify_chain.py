"""The verifier's journal checks: every tenant's hash chain, and the state the chain implies.

Run inside the verifier's REPEATABLE READ snapshot (:func:`services.ledger.verify.verify`):

- ``chain``: per tenant, events run 1, 2, 3... without a gap; each ``prev_hash`` is the previous
  event's ``hash`` (64 zeros before the first); each ``hash`` is recomputed by the recipe of
  docs/events.md, independently of the database (the canonical text is rebuilt from the parsed
  event with the standard library); the tenant's head (``event_heads``) is its last event. The
  first broken link of a tenant is named, and the rest of that tenant's chain is not judged.
- ``journal``: every transfer, transaction and account as stored is what its newest event says it
  became (except what changes without an event: a transfer's ``reversed_amount``, a transaction's
  ``reversed_by``, an account's counters and version): a row changed behind the ledger's back is
  named.

Incremental by default: a tenant whose chain verified up to seq n (``event_checkpoints``) is checked
from n on (after confirming event n still has the hash recorded then), so a run costs what was
committed since the last one; ``full=True`` replays every chain from the start. Checkpoints are only
advanced by :func:`advance_checkpoints`, after a run that found nothing wrong.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from shared.timefmt import rfc3339

GENESIS = "0" * 64
BATCH = 5000

Report = Callable[[str, str], None]
"""``add(kind, detail)`` of the verifier's report."""


def canonical(event: dict[str, Any]) -> bytes:
    """docs/events.md: the event without ``hash``, keys sorted, no whitespace, UTF-8."""
    body = {k: v for k, v in event.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


async def check_chains(conn: asyncpg.Connection, add: Report, full: bool) -> dict[uuid.UUID, tuple[int, str]]:
    """Check every tenant's chain; returns the new checkpoint of each tenant found intact."""
    heads = await conn.fetch(
        """SELECT h.tenant_id, h.seq, h.hash, c.seq AS checked_seq, c.hash AS checked_hash
             FROM event_heads h LEFT JOIN event_checkpoints c ON c.tenant_id = h.tenant_id
           UNION ALL
           SELECT DISTINCT e.tenant_id, NULL::bigint, NULL::text, NULL::bigint, NULL::text FROM events e
            WHERE NOT EXISTS (SELECT 1 FROM event_heads h WHERE h.tenant_id = e.tenant_id)"""
    )
    intact: dict[uuid.UUID, tuple[int, str]] = {}
    for head in heads:
        tenant = head["tenant_id"]
        if head["seq"] is None:
            add("chain", f"tenant {tenant} has events but no chain head")
            continue
        start, prev = 0, GENESIS
        if not full and head["checked_seq"] is not None:
            start, prev = head["checked_seq"], head["checked_hash"]
            if start > 0:
                stored = await conn.fetchval("SELECT hash FROM events WHERE tenant_id = $1 AND seq = $2", tenant, start)
                if stored != prev:
                    add("chain", f"tenant {tenant}: event {start} changed since it was verified (run with --full)")
                    continue
        last = await _walk(conn, tenant, start, prev, add)
        if last is None:
            continue
        if last != (head["seq"], head["hash"]):
            add("chain", f"tenant {tenant}: the head says seq {head['seq']} but the chain ends at {last[0]}")
            continue
        intact[tenant] = last
    return intact


async def _walk(
    conn: asyncpg.Connection, tenant: uuid.UUID, seq: int, prev: str, add: Report
) -> tuple[int, str] | None:
    """Recompute the tenant's events after ``seq``; the last (seq, hash), or None at a broken link."""
    while True:
        rows = await conn.fetch(
            """SELECT seq, type, occurred_at, data, prev_hash, hash FROM events
                WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3""",
            tenant,
            seq,
            BATCH,
        )
        for row in rows:
            where = f"tenant {tenant}: event {row['seq']}"
            if row["seq"] != seq + 1:
                add("chain", f"{where} follows event {seq} (a gap)")
                return None
            if row["prev_hash"] != prev:
                add("chain", f"{where}: prev_hash is not the hash of event {seq}")
                return None
            try:
                data = json.loads(row["data"])
            except ValueError:
                add("chain", f"{where}: data is not JSON")
                return None
            event = {
                "seq": row["seq"],
                "type": row["type"],
                "occurred_at": rfc3339(row["occurred_at"]),
                "data": data,
                "prev_hash": row["prev_hash"],
            }
            if hashlib.sha256(prev.encode() + canonical(event)).hexdigest() != row["hash"]:
                add("chain", f"{where}: its hash does not match its content (the first broken link)")
                return None
            seq, prev = row["seq"], row["hash"]
        if len(rows) < BATCH:
            return seq, prev


# The newest event of each object, against the row as stored (only what events record).
JOURNAL = """
WITH newest AS (
    SELECT DISTINCT ON (e.tenant_id, split_part(e.type, '.', 1), (e.data::jsonb)->>'id')
           e.tenant_id, split_part(e.type, '.', 1) AS kind, (e.data::jsonb) AS data, e.seq
      FROM events e
     WHERE e.seq > coalesce((SELECT c.seq FROM event_checkpoints c WHERE c.tenant_id = e.tenant_id AND NOT $1), 0)
     ORDER BY e.tenant_id, split_part(e.type, '.', 1), (e.data::jsonb)->>'id', e.seq DESC
)
SELECT n.tenant_id, n.kind, n.data->>'id' AS id, n.seq FROM newest n
 WHERE (n.kind = 'transfer' AND NOT EXISTS (
            SELECT 1 FROM transfers t WHERE t.tenant_id = n.tenant_id AND t.id = (n.data->>'id')::uuid
               AND t.status = n.data->>'status' AND t.amount = (n.data->>'amount')::bigint
               AND t.posted_amount = (n.data->>'posted_amount')::bigint
               AND t.debit_account_id = (n.data->>'debit_account_id')::uuid
               AND t.credit_account_id = (n.data->>'credit_account_id')::uuid
               AND t.currency = n.data->>'currency' AND t.metadata = n.data->'metadata'))
    OR (n.kind = 'transaction' AND NOT EXISTS (
            SELECT 1 FROM transactions x WHERE x.tenant_id = n.tenant_id AND x.id = (n.data->>'id')::uuid
               AND x.status = n.data->>'status' AND x.metadata = n.data->'metadata'
               AND x.entries = n.data->'entries'))
    OR (n.kind = 'account' AND NOT EXISTS (
            SELECT 1 FROM accounts a WHERE a.tenant_id = n.tenant_id AND a.id = (n.data->>'id')::uuid
               AND a.status = n.data->>'status' AND a.overdraft_limit = (n.data->>'overdraft_limit')::bigint
               AND a.metadata = n.data->'metadata' AND a.currency = n.data->>'currency'))
 LIMIT 20
"""


async def check_journal(conn: asyncpg.Connection, add: Report, full: bool) -> None:
    for row in await conn.fetch(JOURNAL, full):
        add(
            "journal",
            f"{row['kind']} {row['id']} (tenant {row['tenant_id']}) is not what its newest event "
            f"(seq {row['seq']}) says",
        )


async def advance_checkpoints(conn: asyncpg.Connection, intact: dict[uuid.UUID, tuple[int, str]]) -> None:
    """Record where each intact chain was verified up to (after a run with no discrepancy)."""
    if not intact:
        return
    tenants = list(intact)
    await conn.execute(
        """INSERT INTO event_checkpoints (tenant_id, seq, hash, verified_at)
           SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[]), clock_timestamp()
           ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
                                                verified_at = excluded.verified_at""",
        tenants,
        [intact[t][0] for t in tenants],
        [intact[t][1] for t in tenants],
    )
