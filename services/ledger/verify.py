"""The ledger verifier: recomputes everything from the stored rows and names any discrepancy.

Checks (each a named kind in the report):

- ``counters``: every account's four counters equal the sums recomputed from its transfers and
  transaction entries (by their status), independently of ``account_entries``.
- ``entries``: each account's entries run 1..``last_entry_seq`` with no gap, each one's running
  counters are the previous one's plus its own change and never negative, and the last one's are
  the account's.
- ``history``: replaying each account's operations in applied order, none that added to a limited
  side took it past the overdraft limit in force then, none made a new movement on a frozen
  account, and nothing moved an account after its close.
- ``versions``: an account's ``version`` equals the number of its changes (operations that moved
  it, and freeze/unfreeze/close/PATCH changes), numbered 1..version.
- ``transactions``: every transaction's entries balance per currency.
- ``reversals``: the reversals of a transfer sum to its ``reversed_amount``, never above its posted
  amount, each on the swapped accounts, only of posted transfers; a transaction and its reversal
  name each other.
- ``balance``: per tenant and currency, the sum of ``debits_posted`` equals the sum of
  ``credits_posted``, and likewise for the pending counters.
- ``limits``: no account's current counters break its limit flags (with its overdraft limit and
  the allowance a lowered limit left), and a closed account holds nothing.
- ``chain`` and ``journal``: every tenant's event hash chain, and that each object is what its
  newest event says (:mod:`.verify_chain`; incremental from the last checkpoint unless ``--full``).
- ``expiry``: no pending transfer or transaction more than ``expiry_grace_seconds`` past its
  ``expires_at`` still holds its reservation (the sweep releases them within milliseconds; reads
  never show them).

It reads the database directly in one REPEATABLE READ snapshot, so it works while the services
are down and sees one consistent instant while they run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field

import asyncpg
import msgspec

from services.ledger import verify_chain
from shared.settings import get_settings

# Every movement of an account, recomputed from the transfers and transactions themselves (not from
# account_entries): creation (posted or pending), then post/void/expiry of what was pending.
MOVES = """
    SELECT tenant_id, debit_account_id AS account_id,
           CASE WHEN status = 'posted' THEN posted_amount ELSE 0 END AS d_posted, 0::bigint AS c_posted,
           CASE WHEN status = 'pending' THEN amount ELSE 0 END AS d_pending, 0::bigint AS c_pending
      FROM transfers
    UNION ALL
    SELECT tenant_id, credit_account_id, 0, CASE WHEN status = 'posted' THEN posted_amount ELSE 0 END,
           0, CASE WHEN status = 'pending' THEN amount ELSE 0 END
      FROM transfers
    UNION ALL
    SELECT x.tenant_id, (e.leg->>'account_id')::uuid,
           CASE WHEN x.status = 'posted' AND e.leg->>'direction' = 'debit' THEN (e.leg->>'amount')::bigint ELSE 0 END,
           CASE WHEN x.status = 'posted' AND e.leg->>'direction' = 'credit' THEN (e.leg->>'amount')::bigint ELSE 0 END,
           CASE WHEN x.status = 'pending' AND e.leg->>'direction' = 'debit' THEN (e.leg->>'amount')::bigint ELSE 0 END,
           CASE WHEN x.status = 'pending' AND e.leg->>'direction' = 'credit' THEN (e.leg->>'amount')::bigint ELSE 0 END
      FROM transactions x, jsonb_array_elements(x.entries) AS e(leg)
"""

COUNTERS = f"""
WITH sides AS ({MOVES}), totals AS (
    SELECT tenant_id, account_id, sum(d_posted) AS dp, sum(c_posted) AS cp, sum(d_pending) AS dpe,
           sum(c_pending) AS cpe
      FROM sides GROUP BY tenant_id, account_id
)
SELECT a.tenant_id, a.id, a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending,
       coalesce(t.dp, 0) AS dp, coalesce(t.cp, 0) AS cp, coalesce(t.dpe, 0) AS dpe, coalesce(t.cpe, 0) AS cpe
  FROM accounts a LEFT JOIN totals t ON t.tenant_id = a.tenant_id AND t.account_id = a.id
 WHERE a.debits_posted <> coalesce(t.dp, 0) OR a.credits_posted <> coalesce(t.cp, 0)
    OR a.debits_pending <> coalesce(t.dpe, 0) OR a.credits_pending <> coalesce(t.cpe, 0)
 LIMIT 20
