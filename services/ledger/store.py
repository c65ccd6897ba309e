"""Every write the ledger makes to PostgreSQL, through one function: :func:`apply_requests`.

``apply_requests`` applies an ordered list of write requests in ONE database transaction and
returns one outcome per operation. Single transfers, batches and group commit all go through it.

The transaction, step by step (READ COMMITTED):

1. Lock every account the requests touch with ``SELECT ... ORDER BY pk FOR UPDATE``. All writers
   lock in ascending ``pk`` order, so writers never deadlock, and every change to an account or
   to a transfer (whose accounts never change) happens under these locks.
2. Read, in a new statement (so it sees everything committed before the locks were granted): the
   transfers the requests name, the pending transfers on the locked accounts that are due to
   expire, one ``ledger_block_seq`` number that orders this transaction's events after every
   earlier writer of these accounts, and the database clock. If a due reservation or a transfer
   to post/void involves an account not locked yet, roll back and start again with it included.
3. Evaluate the rules in memory (:mod:`services.ledger.rules`), in request order.
4. Write everything in one statement (``ledger_write``, migrations/0006, for the small groups of
   single transfers; :data:`WRITE` over binary arrays for batches): new transfers (``INSERT
   ... ON CONFLICT DO NOTHING``: if a concurrent writer took one of the ids with other accounts,
   roll back and re-evaluate, which then sees its transfer and answers replay or
   ``id_conflict``), resolved transfers, and the accounts' new counters (absolute values, safe
   because the rows are locked).
5. Commit, for small groups in the same message as step 4 (one round trip while the accounts are
   locked). Only after the commit returns does any caller get its 2xx.

The transaction is driven by hand (BEGIN, the lock-and-read call, then the write-and-COMMIT
message) rather than by ``conn.transaction()``, which would send COMMIT on its own.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from services.ledger import spans
from services.ledger.rules import (
    AccountState,
    CreateTransfer,
    Key,
    LedgerState,
    Outcome,
    PostPending,
    TransferState,
    VoidPending,
    WriteRequest,
)
from services.ledger.schemas import AccountCreate
from services.ledger.write import WRITE_ERRORS, Retry, write
from shared.errors import ErrorCode, ProblemError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
"""Re-runs of one write transaction (lock set grew, id race, deadlock) before giving up."""

TRANSFER_COLUMNS = """t.tenant_id, t.id, t.debit_account_id, t.credit_account_id, t.amount, t.currency,
    t.pending, t.timeout_seconds, t.status, t.posted_amount, t.expires_at, t.metadata,
    t.created_at, t.updated_at, t.seq, t.resolved_seq, t.created_by_key_id, t.resolved_by_key_id"""

# Steps 1 and 2 in one round trip: see migrations/0002_lock_and_read.sql for why a function.
LOCK_AND_READ = "SELECT * FROM ledger_lock_and_read($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[])"

# Unlocked look-up of the accounts behind post/void targets, so the first attempt locks them.
TRANSFER_ACCOUNTS = """
SELECT t.tenant_id, t.debit_account_id, t.credit_account_id FROM transfers t
JOIN unnest($1::uuid[], $2::uuid[]) AS w(tenant_id, id) ON t.tenant_id = w.tenant_id AND t.id = w.id
"""


@dataclass(slots=True)
class _Plan:
    """What one attempt needs to lock and read."""

    accounts: set[Key]
    transfer_ids: set[Key]


def _plan(requests: Sequence[WriteRequest], extra_accounts: Iterable[Key]) -> _Plan:
    accounts: set[Key] = set(extra_accounts)
    transfer_ids: set[Key] = set()
    for request in requests:
        for op in request.operations:
            if isinstance(op, CreateTransfer):
                accounts.add((op.tenant_id, op.body.debit_account_id))
                accounts.add((op.tenant_id, op.body.credit_account_id))
                transfer_ids.add((op.tenant_id, op.body.id))
            else:
                transfer_ids.add((op.tenant_id, op.transfer_id))
    return _Plan(accounts, transfer_ids)


def _columns(keys: Iterable[Key]) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    pairs = sorted(keys)
    return [p[0] for p in pairs], [p[1] for p in pairs]


async def _accounts_of_targets(conn: asyncpg.Connection, requests: Sequence[WriteRequest]) -> set[Key]:
    targets = {
        (op.tenant_id, op.transfer_id)
        for request in requests
        for op in request.operations
        if isinstance(op, PostPending | VoidPending)
    }
    if not targets:
        return set()
    rows = await conn.fetch(TRANSFER_ACCOUNTS, *_columns(targets))
    found: set[Key] = set()
    for row in rows:
        found.add((row["tenant_id"], row["debit_account_id"]))
        found.add((row["tenant_id"], row["credit_account_id"]))
    return found


def transfer_from_row(row: asyncpg.Record) -> TransferState:
    return TransferState(
        tenant_id=row["tenant_id"],
        id=row["id"],
        debit_account_id=row["debit_account_id"],
        credit_account_id=row["credit_account_id"],
        amount=row["amount"],
        currency=row["currency"],
        pending=row["pending"],
        timeout_seconds=row["timeout_seconds"],
        status=row["status"],
        posted_amount=row["posted_amount"],
        expires_at=row["expires_at"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        seq=row["seq"],
        resolved_seq=row["resolved_seq"],
        created_by_key_id=row["created_by_key_id"],
        resolved_by_key_id=row["resolved_by_key_id"],
    )


async def _load_state(
    conn: asyncpg.Connection, plan: _Plan
) -> tuple[LedgerState, dict[Key, tuple[int, int, int, int]]]:
    rows = await conn.fetch(LOCK_AND_READ, *_columns(plan.accounts), *_columns(plan.transfer_ids))
    accounts: dict[Key, AccountState] = {}
    transfers: dict[Key, TransferState] = {}
    block, now = rows[-1]["block"], rows[-1]["now"]
    for row in rows:
        kind = row["kind"]
        if kind == "account":
            accounts[(row["tenant_id"], row["id"])] = AccountState(
                pk=row["pk"],
                tenant_id=row["tenant_id"],
                id=row["id"],
                currency=row["currency"],
                debits_must_not_exceed_credits=row["debits_must_not_exceed_credits"],
                credits_must_not_exceed_debits=row["credits_must_not_exceed_debits"],
                debits_posted=row["debits_posted"],
                credits_posted=row["credits_posted"],
                debits_pending=row["debits_pending"],
                credits_pending=row["credits_pending"],
            )
        elif kind == "transfer":
            transfer = transfer_from_row(row)
            transfers[(transfer.tenant_id, transfer.id)] = transfer
    missing: set[Key] = set()
    for key, transfer in transfers.items():
        due = transfer.expires_at is not None and transfer.expires_at <= now
        if transfer.status == "pending" and (due or key in plan.transfer_ids):
            for account in (
                (transfer.tenant_id, transfer.debit_account_id),
                (transfer.tenant_id, transfer.credit_account_id),
            ):
                if account not in accounts:
                    missing.add(account)
    if missing:
        raise Retry("accounts of a reservation were not locked", missing)
    before = {
        key: (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending) for key, a in accounts.items()
    }
    return LedgerState(accounts=accounts, transfers=transfers, now=now, block=block), before


async def _rollback(conn: asyncpg.Connection) -> None:
    """Undo a failed attempt; a connection that died meanwhile is the caller's error to report."""
    if conn.is_closed() or not conn.is_in_transaction():
        return
    try:
        await conn.execute("ROLLBACK")
    except Exception:  # the original error is the one that matters
        log.debug("rollback failed", exc_info=True)


