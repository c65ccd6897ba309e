"""After the faults: compare what the clients were told with what the ledger holds.

Every client operation ended with a definitive answer, so the stored transfers must be exactly the
acknowledged ones: none lost, none stored that was refused or never acknowledged, each with the
acknowledged content and a state its acknowledged post/void (or expiry) explains. The accounts'
counters, read through the gateway, must equal the sums of those transfers (a transfer applied
twice would show here), and each account's history must list each of its transfers exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import msgspec

from tests.faults.load import Journal, Key, LoadTenant

STORED = """
SELECT tenant_id::text AS tenant_id, id::text AS id, debit_account_id::text AS debit_account_id,
       credit_account_id::text AS credit_account_id, amount, currency, pending, status, posted_amount,
       metadata::text AS metadata, created_at, expires_at
  FROM transfers WHERE tenant_id = ANY($1::uuid[])
"""

SHORT_RESERVATIONS = """
SELECT count(*) FROM transfers
 WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at < clock_timestamp() + interval '1 minute'
"""


def _rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def wait_for_expiry_sweep(conn: asyncpg.Connection) -> None:
    """Until the ledger released every short reservation by itself (nobody reads or writes them)."""
    for _ in range(1200):
        if await conn.fetchval(SHORT_RESERVATIONS) == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("due reservations were never released by the expiry sweep")


def _expected_state(journal: Journal, key: Key, ack: dict[str, Any]) -> set[tuple[str, int]]:
    """The (status, posted_amount) states the stored transfer may be in, given its answers."""
    if ack["status"] == "posted":
        return {("posted", ack["amount"])}
    if key in journal.resolved:
        status, amount = journal.resolved[key]
        return {(status, amount)}
    # Created pending and never posted or voided: still reserved, or expired if it had a timeout.
    return {("pending", 0), ("expired", 0)} if journal.timeouts[key] > 0 else {("pending", 0)}


async def stored_matches_journal(
    conn: asyncpg.Connection, journal: Journal, tenants: list[LoadTenant]
) -> tuple[list[str], dict[Key, asyncpg.Record]]:
    problems: list[str] = []
    rows = await conn.fetch(STORED, [t.tenant_id for t in tenants])
    stored = {(r["tenant_id"], r["id"]): r for r in rows}
    lost = set(journal.acked) - set(stored)
    phantom = set(stored) - set(journal.acked)
    problems += [f"acknowledged but not stored: {key}" for key in sorted(lost)]
    problems += [f"stored but never acknowledged (refused: {journal.refused.get(k)}): {k}" for k in sorted(phantom)]
    for key, ack in journal.acked.items():
        row = stored.get(key)
        if row is None:
            continue
        content = {
            "debit_account_id": row["debit_account_id"],
            "credit_account_id": row["credit_account_id"],
            "amount": row["amount"],
            "currency": row["currency"],
            "metadata": msgspec.json.decode(row["metadata"]),
            "created_at": _rfc3339(row["created_at"]),
            "expires_at": _rfc3339(row["expires_at"]),
        }
        acknowledged = {name: ack[name] for name in content}
        if content != acknowledged or row["pending"] != (ack["status"] != "posted"):
            problems.append(f"{key}: stored {content} but acknowledged {acknowledged}")
        if (row["status"], row["posted_amount"]) not in _expected_state(journal, key, ack):
            problems.append(
                f"{key}: stored as {row['status']}/{row['posted_amount']}, "
                f"answers allow {_expected_state(journal, key, ack)}"
            )
    return problems, stored


def expected_counters(stored: dict[Key, asyncpg.Record]) -> dict[str, Counter[str]]:
    counters: dict[str, Counter[str]] = defaultdict(Counter)
    for row in stored.values():
        debit, credit = counters[row["debit_account_id"]], counters[row["credit_account_id"]]
        if row["status"] == "posted":
            debit["debits_posted"] += row["posted_amount"]
            credit["credits_posted"] += row["posted_amount"]
        elif row["status"] == "pending":
            debit["debits_pending"] += row["amount"]
            credit["credits_pending"] += row["amount"]
    return counters


async def _get(http: aiohttp.ClientSession, url: str, token: str) -> Any:
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200, (url, response.status, await response.text())
        return await response.json()


async def accounts_match(
    http: aiohttp.ClientSession, base_url: str, tenants: list[LoadTenant], stored: dict[Key, asyncpg.Record]
) -> list[str]:
    """Counters and history of every account, read through the gateway, against the stored transfers."""
    problems: list[str] = []
    counters = expected_counters(stored)
    touching: dict[str, set[str]] = defaultdict(set)
    for row in stored.values():
        touching[row["debit_account_id"]].add(row["id"])
        touching[row["credit_account_id"]].add(row["id"])
    for tenant in tenants:
        for account_id in tenant.accounts():
            account = await _get(http, f"{base_url}/v1/accounts/{account_id}", tenant.token)
            got = {
                name: account[name] for name in ("debits_posted", "credits_posted", "debits_pending", "credits_pending")
            }
            want = {name: counters[account_id][name] for name in got}
            if got != want:
                problems.append(f"account {account_id}: counters {got}, transfers sum to {want}")
            history: list[str] = []
            cursor = None
            while True:
                query = f"?limit=1000&cursor={cursor}" if cursor else "?limit=1000"
                page = await _get(http, f"{base_url}/v1/accounts/{account_id}/transfers{query}", tenant.token)
                history += [t["id"] for t in page["data"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            twice = [i for i, n in Counter(history).items() if n > 1]
            if twice:
                problems.append(f"account {account_id}: history lists {twice} more than once")
            if set(history) != touching[account_id]:
                problems.append(
                    f"account {account_id}: history has {len(set(history))} transfers, "
                    f"{len(touching[account_id])} stored touch it"
                )
    return problems
