"""An account's entries, its statement over a period and its balances at an instant (docs/api.md
section 11), read from the running balances of ``account_entries`` (migration 0011).

Invariants the SQL relies on (docs/queries.md explains them):

- ``account_entries.at`` never decreases with ``seq`` on one account: every change is applied
  under the account's lock with the clock read after the lock was granted. So "the last entry
  before an instant" is a binary search over the primary key
  (:data:`services.ledger.queries.SEQ_BEFORE`): ~log2(n) index probes, whatever the account's
  history, and no index on ``at`` for the write path to maintain.
- The write path releases every reservation due on an account (``expires_at <= now``) before any
  other change to it, in the same transaction. So an entry's running balances never include a
  reservation past its ``expires_at``; at an arbitrary instant T the recorded state can only still
  show reservations that expired in the quiet time since the last change before T. Those are
  released by the first write to the account after T, or by none yet: :func:`_due_at` finds them
  (at most two more probes) and the state at T does not count them as pending.
- Everything one request reads is one snapshot (a read-only REPEATABLE READ transaction), so
  ``opening`` + the period's totals = ``closing`` always holds: the totals are differences of the
  same two running-balance rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.ledger.queries import clock, seq_before
from shared.ledger_api import Balances, balances_of
from shared.ledger_query_api import AccountEntry, BalancesAt, EntrySource, Statement
from shared.timefmt import rfc3339

ACCOUNT_HEAD = "SELECT normal_balance, last_entry_seq, created_at FROM accounts WHERE tenant_id = $1 AND id = $2"

ENTRY = """SELECT at, debits_posted, credits_posted, debits_pending, credits_pending FROM account_entries
WHERE tenant_id = $1 AND account_id = $2 AND seq = $3"""

# The overdraft limit in force at an instant (account_changes holds every change of it).
LIMIT_AT = """SELECT overdraft_limit FROM account_changes WHERE tenant_id = $1 AND account_id = $2
AND (at < $3 OR ($4 AND at = $3)) ORDER BY version DESC LIMIT 1"""

ENTRIES = """
SELECT e.seq, e.at, e.source_type, e.source_id, e.kind, e.direction, e.amount, e.debits_posted,
       e.credits_posted, e.debits_pending, e.credits_pending,
       coalesce((SELECT c.overdraft_limit FROM account_changes c
                  WHERE c.tenant_id = e.tenant_id AND c.account_id = e.account_id AND c.version <= e.version
                  ORDER BY c.version DESC LIMIT 1), 0) AS overdraft_limit
  FROM account_entries e
 WHERE e.tenant_id = $1 AND e.account_id = $2 AND e.seq > $3 AND e.seq <= $4
 ORDER BY e.seq LIMIT $5
"""


def _due(alias: str, instant: str, inclusive: str) -> str:
    return f"({alias}.expires_at < {instant} OR ({inclusive} AND {alias}.expires_at = {instant}))"


# Reservations due at the instant ($5/$6) that the first write after it released (entries $3..$4).
DUE_RELEASED = f"""
SELECT coalesce(sum(e.amount) FILTER (WHERE e.direction = 'debit'), 0)::bigint AS due_debits,
       coalesce(sum(e.amount) FILTER (WHERE e.direction = 'credit'), 0)::bigint AS due_credits
  FROM account_entries e
 WHERE e.tenant_id = $1 AND e.account_id = $2 AND e.seq > $3 AND e.seq <= $4 AND e.kind = 'pending_released'
   AND CASE e.source_type
       WHEN 'transfer' THEN EXISTS (SELECT 1 FROM transfers t WHERE t.tenant_id = e.tenant_id
                                       AND t.id = e.source_id AND t.status = 'expired' AND {_due("t", "$5", "$6")})
       ELSE EXISTS (SELECT 1 FROM transactions x WHERE x.tenant_id = e.tenant_id
                       AND x.id = e.source_id AND x.status = 'expired' AND {_due("x", "$5", "$6")}) END
"""

# Reservations due at the instant and still pending (no write to the account since): the partial
# expiry indexes hold only pending rows, so this reads the few unswept ones.
DUE_PENDING = f"""
SELECT coalesce(sum(amount) FILTER (WHERE direction = 'debit'), 0)::bigint AS due_debits,
       coalesce(sum(amount) FILTER (WHERE direction = 'credit'), 0)::bigint AS due_credits
  FROM (SELECT CASE WHEN t.debit_account_id = $2 THEN 'debit' ELSE 'credit' END AS direction, t.amount
          FROM transfers t
         WHERE t.status = 'pending' AND {_due("t", "$3", "$4")} AND t.tenant_id = $1
           AND (t.debit_account_id = $2 OR t.credit_account_id = $2)
        UNION ALL
        SELECT l.leg->>'direction', (l.leg->>'amount')::bigint
          FROM transactions x, jsonb_array_elements(x.entries) AS l(leg)
         WHERE x.status = 'pending' AND {_due("x", "$3", "$4")} AND x.tenant_id = $1
           AND l.leg->>'account_id' = $2::text) d
"""


@dataclass(slots=True)
class _State:
    """An account's counters and overdraft limit at an instant, and the entry seq they follow."""

    seq: int
    counters: tuple[int, int, int, int]
    overdraft_limit: int

    def balances(self, normal_balance: str) -> Balances:
        return balances_of(normal_balance, *self.counters, self.overdraft_limit)