async def apply_requests(
    conn: asyncpg.Connection, requests: Sequence[WriteRequest], lock_also: Iterable[Key] = ()
) -> list[list[Outcome]]:
    """Apply ``requests`` in order in one transaction; one list of outcomes per request.

    ``lock_also`` adds accounts to lock even if no request names them: the expiry sweep passes
    the accounts of due reservations and no requests.

    Raises only for infrastructure failures (connection lost, database down); every rule
    violation is an outcome. When it raises, nothing was committed, or (if the connection died
    during COMMIT) the outcome is unknown: callers answer 503 and clients retry with the same ids,
    which the ledger recognises as replays.
    """
    extra: set[Key] = set(lock_also) | await _accounts_of_targets(conn, requests)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        plan = _plan(requests, extra)
        await conn.execute("BEGIN")
        try:
            state, before = await _load_state(conn, plan)
            with spans.rules(requests) as span:
                state.expire_due()
                outcomes = [state.apply(request) for request in requests]
                spans.rejected(span, outcomes)
            await write(conn, state, before)
            return outcomes
        except Retry as retry:
            await _rollback(conn)
            extra |= retry.extra_accounts
            log.debug("write transaction re-run", extra={"reason": str(retry), "attempt": attempt})
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
            await _rollback(conn)
            log.warning("write transaction re-run after %s", type(exc).__name__, extra={"attempt": attempt})
        except asyncpg.PostgresError as exc:
            await _rollback(conn)
            if exc.sqlstate == "LW001":
                log.debug("write transaction re-run", extra={"reason": WRITE_ERRORS["LW001"], "attempt": attempt})
                continue
            raise
        except BaseException:
            await _rollback(conn)
            raise
    raise RuntimeError(f"write transaction did not settle after {MAX_ATTEMPTS} attempts")


