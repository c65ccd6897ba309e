"""The ledger model under contention, through both ledger processes at once (one grouped, one
direct, one database): parallel reversals never exceed the original, a close racing transfers
refuses one side, expected_versions elects exactly one writer. Every loop is bounded; nothing is
timed. Afterwards the verifier finds nothing wrong with the tenant."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import aiohttp
import asyncpg

from services.ledger.verify import verify
from tests.ledger.conftest import client_for
from tests.ledger.model_support import (
    action,
    credit,
    debit,
    fund,
    get_account,
    new_id,
    patch,
    reverse,
    transaction,
)
from tests.support.http import ApiClient, Reply
from tests.support.processes import ServiceProcess

ROUNDS = 4


def clients_for(ledger_processes: dict[str, ServiceProcess], http: aiohttp.ClientSession) -> list[ApiClient]:
    tenant = str(uuid.uuid4())
    return [client_for(http, p, tenant) for p in ledger_processes.values()]


async def assert_verified(db: asyncpg.Connection, tenant: str) -> None:
    report = await verify(db)
    mine = [d for d in report.discrepancies if tenant in d["detail"]]
    assert not mine, mine


async def test_parallel_reversals_never_exceed_the_original(
    ledger_processes: dict[str, ServiceProcess], http: aiohttp.ClientSession, db: asyncpg.Connection
) -> None:
    clients = clients_for(ledger_processes, http)
    tenant = clients[0].headers["X-Tenant-Id"]
    setup = clients[0]
    a, b = await setup.create_account(), await setup.create_account()
    rng = random.Random(20261203)
    for round_ in range(ROUNDS):
        original = await setup.transfer(a["id"], b["id"], 1_000)
        assert original.status == 201
        oid = original.body["id"]
        # 30 reversals asking 1,500 in all, a few with no amount (everything left), through both processes.
        asks: list[int | None] = [50] * 30 if round_ == 0 else [rng.randint(1, 100) for _ in range(30)]
        if round_ >= 2:
            for i in rng.sample(range(30), 3):
                asks[i] = None
        bodies = [{"id": new_id(), **({} if ask is None else {"amount": ask})} for ask in asks]
        replies = await asyncio.gather(
            *(clients[i % 2].call("POST", f"/v1/transfers/{oid}/reverse", body) for i, body in enumerate(bodies))
        )
        accepted = [r for r in replies if r.status == 201]
        for reply in replies:
            assert reply.status in (201, 422), reply.body
            if reply.status == 422:
                assert reply.code == "amount_exceeds_reversible", reply.body
        total = sum(r.body["amount"] for r in accepted)
        got = (await setup.call("GET", f"/v1/transfers/{oid}")).body
        assert total <= 1_000
        assert got["reversed_amount"] == total
        if round_ == 0:
            assert len(accepted) == 20  # equal asks: exactly the first 20 fit, whatever the order
        for reply in accepted:
            assert (reply.body["reverses"], reply.body["debit_account_id"]) == (oid, b["id"])
        # Each accepted reversal replays to itself; each refused one was not stored.
        for body, reply in zip(bodies, replies, strict=True):
            again = await clients[1].call("GET", f"/v1/transfers/{body['id']}")
            assert again.status == (200 if reply.status == 201 else 404)
    got_a, got_b = await get_account(setup, a), await get_account(setup, b)
    assert got_a["debits_posted"] - got_a["credits_posted"] == got_b["credits_posted"] - got_b["debits_posted"]
    await assert_verified(db, tenant)


async def test_transaction_reversed_at_most_once_under_contention(
    ledger_processes: dict[str, ServiceProcess], http: aiohttp.ClientSession, db: asyncpg.Connection
) -> None:
    clients = clients_for(ledger_processes, http)
    setup = clients[0]
    a, b, c = [await setup.create_account() for _ in range(3)]
    for _ in range(ROUNDS):
        original = await transaction(setup, [debit(a, 10), credit(b, 7), credit(c, 3)])
        assert original.status == 201
        oid = original.body["id"]
        replies = await asyncio.gather(
            *(clients[i % 2].call("POST", f"/v1/transactions/{oid}/reverse", {"id": new_id()}) for i in range(12))
        )
        assert sorted(r.status for r in replies) == [201] + [422] * 11, [r.body for r in replies]
        assert {r.code for r in replies if r.status == 422} == {"amount_exceeds_reversible"}
        winner = next(r for r in replies if r.status == 201)
        assert (await setup.call("GET", f"/v1/transactions/{oid}")).body["reversed_by"] == [winner.body["id"]]
    for account in (a, b, c):
        assert (await get_account(setup, account))["balances"]["posted"] == 0
    await assert_verified(db, setup.headers["X-Tenant-Id"])


async def test_close_racing_inbound_transfers_refuses_one_side(
    ledger_processes: dict[str, ServiceProcess], http: aiohttp.ClientSession, db: asyncpg.Connection
) -> None:
    """An empty account closed while money is sent to it: if the close wins, every transfer and
    transaction to it is refused with account_closed; if any arrives first, the close is refused
    with account_not_empty and every one of them is applied."""
    clients = clients_for(ledger_processes, http)
    setup = clients[0]
    source = await setup.create_account()
    outcomes = set()
    for round_ in range(ROUNDS * 2):
        target = await setup.create_account()
        senders: list[Any] = []
        for i in range(10):
            client = clients[i % 2]
            if i % 3 == 0:
                senders.append(transaction(client, [debit(source, 2), credit(target, 2)]))
            else:
                senders.append(client.transfer(source["id"], target["id"], 2, pending=i % 4 == 1))
        close_at = round_ % 11
        calls = [
            *senders[:close_at],
            action(clients[round_ % 2], "accounts", target["id"], "close"),
            *senders[close_at:],
        ]
        replies: list[Reply] = list(await asyncio.gather(*calls))
        closed = replies.pop(close_at)
        got = await get_account(setup, target)
        if closed.status == 200:
            outcomes.add("close won")
            assert all((r.status, r.code) == (422, "account_closed") for r in replies), [r.body for r in replies]
            assert (got["status"], got["version"]) == ("closed", 1)
            assert [got[k] for k in ("debits_posted", "credits_posted", "debits_pending", "credits_pending")] == [0] * 4
        else:
            outcomes.add("close refused")
            assert (closed.status, closed.code) == (422, "account_not_empty"), closed.body
            assert all(r.status == 201 for r in replies), [r.body for r in replies]
            assert got["status"] == "open"
            assert got["credits_posted"] + got["credits_pending"] == 20
            assert got["version"] == 10
    assert outcomes  # which side wins is the scheduler's business; both must be consistent
    await assert_verified(db, setup.headers["X-Tenant-Id"])


async def test_close_racing_the_transfers_that_empty_it(
    ledger_processes: dict[str, ServiceProcess], http: aiohttp.ClientSession, db: asyncpg.Connection
) -> None:
    """The close succeeds only once every outbound transfer has emptied the account; no transfer is
    ever refused (the account is never closed while it holds money)."""
    clients = clients_for(ledger_processes, http)
    setup = clients[0]
    sink = await setup.create_account()
    for round_ in range(ROUNDS):
        target = await setup.create_account(flags={"debits_must_not_exceed_credits": True})
        await fund(setup, target, 50)
        transfers = [clients[i % 2].transfer(target["id"], sink["id"], 10) for i in range(5)]
        close = action(clients[round_ % 2], "accounts", target["id"], "close")
        replies = await asyncio.gather(*transfers[:round_], close, *transfers[round_:])
        closed = replies[round_]
        moved = [r for i, r in enumerate(replies) if i != round_]
        assert all(r.status == 201 for r in moved), [r.body for r in moved]
        got = await get_account(setup, target)
        if closed.status == 200:
            assert got["status"] == "closed"
        else:
            assert (closed.status, closed.code) == (422, "account_not_empty"), closed.body
            assert got["status"] == "open"
        assert (got["debits_posted"], got["credits_posted"]) == (50, 50)
        # Either way it is empty now: closing again ends closed.
        assert (await action(setup, "accounts", target["id"], "close")).body["status"] == "closed"
    await assert_verified(db, setup.headers["X-Tenant-Id"])


async def test_expected_versions_elect_exactly_one_writer(
    ledger_processes: dict[str, ServiceProcess], http: aiohttp.ClientSession, db: asyncpg.Connection
) -> None:
    clients = clients_for(ledger_processes, http)
    setup = clients[0]
    a, b = await setup.create_account(), await setup.create_account()
    for round_ in range(ROUNDS):
        v = (await get_account(setup, a))["version"]
        writers = []
        for i in range(20):
            client = clients[i % 2]
            condition = {a["id"]: v}
            kind = (i + round_) % 4
            if kind == 0:
                writers.append(client.transfer(a["id"], b["id"], 1, expected_versions=condition))
            elif kind == 1:
                writers.append(transaction(client, [debit(b, 1), credit(a, 1)], expected_versions=condition))
            elif kind == 2:
                writers.append(
                    patch(client, a, {"metadata": {"writer": f"{round_}-{i}"}, "expected_versions": condition})
                )
            else:
                body = {
                    "transfers": [
                        {
                            "id": new_id(),
                            "debit_account_id": b["id"],
                            "credit_account_id": a["id"],
                            "amount": 1,
                            "currency": "USD",
                            "expected_versions": condition,
                        }
                    ],
                    "atomic": True,
                }
                writers.append(client.call("POST", "/v1/transfers/batch", body))
        replies = await asyncio.gather(*writers)
        winners = [r for r in replies if r.status in (200, 201)]
        losers = [r for r in replies if r.status not in (200, 201)]
        assert len(winners) == 1, [(r.status, r.body) for r in replies]
        for reply in losers:
            assert reply.status == 422, reply.body
            assert reply.code in ("version_mismatch", "batch_failed"), reply.body
            if reply.code == "batch_failed":
                assert [e["code"] for e in reply.body["errors"]] == ["version_mismatch"]
        assert (await get_account(setup, a))["version"] == v + 1
    await assert_verified(db, setup.headers["X-Tenant-Id"])


async def test_versions_equal_the_number_of_changes_under_mixed_load(
    ledger_processes: dict[str, ServiceProcess], http: aiohttp.ClientSession, db: asyncpg.Connection
) -> None:
    """Transfers, transactions, freezes, unfreezes and PATCHes on a few hot accounts at once:
    each account's version ends equal to the number of accepted operations that changed it."""
    clients = clients_for(ledger_processes, http)
    setup = clients[0]
    hot = [await setup.create_account(flags={"debits_must_not_exceed_credits": True}) for _ in range(5)]
    source = await setup.create_account()
    changes: dict[str, int] = {h["id"]: 0 for h in hot}
    for account in hot:
        await fund(setup, account, 200)
        changes[account["id"]] += 1
    rng = random.Random(11)
    plan: list[tuple[str, Any]] = []
    for _ in range(60):
        x, y = rng.sample(hot, 2)
        roll = rng.random()
        if roll < 0.5:
            plan.append(("transfer", (x, y, rng.randint(1, 40))))
        elif roll < 0.8:
            plan.append(("transaction", (x, y, rng.randint(2, 40))))
        elif roll < 0.9:
            # Only one of the five is ever frozen, so the others keep moving whatever the order.
            plan.append(("freeze" if rng.random() < 0.5 else "unfreeze", hot[0]))
        else:
            plan.append(("patch", (x, rng.randint(0, 3))))

    async def run(i: int, kind: str, arg: Any) -> tuple[str, Any, Reply]:
        client = clients[i % 2]
        if kind == "transfer":
            x, y, n = arg
            return kind, arg, await client.transfer(x["id"], y["id"], n)
        if kind == "transaction":
            x, y, n = arg
            return kind, arg, await transaction(client, [debit(x, n), credit(y, n - 1), credit(source, 1)])
        if kind in ("freeze", "unfreeze"):
            return kind, arg, await action(client, "accounts", arg["id"], kind)
        x, limit = arg
        return kind, arg, await patch(client, x, {"overdraft_limit": limit})

    results = await asyncio.gather(*(run(i, kind, arg) for i, (kind, arg) in enumerate(plan)))
    moved = 0
    for kind, arg, reply in results:
        assert reply.status in (200, 201, 422), reply.body
        if reply.status == 422:
            assert reply.code in ("account_frozen", "exceeds_credits"), reply.body
        elif kind in ("transfer", "transaction"):
            moved += 1
            for account in arg[:2]:
                changes[account["id"]] += 1
    # Freezes, unfreezes and PATCHes change the version only when they change something, which
    # depends on the order they were applied in: they bound it.
    for account in hot:
        lifecycle = sum(
            1
            for kind, arg, _ in results
            if kind not in ("transfer", "transaction") and (arg if kind != "patch" else arg[0])["id"] == account["id"]
        )
        got = await get_account(setup, account)
        assert changes[account["id"]] <= got["version"] <= changes[account["id"]] + lifecycle, (account, got)
    # How many moved depends on where the freezes landed (possibly none): the versions above and
    # the verifier below judge whatever did.
    assert moved <= len(plan)
    await assert_verified(db, setup.headers["X-Tenant-Id"])


