"""The list queries of docs/api.md section 11 ("Finding things"): the tenant's transfers,
transactions and accounts, filtered, in cursor pages. (An account's entries, statement and
balances at an instant are in :mod:`services.ledger.entry_queries`.)

Invariants the SQL relies on (docs/queries.md explains them and shows the plans):

- Lists are cursor pages over one position column that is unique in the list and in its order:
  ``seq`` for transfers and transactions (the applied order), ``pk`` for accounts, and the
  account's entry ``seq`` for the transactions of one account. Each filter is a condition in SQL;
  alternatives (debit or credit side, an expired status that the sweep has not recorded yet) are
  separate ordered branches merged by ``UNION ALL``, so every branch is one index range scan.
- A reservation past its ``expires_at`` reads as expired (as in reads.py), in the objects and in
  the ``status`` filter, whether or not the sweep has recorded it yet.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from services.ledger.account_store import ACCOUNT_COLUMNS, DUE_AMOUNTS
from services.ledger.present import account_from_row, transaction_of, transfer_of
from services.ledger.rows import TRANSFER_COLUMNS, transaction_from_row, transfer_from_row
from shared.ledger_api import Account, Transaction, Transfer

MAX_POSITION = 2**63 - 1

CLOCK_SLACK = timedelta(seconds=10)
"""The longest a write transaction may take between drawing its seq and reading its created_at clock
(two consecutive statements, microseconds apart) for created_at filters to stay exact: see
:func:`seq_window`."""

TRANSACTION_COLUMNS = """x.tenant_id, x.id, x.entries, x.pending, x.timeout_seconds, x.status, x.expires_at,
    x.metadata, x.created_at, x.updated_at, x.seq, x.resolved_seq, x.reverses, x.reversed_by,
    x.created_by_key_id, x.resolved_by_key_id"""


@dataclass(frozen=True, slots=True)
class Filters:
    """The filters of one list request; a cursor is valid only for the same :meth:`fingerprint`."""

    account_id: uuid.UUID | None = None
    status: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    descending: bool = False
    currency: str | None = None

    def fingerprint(self) -> str:
        """A digest of the filter set (instants compared in UTC, metadata pairs sorted)."""
        canonical = msgspec.json.encode(
            [
                self.account_id,
                self.status,
                self.created_from,
                self.created_to,
                sorted(self.metadata),
                self.descending,
                self.currency,
            ]
        )
        return hashlib.sha256(canonical).hexdigest()[:24]


class _Args:
    """Positional parameters of one statement: ``add`` returns the placeholder of a value."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _common(alias: str, f: Filters, args: _Args) -> list[str]:
    conds = []
    if f.created_from is not None:
        conds.append(f"{alias}.created_at >= {args.add(f.created_from)}")
    if f.created_to is not None:
        conds.append(f"{alias}.created_at < {args.add(f.created_to)}")
    for key, value in f.metadata:
        # The redundant `<> '{}'` lets the planner use the partial GIN index (migration 0012).
        conds.append(f"{alias}.metadata @> {args.add({key: value})}::jsonb AND {alias}.metadata <> '{{}}'::jsonb")
    return conds


def _status_branches(alias: str, status: str | None, now: datetime, args: _Args) -> list[list[str]]:
    """The status filter as disjoint alternatives; a reservation past expires_at reads as expired."""
    if status is None:
        return [[]]
    if status == "pending":
        at = args.add(now)
        return [[f"{alias}.status = 'pending'", f"({alias}.expires_at IS NULL OR {alias}.expires_at > {at})"]]
    if status == "expired":
        at = args.add(now)
        return [[f"{alias}.status = 'expired'"], [f"{alias}.status = 'pending'", f"{alias}.expires_at <= {at}"]]
    return [[f"{alias}.status = {args.add(status)}"]]


