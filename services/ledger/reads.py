"""Every read query of the ledger. Reads take no locks and see the latest committed state.

A reservation past its ``expires_at`` reads as released/expired even before the sweep commits
it, so what a client reads never depends on whether anyone triggered the expiry.

:func:`cursor_secret` reads the list-cursor secret (migration 0004) once per process.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from services.ledger.account_store import SELECT_ACCOUNT
from services.ledger.db import connection
from services.ledger.rows import TRANSFER_COLUMNS, transaction_from_row, transfer_from_row
from services.ledger.state import TransactionState, TransferState

# Two index range scans merged, rather than one scan with OR: each side is in seq order already.
ACCOUNT_HISTORY = f"""
SELECT * FROM (
    (SELECT {TRANSFER_COLUMNS} FROM transfers t
      WHERE t.tenant_id = $1 AND t.debit_account_id = $2 AND t.seq > $3 ORDER BY t.seq LIMIT $4)
    UNION ALL
    (SELECT {TRANSFER_COLUMNS} FROM transfers t
      WHERE t.tenant_id = $1 AND t.credit_account_id = $2 AND t.seq > $3 ORDER BY t.seq LIMIT $4)
) h ORDER BY h.seq LIMIT $4
"""

# Existence and normal balance only: the history and balance-at routes need no counters.
ACCOUNT_KIND = "SELECT normal_balance FROM accounts WHERE tenant_id = $1 AND id = $2"

SELECT_TRANSFER = f"""
SELECT {TRANSFER_COLUMNS}, clock_timestamp() AS _now FROM transfers t WHERE t.tenant_id = $1 AND t.id = $2
"""


async def get_account(conn: asyncpg.Connection, tenant_id: uuid.UUID, account_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_ACCOUNT, tenant_id, account_id)


async def account_normal_balance(conn: asyncpg.Connection, tenant_id: uuid.UUID, account_id: uuid.UUID) -> str | None:
    """The account's ``normal_balance``, or None when the tenant has no such account."""
    value: str | None = await conn.fetchval(ACCOUNT_KIND, tenant_id, account_id)
    return value


async def account_history(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, account_id: uuid.UUID, after_seq: int, limit: int
) -> tuple[list[TransferState], datetime]:
    """Up to ``limit`` transfers touching the account after ``after_seq``, in applied order."""
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        rows = await conn.fetch(ACCOUNT_HISTORY, tenant_id, account_id, after_seq, limit)
        now = await conn.fetchval("SELECT clock_timestamp()")
    return [transfer_from_row(r) for r in rows], now


async def get_transfer(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, transfer_id: uuid.UUID
) -> tuple[TransferState, datetime] | None:
    row = await conn.fetchrow(SELECT_TRANSFER, tenant_id, transfer_id)
    if row is None:
        return None
    return transfer_from_row(row), row["_now"]


SELECT_TRANSACTION = """
SELECT x.*, clock_timestamp() AS _now FROM transactions x WHERE x.tenant_id = $1 AND x.id = $2
"""


async def get_transaction(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, transaction_id: uuid.UUID
) -> tuple[TransactionState, datetime] | None:
    row = await conn.fetchrow(SELECT_TRANSACTION, tenant_id, transaction_id)
    if row is None:
        return None
    return transaction_from_row(row), row["_now"]


_cursor_secret: bytes | None = None


async def cursor_secret(pool: asyncpg.Pool) -> bytes:
    """The secret list cursors are sealed with; read once, it never changes (migration 0004)."""
    global _cursor_secret
    if _cursor_secret is None:
        async with connection(pool) as conn:
            secret: bytes | None = await conn.fetchval("SELECT secret FROM ledger_secrets WHERE name = 'list_cursor'")
        if secret is None:
            raise RuntimeError("no list cursor secret: migration 0004 has not been applied")
        _cursor_secret = secret
    return _cursor_secret