async def test_large_batches_and_model_operations_together_keep_versions_and_entries(
    ledger_processes: dict[str, ServiceProcess], http: aiohttp.ClientSession, db: asyncpg.Connection
) -> None:
    """Batches above the single-statement document size (the array write path) racing
    transactions, reversals, PATCHes and freezes on the same accounts: every version, entry and
    counter still verifies, and each account's version counts exactly its changes."""
    clients = clients_for(ledger_processes, http)
    setup = clients[0]
    hot = [await setup.create_account() for _ in range(4)]
    side = await setup.create_account()
    seed = await setup.transfer(hot[0]["id"], hot[1]["id"], 1_000)
    assert seed.status == 201
    rng = random.Random(7)

    def batch(conditioned: bool) -> dict[str, Any]:
        items = []
        for _ in range(150):
            x, y = rng.sample(hot, 2)
            items.append(
                {
                    "id": new_id(),
                    "debit_account_id": x["id"],
                    "credit_account_id": y["id"],
                    "amount": 1,
                    "currency": "USD",
                }
            )
        if conditioned:  # a stale expected version: refused, the rest applied
            items[75]["expected_versions"] = {items[75]["debit_account_id"]: 0}
        items.append(
            {
                "id": new_id(),
                "debit_account_id": hot[2]["id"],
                "credit_account_id": side["id"],
                "amount": 1,
                "currency": "USD",
            }
        )
        return {"transfers": items}

    calls = [
        clients[0].call("POST", "/v1/transfers/batch", batch(True)),
        clients[1].call("POST", "/v1/transfers/batch", batch(False)),
        transaction(clients[0], [debit(hot[0], 9), credit(hot[1], 4), credit(hot[2], 5)]),
        reverse(clients[1], seed.body["id"], amount=100),
        patch(clients[0], hot[3], {"metadata": {"round": "1"}}),
        action(clients[1], "accounts", side["id"], "freeze"),
        clients[0].call("POST", "/v1/transfers/batch", batch(False)),
    ]
    replies = await asyncio.gather(*calls)
    for reply in replies:
        assert reply.status in (200, 201), reply.body
    statuses = [r["status"] for r in replies[0].body["results"]]
    assert statuses[75] == 422 and replies[0].body["results"][75]["error"]["code"] == "version_mismatch"
    for reply in (replies[0], replies[1], replies[6]):
        assert set(r["status"] for r in reply.body["results"][:-1]) <= {201, 422}
        last = reply.body["results"][-1]
        assert last["status"] in (201, 422) and (last["status"] == 201 or last["error"]["code"] == "account_frozen")
    await assert_verified(db, setup.headers["X-Tenant-Id"])
    entries = await db.fetchval(
        "SELECT count(*) FROM account_entries WHERE tenant_id = $1", uuid.UUID(setup.headers["X-Tenant-Id"])
    )
    applied = sum(
        1 for reply in (replies[0], replies[1], replies[6]) for r in reply.body["results"] if r["status"] == 201
    )
    # Two entries per applied batch item, the seed and the reversal; three for the transaction.
    assert entries == 2 * applied + 2 + 2 + 3