def _union(select: str, position: str, branches: list[list[str]], desc: bool, after: str, limit: str) -> str:
    """Each branch an index range scan in position order; more than one are merged in that order."""
    op, direction = ("<", "DESC") if desc else (">", "ASC")
    parts = [
        f"{select} WHERE {' AND '.join([*conds, f'{position} {op} {after}'])} "
        f"ORDER BY {position} {direction} LIMIT {limit}"
        for conds in branches
    ]
    if len(parts) == 1:
        return parts[0]
    merged = " UNION ALL ".join(f"({p})" for p in parts)
    return f"SELECT * FROM ({merged}) u ORDER BY u._pos {direction} LIMIT {limit}"


def _start(f: Filters, after: int | None) -> int:
    if after is not None:
        return after
    return MAX_POSITION if f.descending else -1


async def clock(conn: asyncpg.Connection) -> datetime:
    now: datetime = await conn.fetchval("SELECT clock_timestamp()")
    return now


Window = tuple[int | None, int | None]
"""Exclusive bounds on a list's position column that a created_at range implies (None: unbounded)."""

# Binary search over the (tenant_id, seq) index for instant $2, each probe the first row in
# [midpoint, hi): a row created before $2 raises `lo` to its seq, anything else (no row, or one
# created at or after $2) lowers `hi` to the midpoint. So `lo` is always -1 or the seq of a row
# created before $2, and no row between the midpoint and the old `hi` was created before $2 unless
# seq and created_at order disagree there (see seq_window). At most 63 probes (a bigint's range).
_SEQ_SEARCH = """
WITH RECURSIVE s(lo, hi) AS (
    SELECT -1::bigint, 9223372036854775807::bigint
  UNION ALL
    SELECT CASE WHEN p.created_at < $2 THEN p.seq ELSE s.lo END,
           CASE WHEN p.created_at < $2 THEN s.hi ELSE floor((s.lo::numeric + s.hi) / 2)::bigint END
      FROM s LEFT JOIN LATERAL (
           SELECT x.seq, x.created_at FROM {table} x
            WHERE x.tenant_id = $1 AND x.seq >= floor((s.lo::numeric + s.hi) / 2)::bigint AND x.seq < s.hi
            ORDER BY x.seq LIMIT 1) p ON true
     WHERE s.hi - 1 > s.lo
)
SELECT max(lo) AS lo, min(hi) AS hi FROM s
"""


async def seq_window(conn: asyncpg.Connection, table: str, tenant: uuid.UUID, f: Filters) -> Window:
    """Bounds on ``seq`` for the created_at range of ``f``, found by binary search over the seq index.

    A write transaction draws its block number (seq) and then reads the clock (created_at) in two
    consecutive statements of ``ledger_lock_and_read``, so seq order and created_at order disagree at
    most by that gap, under :data:`CLOCK_SLACK`. Hence a row created at or after ``created_from``
    has a larger seq than any row created before ``created_from - CLOCK_SLACK``, and a row created
    before ``created_to`` a smaller seq than any row created at or after ``created_to +
    CLOCK_SLACK`` (or than any seq with no row at or after it). :data:`_SEQ_SEARCH` finds such
    bounds near the ends of the range; scanning the seq index between them (with the exact
    created_at filter) reads the range plus the slack at its ends, wherever the range lies in the
    history, and no created_at index costs every write.
    """
    low = high = None
    try:
        if f.created_from is not None:
            low = (await conn.fetchrow(_SEQ_SEARCH.format(table=table), tenant, f.created_from - CLOCK_SLACK))["lo"]
        if f.created_to is not None:
            high = (await conn.fetchrow(_SEQ_SEARCH.format(table=table), tenant, f.created_to + CLOCK_SLACK))["hi"]
    except OverflowError:  # a bound near year 1 or 9999: no row lies beyond it anyway
        pass
    return (None if low == -1 else low), (None if high == MAX_POSITION else high)


