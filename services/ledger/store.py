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

from services.ledger import rules, spans
from services.ledger.operations import (
    CreateTransaction,
    CreateTransfer,
    Outcome,
    PostPending,
    ResolveTransaction,
    ReverseTransaction,
    ReverseTransfer,
    VoidPending,
    WriteRequest,
)
from services.ledger.rows import account_state_from_row, transaction_from_row, transfer_from_row
from services.ledger.state import AccountState, Key, LedgerState, TransactionState, TransferState
from services.ledger.write import WRITE_ERRORS, Retry, write

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
"""Re-runs of one write transaction (lock set grew, id race, deadlock) before giving up."""

# Steps 1 and 2 in one round trip: see migrations/0002_lock_and_read.sql for why a function.
LOCK_AND_READ = """SELECT * FROM ledger_lock_and_read($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[],
                                                   $6::uuid[])"""

# Unlocked look-up of the accounts behind the transfers and transactions that operations name by id
# (post, void, reverse), so the first attempt locks them.
TRANSFER_ACCOUNTS = """
SELECT t.tenant_id, t.debit_account_id, t.credit_account_id FROM transfers t
JOIN unnest($1::uuid[], $2::uuid[]) AS w(tenant_id, id) ON t.tenant_id = w.tenant_id AND t.id = w.id
"""
TRANSACTION_ACCOUNTS = """
SELECT DISTINCT x.tenant_id, (e.leg->>'account_id')::uuid AS account_id
  FROM transactions x
  JOIN unnest($1::uuid[], $2::uuid[]) AS w(tenant_id, id) ON x.tenant_id = w.tenant_id AND x.id = w.id,
       jsonb_array_elements(x.entries) AS e(leg)
"""


@dataclass(slots=True)
class _Plan:
    """What one attempt needs to lock and read."""

    accounts: set[Key]
    transfer_ids: set[Key]
    transaction_ids: set[Key]


def _plan(requests: Sequence[WriteRequest], extra_accounts: Iterable[Key]) -> _Plan:
    plan = _Plan(set(extra_accounts), set(), set())
    for request in requests:
        for op in request.operations:
            tenant = op.tenant_id
            if isinstance(op, CreateTransfer):
                plan.accounts.add((tenant, op.body.debit_account_id))
                plan.accounts.add((tenant, op.body.credit_account_id))
                plan.transfer_ids.add((tenant, op.body.id))
            elif isinstance(op, PostPending | VoidPending):
                plan.transfer_ids.add((tenant, op.transfer_id))
            elif isinstance(op, ReverseTransfer):
                plan.transfer_ids.update(((tenant, op.transfer_id), (tenant, op.body.id)))
            elif isinstance(op, CreateTransaction):
                plan.accounts.update((tenant, e.account_id) for e in op.body.entries)
                plan.transaction_ids.add((tenant, op.body.id))
            elif isinstance(op, ResolveTransaction):
                plan.transaction_ids.add((tenant, op.transaction_id))
            elif isinstance(op, ReverseTransaction):
                plan.transaction_ids.update(((tenant, op.transaction_id), (tenant, op.body.id)))
            else:
                plan.accounts.add((tenant, op.account_id))
    return plan


def _columns(keys: Iterable[Key]) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    pairs = sorted(keys)
    return [p[0] for p in pairs], [p[1] for p in pairs]


async def _accounts_of_targets(conn: asyncpg.Connection, requests: Sequence[WriteRequest]) -> set[Key]:
    transfers: set[Key] = set()
    transactions: set[Key] = set()
    for request in requests:
        for op in request.operations:
            if isinstance(op, PostPending | VoidPending | ReverseTransfer):
                transfers.add((op.tenant_id, op.transfer_id))
            elif isinstance(op, ResolveTransaction | ReverseTransaction):
                transactions.add((op.tenant_id, op.transaction_id))
    found: set[Key] = set()
    if transfers:
        for row in await conn.fetch(TRANSFER_ACCOUNTS, *_columns(transfers)):
            found.add((row["tenant_id"], row["debit_account_id"]))
            found.add((row["tenant_id"], row["credit_account_id"]))
    if transactions:
        for row in await conn.fetch(TRANSACTION_ACCOUNTS, *_columns(transactions)):
            found.add((row["tenant_id"], row["account_id"]))
    return found