async def expire_due(conn: asyncpg.Connection, limit: int = 500) -> int:
    """Expire up to ``limit`` due reservations, whether or not anyone looks; returns how many."""
    rows = await conn.fetch(
        """SELECT tenant_id, debit_account_id, credit_account_id FROM transfers
           WHERE status = 'pending' AND expires_at <= clock_timestamp()
           ORDER BY expires_at LIMIT $1""",
        limit,
    )
    if not rows:
        return 0
    accounts = {(r["tenant_id"], r["debit_account_id"]) for r in rows} | {
        (r["tenant_id"], r["credit_account_id"]) for r in rows
    }
    # No requests: locking the accounts makes the transaction expire what is due on them.
    await apply_requests(conn, [], lock_also=accounts)
    return len(rows)


# -- accounts ------------------------------------------------------------------------------------

ACCOUNT_COLUMNS = """a.pk, a.tenant_id, a.id, a.currency, a.normal_balance, a.debits_must_not_exceed_credits,
    a.credits_must_not_exceed_debits, a.metadata, a.created_at, a.debits_posted, a.credits_posted,
    a.debits_pending, a.credits_pending, a.created_by_key_id"""

# Reservations past expires_at that the sweep has not released yet, per side; reads subtract
# them so no read ever shows an expired reservation (the partial index keeps this cheap).
DUE_AMOUNTS = """
    (SELECT coalesce(sum(t.amount), 0)::bigint FROM transfers t
      WHERE t.status = 'pending' AND t.expires_at <= clock_timestamp()
        AND t.tenant_id = a.tenant_id AND t.debit_account_id = a.id) AS due_debits,
    (SELECT coalesce(sum(t.amount), 0)::bigint FROM transfers t
      WHERE t.status = 'pending' AND t.expires_at <= clock_timestamp()
        AND t.tenant_id = a.tenant_id AND t.credit_account_id = a.id) AS due_credits"""

INSERT_ACCOUNT = f"""
INSERT INTO accounts AS a (tenant_id, id, currency, normal_balance, debits_must_not_exceed_credits,
                           credits_must_not_exceed_debits, metadata, created_at, created_by_key_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp(), $8)
ON CONFLICT (tenant_id, id) DO NOTHING
RETURNING {ACCOUNT_COLUMNS}, 0::bigint AS due_debits, 0::bigint AS due_credits
"""

SELECT_ACCOUNT = f"SELECT {ACCOUNT_COLUMNS}, {DUE_AMOUNTS} FROM accounts a WHERE a.tenant_id = $1 AND a.id = $2"


async def create_account(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, body: AccountCreate, key_id: str | None = None
) -> tuple[int, asyncpg.Record]:
    """Insert an account; (201, row), or (200, row) when the same id was created with the same body.

    The same id with a different body (compared with defaults filled in) is 409 ``id_conflict``.
    """
    account_id = body.id if body.id is not None else uuid.uuid4()
    flags = body.flags
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
    )
    if row is not None:
        return 201, row
    existing = await conn.fetchrow(SELECT_ACCOUNT, tenant_id, account_id)
    assert existing is not None, "accounts are never deleted"
    same = (
        existing["currency"] == body.currency
        and existing["normal_balance"] == body.normal_balance
        and existing["debits_must_not_exceed_credits"] == flags.debits_must_not_exceed_credits
        and existing["credits_must_not_exceed_debits"] == flags.credits_must_not_exceed_debits
        and existing["metadata"] == body.metadata
    )
    if not same:
        raise ProblemError(ErrorCode.ID_CONFLICT, "this id was used for a different account", field="id")
    return 200, existing