"""

# Each entry's running counters are the previous entry's plus its own change, and never negative;
# the last entry's counters are the account's; seq runs 1..last_entry_seq with no gap.
ENTRIES = """
WITH e AS (
    SELECT e.*,
           lag(debits_posted, 1, 0::bigint) OVER w AS p_dp, lag(credits_posted, 1, 0::bigint) OVER w AS p_cp,
           lag(debits_pending, 1, 0::bigint) OVER w AS p_dpe, lag(credits_pending, 1, 0::bigint) OVER w AS p_cpe,
           lag(seq, 1, 0::bigint) OVER w AS p_seq
      FROM account_entries e
    WINDOW w AS (PARTITION BY tenant_id, account_id ORDER BY seq)
)
SELECT tenant_id, account_id, seq, 'entry does not follow from the one before it' AS problem FROM e
 WHERE seq <> p_seq + 1
    OR least(debits_posted, credits_posted, debits_pending, credits_pending) < 0
    OR (debits_posted - p_dp, credits_posted - p_cp, debits_pending - p_dpe, credits_pending - p_cpe) <>
       (CASE WHEN direction = 'debit' AND kind IN ('posted', 'pending_posted') THEN amount ELSE 0 END,
        CASE WHEN direction = 'credit' AND kind IN ('posted', 'pending_posted') THEN amount ELSE 0 END,
        CASE WHEN direction = 'debit' THEN CASE kind WHEN 'pending' THEN amount WHEN 'posted' THEN 0
                                                     ELSE -amount END ELSE 0 END,
        CASE WHEN direction = 'credit' THEN CASE kind WHEN 'pending' THEN amount WHEN 'posted' THEN 0
                                                      ELSE -amount END ELSE 0 END)
UNION ALL
SELECT a.tenant_id, a.id, a.last_entry_seq, 'the account differs from its last entry'
  FROM accounts a
  LEFT JOIN account_entries l ON l.tenant_id = a.tenant_id AND l.account_id = a.id AND l.seq = a.last_entry_seq
 WHERE (a.last_entry_seq > 0 AND l.seq IS NULL)
    OR (l.seq IS NOT NULL AND (l.debits_posted, l.credits_posted, l.debits_pending, l.credits_pending) <>
                              (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending))
    OR EXISTS (SELECT 1 FROM account_entries n
                WHERE n.tenant_id = a.tenant_id AND n.account_id = a.id AND n.seq > a.last_entry_seq)
 LIMIT 20
"""

# Replaying each account's operations (its entries grouped by version, judged on the state after the
# operation's last entry, as the rules judge it): one that added to a limited side never took it past
# the overdraft limit in force then (the account's latest change before that version); no new
# movement (kind posted/pending) while the account was frozen; nothing at all after a close.
HISTORY = """
WITH ops AS (
    SELECT tenant_id, account_id, version, max(seq) AS last_seq,
           bool_or(kind IN ('posted', 'pending') AND direction = 'debit') AS adds_debits,
           bool_or(kind IN ('posted', 'pending') AND direction = 'credit') AS adds_credits,
           bool_or(kind IN ('posted', 'pending')) AS new_movement
      FROM account_entries GROUP BY tenant_id, account_id, version
)
SELECT e.tenant_id, e.account_id, e.seq, c.status, c.overdraft_limit
  FROM ops o
  JOIN account_entries e ON e.tenant_id = o.tenant_id AND e.account_id = o.account_id AND e.seq = o.last_seq
  JOIN accounts a ON a.tenant_id = o.tenant_id AND a.id = o.account_id
  CROSS JOIN LATERAL (
        SELECT status, overdraft_limit FROM account_changes c
         WHERE c.tenant_id = o.tenant_id AND c.account_id = o.account_id AND c.version < o.version
         ORDER BY c.version DESC LIMIT 1) c
 WHERE c.status = 'closed'
    OR (c.status = 'frozen' AND o.new_movement)
    OR (o.adds_debits AND a.debits_must_not_exceed_credits
        AND e.debits_posted::numeric + e.debits_pending > e.credits_posted::numeric + c.overdraft_limit)
    OR (o.adds_credits AND a.credits_must_not_exceed_debits
        AND e.credits_posted::numeric + e.credits_pending > e.debits_posted::numeric + c.overdraft_limit)
 ORDER BY e.seq LIMIT 20