def _bounded(position: str, window: Window, args: _Args) -> list[str]:
    low, high = window
    conds = [] if low is None else [f"{position} > {args.add(low)}"]
    return conds if high is None else [*conds, f"{position} < {args.add(high)}"]


def transfers_sql(
    f: Filters, tenant: uuid.UUID, now: datetime, window: Window, after: int | None, limit: int
) -> tuple[str, list[Any]]:
    args = _Args()
    base = [f"t.tenant_id = {args.add(tenant)}", *_common("t", f, args), *_bounded("t.seq", window, args)]
    sides: list[list[str]] = [[]]
    if f.account_id is not None:
        account = args.add(f.account_id)
        sides = [[f"t.debit_account_id = {account}"], [f"t.credit_account_id = {account}"]]
    statuses = _status_branches("t", f.status, now, args)
    branches = [[*base, *s, *st] for s in sides for st in statuses]
    select = f"SELECT {TRANSFER_COLUMNS}, t.seq AS _pos FROM transfers t"
    return _union(select, "t.seq", branches, f.descending, args.add(_start(f, after)), args.add(limit)), args.values


async def list_transfers(
    conn: asyncpg.Connection, tenant: uuid.UUID, f: Filters, after: int | None, limit: int
) -> tuple[list[Transfer], int | None]:
    """Up to ``limit`` transfers after position ``after`` and the position to continue from (or None)."""
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        now = await clock(conn)
        window = await seq_window(conn, "transfers", tenant, f)
        sql, args = transfers_sql(f, tenant, now, window, after, limit + 1)
        rows = await conn.fetch(sql, *args)
    more = len(rows) > limit
    rows = rows[:limit]
    return [transfer_of(transfer_from_row(r), now) for r in rows], rows[-1]["_pos"] if more else None


def transactions_sql(
    f: Filters, tenant: uuid.UUID, now: datetime, window: Window, after: int | None, limit: int
) -> tuple[str, list[Any]]:
    """``window`` bounds ``seq``, or with ``account_id`` the account's entry seq."""
    args = _Args()
    tenant_p = args.add(tenant)
    base = [f"x.tenant_id = {tenant_p}", *_common("x", f, args)]
    statuses = _status_branches("x", f.status, now, args)
    if f.account_id is None:
        select = f"SELECT {TRANSACTION_COLUMNS}, x.seq AS _pos FROM transactions x"
        branches = [[*base, *_bounded("x.seq", window, args), *st] for st in statuses]
        return _union(select, "x.seq", branches, f.descending, args.add(_start(f, after)), args.add(limit)), args.values
    # One account: its transaction creation entries, in its applied order (the same order as the
    # transactions' seq). An account on several legs has consecutive entries of the transaction;
    # only the first one counts, and its entry seq is the position.
    select = f"""SELECT {TRANSACTION_COLUMNS}, e.seq AS _pos FROM account_entries e
        JOIN transactions x ON x.tenant_id = e.tenant_id AND x.id = e.source_id"""
    entry = [
        f"e.tenant_id = {tenant_p}",
        f"e.account_id = {args.add(f.account_id)}",
        "e.source_type = 'transaction'",
        "e.kind IN ('posted', 'pending')",
        *_bounded("e.seq", window, args),
        """NOT EXISTS (SELECT 1 FROM account_entries p WHERE p.tenant_id = e.tenant_id
            AND p.account_id = e.account_id AND p.seq = e.seq - 1 AND p.source_type = 'transaction'
            AND p.source_id = e.source_id)""",
    ]
    # The status alternatives become one OR here: the scan follows the account's entries anyway.
    status = " OR ".join("(" + " AND ".join(st) + ")" for st in statuses if st)
    branches = [[*entry, *base, *([f"({status})"] if status else [])]]
    return _union(select, "e.seq", branches, f.descending, args.add(_start(f, after)), args.add(limit)), args.values


LAST_ENTRY_SEQ = "SELECT last_entry_seq FROM accounts WHERE tenant_id = $1 AND id = $2"

