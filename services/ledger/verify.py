"""The ledger verifier: recomputes everything from the stored transfers and names any discrepancy.

Checks (each a named kind in the report):

- ``counters``: every account's four counters equal the sums replayed from its transfers.
- ``history``: replaying each account's events in applied order (``seq`` for a transfer's creation,
  ``resolved_seq`` for its post/void/expiry) never takes a counter below zero and never breaks the
  account's limit flags at any step, i.e. the recorded order is one the rules allowed.
- ``balance``: per tenant and currency, the sum of ``debits_posted`` equals the sum of
  ``credits_posted``, and likewise for the pending counters.
- ``limits``: no account's current counters break its limit flags.
- ``expiry``: no pending transfer more than ``expiry_grace_seconds`` past its ``expires_at`` still
  holds its reservation (the sweep releases them within milliseconds; reads never show them).

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

from shared.settings import get_settings

# One row per event and account side, in applied order, with the running counters after it.
REPLAY = """
WITH events AS (
    SELECT tenant_id, debit_account_id AS account_id, seq,
           CASE WHEN pending THEN 0 ELSE amount END AS d_posted, 0::bigint AS c_posted,
           CASE WHEN pending THEN amount ELSE 0 END AS d_pending, 0::bigint AS c_pending
      FROM transfers
    UNION ALL
    SELECT tenant_id, credit_account_id, seq,
           0, CASE WHEN pending THEN 0 ELSE amount END, 0, CASE WHEN pending THEN amount ELSE 0 END
      FROM transfers
    UNION ALL
    SELECT tenant_id, debit_account_id, resolved_seq, posted_amount, 0, -amount, 0
      FROM transfers WHERE resolved_seq IS NOT NULL
    UNION ALL
    SELECT tenant_id, credit_account_id, resolved_seq, 0, posted_amount, 0, -amount
      FROM transfers WHERE resolved_seq IS NOT NULL
), running AS (
    SELECT e.tenant_id, e.account_id, e.seq,
           sum(d_posted)  OVER w AS debits_posted,
           sum(c_posted)  OVER w AS credits_posted,
           sum(d_pending) OVER w AS debits_pending,
           sum(c_pending) OVER w AS credits_pending
      FROM events e
    WINDOW w AS (PARTITION BY e.tenant_id, e.account_id ORDER BY e.seq
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT r.tenant_id, r.account_id, r.seq, r.debits_posted, r.credits_posted, r.debits_pending, r.credits_pending
  FROM running r JOIN accounts a ON a.tenant_id = r.tenant_id AND a.id = r.account_id
 WHERE r.debits_posted < 0 OR r.credits_posted < 0 OR r.debits_pending < 0 OR r.credits_pending < 0
    OR (a.debits_must_not_exceed_credits AND r.debits_posted + r.debits_pending > r.credits_posted)
    OR (a.credits_must_not_exceed_debits AND r.credits_posted + r.credits_pending > r.debits_posted)
 ORDER BY r.seq LIMIT 20
"""

COUNTERS = """
WITH sides AS (
    SELECT tenant_id, debit_account_id AS account_id,
           CASE WHEN status = 'posted' THEN posted_amount ELSE 0 END AS d_posted, 0::bigint AS c_posted,
           CASE WHEN status = 'pending' THEN amount ELSE 0 END AS d_pending, 0::bigint AS c_pending
      FROM transfers
    UNION ALL
    SELECT tenant_id, credit_account_id, 0, CASE WHEN status = 'posted' THEN posted_amount ELSE 0 END,
           0, CASE WHEN status = 'pending' THEN amount ELSE 0 END
      FROM transfers
), totals AS (
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

BALANCE = """
SELECT tenant_id, currency, sum(debits_posted) AS dp, sum(credits_posted) AS cp,
       sum(debits_pending) AS dpe, sum(credits_pending) AS cpe
  FROM accounts GROUP BY tenant_id, currency
HAVING sum(debits_posted) <> sum(credits_posted) OR sum(debits_pending) <> sum(credits_pending)
"""

LIMITS = """
SELECT tenant_id, id FROM accounts
 WHERE (debits_must_not_exceed_credits AND debits_posted::numeric + debits_pending > credits_posted)
    OR (credits_must_not_exceed_debits AND credits_posted::numeric + credits_pending > debits_posted)
 LIMIT 20
"""

EXPIRY = """
SELECT tenant_id, id, expires_at FROM transfers
 WHERE status = 'pending' AND expires_at < clock_timestamp() - make_interval(secs => $1)
 LIMIT 20
"""

SIZES = "SELECT (SELECT count(*) FROM accounts) AS accounts, (SELECT count(*) FROM transfers) AS transfers"


@dataclass
class Report:
    """The verifier's findings: empty ``discrepancies`` means the ledger is consistent."""

    accounts: int = 0
    transfers: int = 0
    discrepancies: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def add(self, kind: str, detail: str) -> None:
        self.discrepancies.append({"kind": kind, "detail": detail})


async def verify(conn: asyncpg.Connection, expiry_grace_seconds: float = 5.0) -> Report:
    report = Report()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        sizes = await conn.fetchrow(SIZES)
        assert sizes is not None
        report.accounts, report.transfers = sizes["accounts"], sizes["transfers"]
        for row in await conn.fetch(COUNTERS):
            report.add(
                "counters",
                f"account {row['id']} (tenant {row['tenant_id']}) stores "
                f"{row['debits_posted']}/{row['credits_posted']}/{row['debits_pending']}/{row['credits_pending']} "
                f"but its transfers sum to {row['dp']}/{row['cp']}/{row['dpe']}/{row['cpe']} "
                "(debits_posted/credits_posted/debits_pending/credits_pending)",
            )
        for row in await conn.fetch(REPLAY):
            report.add(
                "history",
                f"account {row['account_id']} (tenant {row['tenant_id']}) after event {row['seq']}: "
                f"{row['debits_posted']}/{row['credits_posted']}/{row['debits_pending']}/{row['credits_pending']} "
                "breaks a limit or goes negative",
            )
        for row in await conn.fetch(BALANCE):
            report.add(
                "balance",
                f"tenant {row['tenant_id']} {row['currency']}: debits_posted {row['dp']} vs credits_posted {row['cp']}, "
                f"debits_pending {row['dpe']} vs credits_pending {row['cpe']}",
            )
        for row in await conn.fetch(LIMITS):
            report.add("limits", f"account {row['id']} (tenant {row['tenant_id']}) breaks its limit flag")
        for row in await conn.fetch(EXPIRY, expiry_grace_seconds):
            report.add(
                "expiry",
                f"transfer {row['id']} (tenant {row['tenant_id']}) still reserved, expired at {row['expires_at']}",
            )
    return report


async def run(database_url: str, expiry_grace_seconds: float) -> Report:
    conn = await asyncpg.connect(database_url)
    try:
        return await verify(conn, expiry_grace_seconds)
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    """``./scripts/admin verify [--json] [--expiry-grace SECONDS]``: exit 0 when consistent, else 1."""
    parser = argparse.ArgumentParser(prog="admin verify", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--expiry-grace", type=float, default=5.0, help="seconds a due reservation may linger")
    args = parser.parse_args(argv)
    report = asyncio.run(run(get_settings().database_url, args.expiry_grace))
    if args.json:
        print(
            msgspec.json.encode(
                {
                    "ok": report.ok,
                    "accounts": report.accounts,
                    "transfers": report.transfers,
                    "discrepancies": report.discrepancies,
                }
            ).decode()
        )
    else:
        print(
            f"verified {report.accounts} accounts and {report.transfers} transfers: "
            f"{'OK' if report.ok else f'{len(report.discrepancies)} discrepancies'}"
        )
        for item in report.discrepancies:
            print(f"  [{item['kind']}] {item['detail']}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
