"""Account creation and the SQL that reads an account row: the one write outside the group commit.

Opening an account touches no other row, so it needs no lock order and no group: one INSERT (with
its ``account_changes`` row, version 0, kind ``created``), then its ``account.created`` event, in one
transaction, idempotent on the client's id. A retry
with the same id is compared with what was given at creation (the ``created`` change row), not with
the account as it is now, so a PATCH in between does not turn an honest retry into ``id_conflict``.
Every later change to an account goes through the write path (:mod:`.store`, :mod:`.account_rules`).
"""

from __future__ import annotations

import uuid

import asyncpg

from services.ledger import journal
from services.ledger.state import EVENTS_PER_BLOCK
from shared.errors import ErrorCode, ProblemError
from shared.ledger_api import AccountCreate

ACCOUNT_COLUMNS = """a.pk, a.tenant_id, a.id, a.currency, a.normal_balance, a.debits_must_not_exceed_credits,
    a.credits_must_not_exceed_debits, a.metadata, a.created_at, a.debits_posted, a.credits_posted,
    a.debits_pending, a.credits_pending, a.created_by_key_id, a.status, a.overdraft_limit, a.version"""

# Reservations past expires_at that the sweep has not released yet, per side; reads subtract
# them so no read ever shows an expired reservation (the partial indexes keep this cheap).
DUE_AMOUNTS = """
    (SELECT coalesce(sum(t.amount), 0)::bigint FROM transfers t
      WHERE t.status = 'pending' AND t.expires_at <= clock_timestamp()
        AND t.tenant_id = a.tenant_id AND t.debit_account_id = a.id)
  + (SELECT coalesce(sum((e.leg->>'amount')::bigint), 0)::bigint
       FROM transactions x, jsonb_array_elements(x.entries) AS e(leg)
      WHERE x.status = 'pending' AND x.expires_at <= clock_timestamp() AND x.tenant_id = a.tenant_id
        AND e.leg->>'account_id' = a.id::text AND e.leg->>'direction' = 'debit') AS due_debits,
    (SELECT coalesce(sum(t.amount), 0)::bigint FROM transfers t
      WHERE t.status = 'pending' AND t.expires_at <= clock_timestamp()
        AND t.tenant_id = a.tenant_id AND t.credit_account_id = a.id)
  + (SELECT coalesce(sum((e.leg->>'amount')::bigint), 0)::bigint
       FROM transactions x, jsonb_array_elements(x.entries) AS e(leg)
      WHERE x.status = 'pending' AND x.expires_at <= clock_timestamp() AND x.tenant_id = a.tenant_id
        AND e.leg->>'account_id' = a.id::text AND e.leg->>'direction' = 'credit') AS due_credits,
    -- How many operations those releases will be (each bumps the version once, state.touch), so a
    -- read shows the version the next write will check expected_versions against.
    (SELECT count(*) FROM transfers t
      WHERE t.status = 'pending' AND t.expires_at <= clock_timestamp() AND t.tenant_id = a.tenant_id
        AND (t.debit_account_id = a.id OR t.credit_account_id = a.id))
  + (SELECT count(*) FROM transactions x
      WHERE x.status = 'pending' AND x.expires_at <= clock_timestamp() AND x.tenant_id = a.tenant_id
        AND EXISTS (SELECT 1 FROM jsonb_array_elements(x.entries) AS e(leg)
                     WHERE e.leg->>'account_id' = a.id::text)) AS due_changes"""

INSERT_ACCOUNT = f"""
WITH inserted AS (
    INSERT INTO accounts AS a (tenant_id, id, currency, normal_balance, debits_must_not_exceed_credits,
                               credits_must_not_exceed_debits, metadata, created_at, created_by_key_id,
                               overdraft_limit)
    VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp(), $8, $9)
    ON CONFLICT (tenant_id, id) DO NOTHING
    RETURNING {ACCOUNT_COLUMNS}
), created AS (
    INSERT INTO account_changes (tenant_id, account_id, version, at, kind, status, overdraft_limit, metadata,
                                 key_id, event_seq)
    SELECT tenant_id, id, 0, created_at, 'created', 'open', overdraft_limit, metadata, created_by_key_id,
           nextval('ledger_block_seq') * {EVENTS_PER_BLOCK}
      FROM inserted
)
SELECT *, 0::bigint AS due_debits, 0::bigint AS due_credits, 0::bigint AS due_changes FROM inserted
"""

SELECT_ACCOUNT = f"SELECT {ACCOUNT_COLUMNS}, {DUE_AMOUNTS} FROM accounts a WHERE a.tenant_id = $1 AND a.id = $2"

AS_CREATED = """
SELECT overdraft_limit, metadata FROM account_changes
 WHERE tenant_id = $1 AND account_id = $2 AND kind = 'created'
"""


async def create_account(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, body: AccountCreate, key_id: str | None = None
) -> tuple[int, asyncpg.Record]:
    """Insert an account; (201, row), or (200, row) when the same id was created with the same body.

    The same id with a different body (compared with defaults filled in, against the values given at
    creation) is 409 ``id_conflict``.
    """
    account_id = body.id if body.id is not None else uuid.uuid4()
    flags = body.flags
    async with conn.transaction():
        row = await conn.fetchrow(
            INSERT_ACCOUNT,
            tenant_id,
            account_id,
            body.currency,
            body.normal_balance,
            flags.debits_must_not_exceed_credits,
            flags.credits_must_not_exceed_debits,
            body.metadata,
            key_id,
            body.overdraft_limit,
        )
        if row is not None:
            # Its account.created event commits with it (migration 0013), last: the tenant's head.
            await conn.execute("SELECT ledger_append_events($1::jsonb)", journal.account_created(row))
    if row is not None:
        return 201, row
    existing = await conn.fetchrow(SELECT_ACCOUNT, tenant_id, account_id)
    created = await conn.fetchrow(AS_CREATED, tenant_id, account_id)
    assert existing is not None and created is not None, "accounts are never deleted"
    same = (
        existing["currency"] == body.currency
        and existing["normal_balance"] == body.normal_balance
        and existing["debits_must_not_exceed_credits"] == flags.debits_must_not_exceed_credits
        and existing["credits_must_not_exceed_debits"] == flags.credits_must_not_exceed_debits
        and created["metadata"] == body.metadata
        and created["overdraft_limit"] == body.overdraft_limit
    )
    if not same:
        raise ProblemError(ErrorCode.ID_CONFLICT, "this id was used for a different account", field="id")
    return 200, existing