# The last seq in 1..$5 whose entry is before instant $3 (at < $3, or at <= $3 with $4), 0 if none.
# A binary search over the primary key: `at` never decreases with seq on one account (each change
# is applied under the account's lock, with the clock read after the lock was granted).
SEQ_BEFORE = """
WITH RECURSIVE s(lo, hi) AS (
    SELECT 0::bigint, $5::bigint
  UNION ALL
    SELECT CASE WHEN e.at < $3 OR ($4 AND e.at = $3) THEN (s.lo + s.hi + 1) / 2 ELSE s.lo END,
           CASE WHEN e.at < $3 OR ($4 AND e.at = $3) THEN s.hi ELSE (s.lo + s.hi + 1) / 2 - 1 END
      FROM s JOIN account_entries e
        ON e.tenant_id = $1 AND e.account_id = $2 AND e.seq = (s.lo + s.hi + 1) / 2
     WHERE s.lo < s.hi
)
SELECT max(lo) FROM s
"""


async def seq_before(
    conn: asyncpg.Connection, tenant: uuid.UUID, account: uuid.UUID, instant: datetime, inclusive: bool, last: int
) -> int:
    """The account's last entry seq before ``instant`` (or at it, with ``inclusive``); 0 if none."""
    seq: int = await conn.fetchval(SEQ_BEFORE, tenant, account, instant, inclusive, last)
    return seq


async def _entry_window(
    conn: asyncpg.Connection, tenant: uuid.UUID, account: uuid.UUID, last: int, f: Filters
) -> Window:
    """Entry seq bounds for the created_at range: a transaction's creation entries carry its created_at."""
    low = None if f.created_from is None else await seq_before(conn, tenant, account, f.created_from, False, last)
    high = None if f.created_to is None else await seq_before(conn, tenant, account, f.created_to, False, last) + 1
    return low, high


async def list_transactions(
    conn: asyncpg.Connection, tenant: uuid.UUID, f: Filters, after: int | None, limit: int
) -> tuple[list[Transaction], int | None]:
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        now = await clock(conn)
        if f.account_id is None:
            window = await seq_window(conn, "transactions", tenant, f)
        else:
            last = await conn.fetchval(LAST_ENTRY_SEQ, tenant, f.account_id)
            if last is None:
                return [], None
            window = await _entry_window(conn, tenant, f.account_id, last, f)
        sql, args = transactions_sql(f, tenant, now, window, after, limit + 1)
        rows = await conn.fetch(sql, *args)
    more = len(rows) > limit
    rows = rows[:limit]
    return [transaction_of(transaction_from_row(r), now) for r in rows], rows[-1]["_pos"] if more else None


def accounts_sql(f: Filters, tenant: uuid.UUID, after: int | None, limit: int) -> tuple[str, list[Any]]:
    args = _Args()
    conds = [f"a.tenant_id = {args.add(tenant)}"]
    if f.currency is not None:
        conds.append(f"a.currency = {args.add(f.currency)}")
    if f.status is not None:
        conds.append(f"a.status = {args.add(f.status)}")
    for key, value in f.metadata:
        conds.append(f"a.metadata @> {args.add({key: value})}::jsonb AND a.metadata <> '{{}}'::jsonb")
    select = f"SELECT {ACCOUNT_COLUMNS}, {DUE_AMOUNTS}, a.pk AS _pos FROM accounts a"
    return _union(select, "a.pk", [conds], False, args.add(_start(f, after)), args.add(limit)), args.values


async def list_accounts(
    conn: asyncpg.Connection, tenant: uuid.UUID, f: Filters, after: int | None, limit: int
) -> tuple[list[Account], int | None]:
    sql, args = accounts_sql(f, tenant, after, limit + 1)
    rows = await conn.fetch(sql, *args)
    more = len(rows) > limit
    rows = rows[:limit]
    return [account_from_row(r) for r in rows], rows[-1]["_pos"] if more else None