"""

# version = the number of changes: entries (one version per operation, shared by an operation's
# entries on the account) and account_changes rows together number 1..version without a gap.
VERSIONS = """
WITH v AS (
    SELECT tenant_id, account_id, version FROM account_entries
    UNION
    SELECT tenant_id, account_id, version FROM account_changes WHERE kind <> 'created'
)
SELECT a.tenant_id, a.id, a.version, count(v.version) AS changes, coalesce(max(v.version), 0) AS newest
  FROM accounts a LEFT JOIN v ON v.tenant_id = a.tenant_id AND v.account_id = a.id
 GROUP BY a.tenant_id, a.id, a.version
HAVING a.version <> count(v.version) OR a.version <> coalesce(max(v.version), 0)
 LIMIT 20
"""

# A transaction's entries balance per currency; the reversals of a transfer never sum above its
# posted amount and equal its reversed_amount; a reversal mirrors what it reverses.
TRANSACTIONS = """
SELECT x.tenant_id, x.id, e.leg->>'currency' AS currency FROM transactions x, jsonb_array_elements(x.entries) e(leg)
 GROUP BY x.tenant_id, x.id, e.leg->>'currency'
HAVING sum(CASE WHEN e.leg->>'direction' = 'debit' THEN (e.leg->>'amount')::numeric
                ELSE -(e.leg->>'amount')::numeric END) <> 0
 LIMIT 20
"""

REVERSALS = """
SELECT o.tenant_id, o.id, o.posted_amount, o.reversed_amount, coalesce(sum(r.amount), 0) AS reversed
  FROM transfers o
  LEFT JOIN transfers r ON r.tenant_id = o.tenant_id AND r.reverses = o.id
 GROUP BY o.tenant_id, o.id, o.posted_amount, o.reversed_amount
HAVING coalesce(sum(r.amount), 0) <> o.reversed_amount OR coalesce(sum(r.amount), 0) > o.posted_amount
    OR bool_or(r.debit_account_id <> o.credit_account_id OR r.credit_account_id <> o.debit_account_id)
    OR (o.reversed_amount > 0 AND o.status <> 'posted')
 LIMIT 20
"""

TRANSACTION_REVERSALS = """
SELECT o.tenant_id, o.id FROM transactions o
  LEFT JOIN transactions r ON r.tenant_id = o.tenant_id AND r.id = o.reversed_by
 WHERE (o.reversed_by IS NOT NULL AND (r.id IS NULL OR r.reverses IS DISTINCT FROM o.id))
    OR EXISTS (SELECT 1 FROM transactions q WHERE q.tenant_id = o.tenant_id AND q.reverses = o.id
                AND q.id IS DISTINCT FROM o.reversed_by)
 LIMIT 20
"""

BALANCE = """
SELECT tenant_id, currency, sum(debits_posted) AS dp, sum(credits_posted) AS cp,
       sum(debits_pending) AS dpe, sum(credits_pending) AS cpe
  FROM accounts GROUP BY tenant_id, currency
HAVING sum(debits_posted) <> sum(credits_posted) OR sum(debits_pending) <> sum(credits_pending)
"""

LIMITS = """
SELECT tenant_id, id FROM accounts
 WHERE (debits_must_not_exceed_credits
        AND debits_posted::numeric + debits_pending > credits_posted::numeric + overdraft_limit + limit_allowance)
    OR (credits_must_not_exceed_debits
        AND credits_posted::numeric + credits_pending > debits_posted::numeric + overdraft_limit + limit_allowance)
    OR (status = 'closed' AND (debits_posted <> credits_posted OR debits_pending <> 0 OR credits_pending <> 0))
 LIMIT 20
"""

EXPIRY = """
SELECT tenant_id, id, expires_at, 'transfer' AS kind FROM transfers
 WHERE status = 'pending' AND expires_at < clock_timestamp() - make_interval(secs => $1)
UNION ALL
SELECT tenant_id, id, expires_at, 'transaction' FROM transactions
 WHERE status = 'pending' AND expires_at < clock_timestamp() - make_interval(secs => $1)
 LIMIT 20
"""

SIZES = """SELECT (SELECT count(*) FROM accounts) AS accounts, (SELECT count(*) FROM transfers) AS transfers,
                  (SELECT count(*) FROM transactions) AS transactions"""


@dataclass
class Report:
    """The verifier's findings: empty ``discrepancies`` means the ledger is consistent."""

    accounts: int = 0
    transfers: int = 0
    transactions: int = 0
    discrepancies: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def add(self, kind: str, detail: str) -> None:
        self.discrepancies.append({"kind": kind, "detail": detail})