async def _state_at(
    conn: asyncpg.Connection,
    tenant: uuid.UUID,
    account: uuid.UUID,
    last: int,
    instant: datetime,
    inclusive: bool,
    now: datetime,
) -> _State:
    """The account as of ``instant`` (entries at < instant, or <= with ``inclusive``)."""
    seq = await seq_before(conn, tenant, account, instant, inclusive, last)
    row = await conn.fetchrow(ENTRY, tenant, account, seq) if seq else None
    dp, cp, dpe, cpe = (0, 0, 0, 0)
    if row is not None:
        dp, cp, dpe, cpe = row["debits_posted"], row["credits_posted"], row["debits_pending"], row["credits_pending"]
    limit = await conn.fetchval(LIMIT_AT, tenant, account, instant, inclusive) or 0
    due_debits, due_credits = await _due_at(conn, tenant, account, seq, last, instant, inclusive, now)
    return _State(seq, (dp, cp, dpe - due_debits, cpe - due_credits), limit)


async def _due_at(
    conn: asyncpg.Connection,
    tenant: uuid.UUID,
    account: uuid.UUID,
    seq: int,
    last: int,
    instant: datetime,
    inclusive: bool,
    now: datetime,
) -> tuple[int, int]:
    """Pending amounts (debit, credit) in the state after ``seq`` whose reservation was past its
    expires_at at ``instant`` (capped at ``now``: nothing is assumed about the future)."""
    if instant > now:
        instant, inclusive = now, True
    if seq == last:
        row = await conn.fetchrow(DUE_PENDING, tenant, account, instant, inclusive)
    else:
        # The first write after `seq` released every reservation due by then: its entries all
        # carry its clock, so they end at the last entry at or before that clock.
        next_row = await conn.fetchrow(ENTRY, tenant, account, seq + 1)
        end = await seq_before(conn, tenant, account, next_row["at"], True, last)
        row = await conn.fetchrow(DUE_RELEASED, tenant, account, seq, end, instant, inclusive)
    return row["due_debits"], row["due_credits"]


async def account_entries(
    conn: asyncpg.Connection,
    tenant: uuid.UUID,
    account: uuid.UUID,
    start: datetime | None,
    end: datetime | None,
    after: int | None,
    limit: int,
) -> tuple[list[AccountEntry], int | None] | None:
    """Entries with ``start <= at < end``, after entry seq ``after``; None if there is no account."""
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        head = await conn.fetchrow(ACCOUNT_HEAD, tenant, account)
        if head is None:
            return None
        last = head["last_entry_seq"]
        low = 0 if start is None else await seq_before(conn, tenant, account, start, False, last)
        high = last if end is None else await seq_before(conn, tenant, account, end, False, last)
        rows = await conn.fetch(ENTRIES, tenant, account, max(low, after or 0), high, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    normal = head["normal_balance"]
    data = [
        AccountEntry(
            seq=r["seq"],
            at=rfc3339(r["at"]),
            source=EntrySource(type=r["source_type"], id=r["source_id"]),
            kind=r["kind"],
            direction=r["direction"],
            amount=r["amount"],
            balances=balances_of(
                normal,
                r["debits_posted"],
                r["credits_posted"],
                r["debits_pending"],
                r["credits_pending"],
                r["overdraft_limit"],
            ),
        )
        for r in rows
    ]
    return data, rows[-1]["seq"] if more else None


async def statement(
    conn: asyncpg.Connection, tenant: uuid.UUID, account: uuid.UUID, start: datetime | None, end: datetime | None
) -> Statement | None:
    """[start, end): start defaults to the account's creation, end to now. None if no account."""
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        now = await clock(conn)
        head = await conn.fetchrow(ACCOUNT_HEAD, tenant, account)
        if head is None:
            return None
        last = head["last_entry_seq"]
        # A default bound never inverts the period: it gives way to the bound the client chose.
        if start is None:
            start = head["created_at"] if end is None else min(head["created_at"], end)
        if end is None:
            end = max(now, start)
        opening = await _state_at(conn, tenant, account, last, start, False, now)
        closing = await _state_at(conn, tenant, account, last, end, False, now)
    normal = head["normal_balance"]
    return Statement(
        account_id=account,
        from_=rfc3339(start),
        to=rfc3339(end),
        opening=opening.balances(normal),
        closing=closing.balances(normal),
        debits_posted=closing.counters[0] - opening.counters[0],
        credits_posted=closing.counters[1] - opening.counters[1],
        entries_count=closing.seq - opening.seq,
    )


async def balances_at(
    conn: asyncpg.Connection, tenant: uuid.UUID, account: uuid.UUID, at: datetime
) -> BalancesAt | None:
    """The account as of ``at`` (inclusive); None if there is no account."""
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        now = await clock(conn)
        head = await conn.fetchrow(ACCOUNT_HEAD, tenant, account)
        if head is None:
            return None
        state = await _state_at(conn, tenant, account, head["last_entry_seq"], at, True, now)
    dp, cp, dpe, cpe = state.counters
    return BalancesAt(
        account_id=account,
        at=rfc3339(at),
        debits_posted=dp,
        credits_posted=cp,
        debits_pending=dpe,
        credits_pending=cpe,
        balances=state.balances(head["normal_balance"]),
    )