async def _load_state(conn: asyncpg.Connection, plan: _Plan) -> tuple[LedgerState, dict[Key, tuple[object, ...]]]:
    rows = await conn.fetch(
        LOCK_AND_READ, *_columns(plan.accounts), *_columns(plan.transfer_ids), *_columns(plan.transaction_ids)
    )
    accounts: dict[Key, AccountState] = {}
    transfers: dict[Key, TransferState] = {}
    transactions: dict[Key, TransactionState] = {}
    heads: dict[uuid.UUID, tuple[int, str]] = {}
    block, now = rows[-1]["block"], rows[-1]["now"]
    for row in rows:
        kind = row["kind"]
        if kind == "account":
            accounts[(row["tenant_id"], row["id"])] = account_state_from_row(row)
        elif kind == "transfer":
            transfer = transfer_from_row(row)
            transfers[(transfer.tenant_id, transfer.id)] = transfer
        elif kind == "transaction":
            transaction = transaction_from_row(row)
            transactions[(transaction.tenant_id, transaction.id)] = transaction
        elif kind == "head":
            heads[row["tenant_id"]] = (row["seq"], row["hash"])
    # Every loaded transfer or transaction an operation may change (named, or due to expire) must
    # have its accounts locked; if not, run again with them.
    needed: set[Key] = set()
    for transfer in transfers.values():
        needed.add((transfer.tenant_id, transfer.debit_account_id))
        needed.add((transfer.tenant_id, transfer.credit_account_id))
    for transaction in transactions.values():
        needed.update((transaction.tenant_id, leg.account_id) for leg in transaction.legs)
    missing = needed - accounts.keys()
    if missing:
        raise Retry("accounts of a loaded transfer or transaction were not locked", missing)
    before = {key: a.snapshot() for key, a in accounts.items()}
    state = LedgerState(
        accounts=accounts, transfers=transfers, now=now, block=block, transactions=transactions, heads=heads
    )
    return state, before


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
                rules.expire_due(state)
                outcomes = [rules.apply(state, request) for request in requests]
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


DUE_TRANSFERS = """
SELECT tenant_id, debit_account_id, credit_account_id FROM transfers
 WHERE status = 'pending' AND expires_at <= clock_timestamp()
 ORDER BY expires_at LIMIT $1
"""
DUE_TRANSACTIONS = """
SELECT x.tenant_id, x.id, (e.leg->>'account_id')::uuid AS account_id
  FROM (SELECT tenant_id, id, entries FROM transactions
         WHERE status = 'pending' AND expires_at <= clock_timestamp()
         ORDER BY expires_at LIMIT $1) x,
       jsonb_array_elements(x.entries) AS e(leg)
"""


async def expire_due(conn: asyncpg.Connection, limit: int = 500) -> int:
    """Expire up to ``limit`` due transfers and ``limit`` due transactions, whether or not anyone
    looks; returns how many."""
    accounts: set[Key] = set()
    transfers = await conn.fetch(DUE_TRANSFERS, limit)
    for r in transfers:
        accounts.update(((r["tenant_id"], r["debit_account_id"]), (r["tenant_id"], r["credit_account_id"])))
    transactions = await conn.fetch(DUE_TRANSACTIONS, limit)
    accounts.update((r["tenant_id"], r["account_id"]) for r in transactions)
    if not accounts:
        return 0
    # No requests: locking the accounts makes the transaction expire what is due on them.
    await apply_requests(conn, [], lock_also=accounts)
    return len(transfers) + len({(r["tenant_id"], r["id"]) for r in transactions})