async def verify(conn: asyncpg.Connection, expiry_grace_seconds: float = 5.0, full: bool = False) -> Report:
    """Check everything in one snapshot; the chains from their last checkpoint unless ``full``."""
    report = Report()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        intact = await verify_chain.check_chains(conn, report.add, full)
        await verify_chain.check_journal(conn, report.add, full)
        sizes = await conn.fetchrow(SIZES)
        assert sizes is not None
        report.accounts, report.transfers = sizes["accounts"], sizes["transfers"]
        report.transactions = sizes["transactions"]
        for row in await conn.fetch(COUNTERS):
            report.add(
                "counters",
                f"account {row['id']} (tenant {row['tenant_id']}) stores "
                f"{row['debits_posted']}/{row['credits_posted']}/{row['debits_pending']}/{row['credits_pending']} "
                f"but its transfers and transactions sum to {row['dp']}/{row['cp']}/{row['dpe']}/{row['cpe']} "
                "(debits_posted/credits_posted/debits_pending/credits_pending)",
            )
        for row in await conn.fetch(ENTRIES):
            report.add(
                "entries",
                f"account {row['account_id']} (tenant {row['tenant_id']}) entry {row['seq']}: {row['problem']}",
            )
        for row in await conn.fetch(HISTORY):
            report.add(
                "history",
                f"account {row['account_id']} (tenant {row['tenant_id']}) entry {row['seq']} moved it while "
                f"{row['status']} or past its overdraft limit {row['overdraft_limit']}",
            )
        for row in await conn.fetch(VERSIONS):
            report.add(
                "versions",
                f"account {row['id']} (tenant {row['tenant_id']}) is at version {row['version']} "
                f"but records {row['changes']} changes (newest {row['newest']})",
            )
        for row in await conn.fetch(TRANSACTIONS):
            report.add(
                "transactions",
                f"transaction {row['id']} (tenant {row['tenant_id']}) does not balance in {row['currency']}",
            )
        for row in await conn.fetch(REVERSALS):
            report.add(
                "reversals",
                f"transfer {row['id']} (tenant {row['tenant_id']}) posted {row['posted_amount']}, records "
                f"reversed_amount {row['reversed_amount']}, its reversals sum to {row['reversed']}",
            )
        for row in await conn.fetch(TRANSACTION_REVERSALS):
            report.add(
                "reversals", f"transaction {row['id']} (tenant {row['tenant_id']}): reversed_by and reverses disagree"
            )
        for row in await conn.fetch(BALANCE):
            report.add(
                "balance",
                f"tenant {row['tenant_id']} {row['currency']}: debits_posted {row['dp']} vs credits_posted {row['cp']}, "
                f"debits_pending {row['dpe']} vs credits_pending {row['cpe']}",
            )
        for row in await conn.fetch(LIMITS):
            report.add(
                "limits",
                f"account {row['id']} (tenant {row['tenant_id']}) breaks its limit or holds money while closed",
            )
        for row in await conn.fetch(EXPIRY, expiry_grace_seconds):
            report.add(
                "expiry",
                f"{row['kind']} {row['id']} (tenant {row['tenant_id']}) still reserved, expired at {row['expires_at']}",
            )
    if report.ok:
        # Only a clean run moves the checkpoints: the next incremental run starts where this ended.
        await verify_chain.advance_checkpoints(conn, intact)
    return report


async def run(database_url: str, expiry_grace_seconds: float, full: bool = False) -> Report:
    conn = await asyncpg.connect(database_url)
    try:
        return await verify(conn, expiry_grace_seconds, full)
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    """``./scripts/admin verify [--json] [--expiry-grace SECONDS]``: exit 0 when consistent, else 1."""
    parser = argparse.ArgumentParser(prog="admin verify", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--expiry-grace", type=float, default=5.0, help="seconds a due reservation may linger")
    parser.add_argument(
        "--full", action="store_true", help="re-check every event chain from its start, not from the last checkpoint"
    )
    args = parser.parse_args(argv)
    report = asyncio.run(run(get_settings().database.url, args.expiry_grace, args.full))
    if args.json:
        print(
            msgspec.json.encode(
                {
                    "ok": report.ok,
                    "accounts": report.accounts,
                    "transfers": report.transfers,
                    "transactions": report.transactions,
                    "discrepancies": report.discrepancies,
                }
            ).decode()
        )
    else:
        print(
            f"verified {report.accounts} accounts, {report.transfers} transfers and {report.transactions} "
            "transactions: "
            f"{'OK' if report.ok else f'{len(report.discrepancies)} discrepancies'}"
        )
        for item in report.discrepancies:
            print(f"  [{item['kind']}] {item['detail']}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
