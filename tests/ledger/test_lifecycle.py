"""Account lifecycle, overdraft limits and versions (docs/api.md section 10): freeze, unfreeze,
close, PATCH, expected_versions on every kind of write. Run once per write path."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest

from cli.launcher import drop_database
from cli.local_services import with_database
from services.ledger.migrate import migrate
from shared.settings import get_settings
from tests.ledger.conftest import client_for, ledger_env
from tests.ledger.model_support import (
    MAX,
    action,
    credit,
    debit,
    fund,
    get_account,
    new_id,
    patch,
    problem,
    reverse,
    state,
    transaction,
    version,
)
from tests.support.http import ApiClient
from tests.support.processes import ServiceProcess, free_port


async def test_new_account_is_open_at_version_0_without_limit(ledger: ApiClient) -> None:
    account = await ledger.create_account()
    assert (account["status"], account["overdraft_limit"], account["version"]) == ("open", 0, 0)
    limited = await ledger.create_account(overdraft_limit=500, flags={"debits_must_not_exceed_credits": True})
    assert (limited["overdraft_limit"], limited["version"]) == (500, 0)
    assert limited["balances"] == {"posted": 0, "pending": 0, "available": 500}
    assert (await ledger.create_account(overdraft_limit=MAX))["overdraft_limit"] == MAX


@pytest.mark.parametrize("limit", [-1, MAX + 1, 2**64, 1.5, "5", True, None])
async def test_bad_overdraft_limit_is_400(ledger: ApiClient, limit: Any) -> None:
    account_id = new_id()
    reply = await ledger.call("POST", "/v1/accounts", {"id": account_id, "currency": "USD", "overdraft_limit": limit})
    problem(reply, 400, "invalid_request")
    problem(await ledger.call("GET", f"/v1/accounts/{account_id}"), 404, "account_not_found")
    account = await ledger.create_account()
    problem(await patch(ledger, account, {"overdraft_limit": limit}), 400, "invalid_request")
    assert await state(ledger, account) == [(0, 0, 0, 0, 0, "open", 0)]


async def test_account_replay_compares_with_the_values_given_at_creation(ledger: ApiClient) -> None:
    account_id = new_id()
    body = {"id": account_id, "currency": "USD", "overdraft_limit": 10, "metadata": {"owner": "alice"}}
    assert (await ledger.call("POST", "/v1/accounts", body)).status == 201
    assert (await patch(ledger, account_id, {"overdraft_limit": 99, "metadata": {"owner": "bob"}})).status == 200
    replay = await ledger.call("POST", "/v1/accounts", body)
    assert replay.status == 200, replay.body
    assert (replay.body["overdraft_limit"], replay.body["metadata"], replay.body["version"]) == (
        99,
        {"owner": "bob"},
        1,
    )
    problem(await ledger.call("POST", "/v1/accounts", {**body, "overdraft_limit": 99}), 409, "id_conflict")
    problem(await ledger.call("POST", "/v1/accounts", {**body, "overdraft_limit": 0}), 409, "id_conflict")
    # Without the limit: the default 0 differs from the 10 given at creation.
    no_limit = {k: v for k, v in body.items() if k != "overdraft_limit"}
    problem(await ledger.call("POST", "/v1/accounts", no_limit), 409, "id_conflict")
    plain_id = new_id()
    assert (await ledger.call("POST", "/v1/accounts", {"id": plain_id, "currency": "USD"})).status == 201
    same = await ledger.call("POST", "/v1/accounts", {"id": plain_id, "currency": "USD", "overdraft_limit": 0})
    assert same.status == 200


async def test_version_counts_the_changes(ledger: ApiClient) -> None:
    a, b, c = [await ledger.create_account() for _ in range(3)]
    assert (await ledger.transfer(a["id"], b["id"], 5)).status == 201
    assert [await version(ledger, x) for x in (a, b, c)] == [1, 1, 0]
    held = await ledger.transfer(a["id"], b["id"], 5, pending=True)
    assert [await version(ledger, x) for x in (a, b)] == [2, 2]
    assert (await action(ledger, "transfers", held.body["id"], "post", {"amount": 2})).status == 200
    assert [await version(ledger, x) for x in (a, b)] == [3, 3]
    held = await ledger.transfer(a["id"], b["id"], 5, pending=True)
    assert (await action(ledger, "transfers", held.body["id"], "void")).status == 200
    assert [await version(ledger, x) for x in (a, b)] == [5, 5]
    # Replays and refusals change nothing.
    tid = new_id()
    assert (await ledger.transfer(a["id"], c["id"], 1, id=tid)).status == 201
    assert (await ledger.transfer(a["id"], c["id"], 1, id=tid)).status == 200
    assert (await ledger.transfer(a["id"], c["id"], 1, currency="EUR")).status == 422
    assert [await version(ledger, x) for x in (a, b, c)] == [6, 5, 1]
    # A transaction touching an account in several entries is one change.
    assert (
        await transaction(ledger, [debit(a, 1), debit(a, 2), credit(c, 3), debit(c, 1), credit(b, 1)])
    ).status == 201
    assert [await version(ledger, x) for x in (a, b, c)] == [7, 6, 2]
    # Metadata, limit, status.
    assert (await patch(ledger, c, {"metadata": {"k": "v"}})).body["version"] == 3
    assert (await patch(ledger, c, {"overdraft_limit": 5})).body["version"] == 4
    assert (await patch(ledger, c, {"metadata": {"k": "w"}, "overdraft_limit": 6})).body["version"] == 5
    # A PATCH that changes nothing is not a change.
    assert (await patch(ledger, c, {})).body["version"] == 5
    assert (await patch(ledger, c, {"metadata": {"k": "w"}})).body["version"] == 5
    assert (await action(ledger, "accounts", c["id"], "freeze")).body["version"] == 6
    assert (await action(ledger, "accounts", c["id"], "freeze")).body["version"] == 6
    assert (await action(ledger, "accounts", c["id"], "unfreeze")).body["version"] == 7
    assert (await action(ledger, "accounts", c["id"], "unfreeze")).body["version"] == 7
    # A reversal changes both accounts once.
    original = await ledger.transfer(b["id"], a["id"], 4)
    assert (await reverse(ledger, original.body["id"], amount=1)).status == 201
    assert [await version(ledger, x) for x in (a, b)] == [9, 8]


async def test_freeze_refuses_new_movements_until_unfrozen(ledger: ApiClient) -> None:
    a, b, c = [await ledger.create_account() for _ in range(3)]
    await fund(ledger, a, 100)
    frozen = await action(ledger, "accounts", a["id"], "freeze")
    assert frozen.status == 200 and frozen.body["status"] == "frozen"
    assert {k: v for k, v in frozen.body.items() if k not in ("status", "version")} == {
        k: v for k, v in (await get_account(ledger, a)).items() if k not in ("status", "version")
    }
    again = await action(ledger, "accounts", a["id"], "freeze")
    assert again.status == 200 and again.body == frozen.body
    before = await state(ledger, a, b, c)
    problem(await ledger.transfer(a["id"], b["id"], 1), 422, "account_frozen", field="debit_account_id")
    problem(await ledger.transfer(b["id"], a["id"], 1), 422, "account_frozen", field="credit_account_id")
    problem(await ledger.transfer(a["id"], b["id"], 1, pending=True), 422, "account_frozen")
    problem(await transaction(ledger, [debit(b, 2), credit(c, 1), credit(a, 1)]), 422, "account_frozen")
    batch = await ledger.call(
        "POST",
        "/v1/transfers/batch",
        {
            "transfers": [
                {
                    "id": new_id(),
                    "debit_account_id": b["id"],
                    "credit_account_id": c["id"],
                    "amount": 1,
                    "currency": "USD",
                },
                {
                    "id": new_id(),
                    "debit_account_id": b["id"],
                    "credit_account_id": a["id"],
                    "amount": 1,
                    "currency": "USD",
                },
            ]
        },
    )
    assert [r["status"] for r in batch.body["results"]] == [201, 422]
    assert batch.body["results"][1]["error"]["code"] == "account_frozen"
    after = await state(ledger, a, b, c)
    assert after[0] == before[0]
    # Metadata can still change on a frozen account.
    assert (await patch(ledger, a, {"metadata": {"note": "under review"}})).status == 200
    unfrozen = await action(ledger, "accounts", a["id"], "unfreeze")
    assert unfrozen.status == 200 and unfrozen.body["status"] == "open"
    assert (await ledger.transfer(a["id"], b["id"], 1)).status == 201
    for verb in ("freeze", "unfreeze", "close"):
        problem(await action(ledger, "accounts", new_id(), verb), 404, "account_not_found")


async def test_pending_movements_of_a_frozen_account_may_post_void_or_expire(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    to_post = await ledger.transfer(a["id"], b["id"], 10, pending=True)
    to_void = await ledger.transfer(a["id"], b["id"], 20, pending=True)
    to_expire = await ledger.transfer(b["id"], a["id"], 40, pending=True, timeout_seconds=1)
    tx_post = await transaction(ledger, [debit(a, 3), credit(b, 3)], pending=True)
    tx_void = await transaction(ledger, [debit(b, 4), credit(a, 4)], pending=True)
    assert (await action(ledger, "accounts", a["id"], "freeze")).status == 200
    assert (await action(ledger, "accounts", b["id"], "freeze")).status == 200
    assert (await action(ledger, "transfers", to_post.body["id"], "post", {"amount": 6})).status == 200
    assert (await action(ledger, "transfers", to_void.body["id"], "void")).status == 200
    assert (await action(ledger, "transactions", tx_post.body["id"], "post")).status == 200
    assert (await action(ledger, "transactions", tx_void.body["id"], "void")).status == 200
    status = "pending"
    for _ in range(200):
        status = (await ledger.call("GET", f"/v1/transfers/{to_expire.body['id']}")).body["status"]
        if status == "expired":
            break
        await asyncio.sleep(0.05)
    assert status == "expired"
    got = await get_account(ledger, a)
    assert (got["debits_posted"], got["credits_posted"], got["debits_pending"], got["credits_pending"]) == (9, 0, 0, 0)
    assert got["status"] == "frozen"
    # Reversing what was posted is a new movement: refused while frozen.
    problem(await reverse(ledger, to_post.body["id"]), 422, "account_frozen")


async def test_close_needs_an_empty_account_and_is_final(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    await fund(ledger, a, 100)
    before = await state(ledger, a)
    problem(await action(ledger, "accounts", a["id"], "close"), 422, "account_not_empty")
    assert (await ledger.transfer(a["id"], b["id"], 100)).status == 201
    # Posted balance zero but a reservation outstanding, either way round.
    held = await ledger.transfer(a["id"], b["id"], 1, pending=True)
    problem(await action(ledger, "accounts", a["id"], "close"), 422, "account_not_empty")
    assert (await action(ledger, "transfers", held.body["id"], "void")).status == 200
    incoming = await ledger.transfer(b["id"], a["id"], 1, pending=True)
    problem(await action(ledger, "accounts", a["id"], "close"), 422, "account_not_empty")
    assert (await action(ledger, "transfers", incoming.body["id"], "void")).status == 200
    assert (await state(ledger, a))[0][:4] == (100, 100, 0, 0)
    assert before != await state(ledger, a)

    closed = await action(ledger, "accounts", a["id"], "close")
    assert closed.status == 200 and closed.body["status"] == "closed", closed.body
    v = closed.body["version"]
    again = await action(ledger, "accounts", a["id"], "close")
    assert again.status == 200 and again.body == closed.body
    assert (await get_account(ledger, a)) == closed.body
    frozen_account = await ledger.create_account()
    assert (await action(ledger, "accounts", frozen_account["id"], "freeze")).status == 200
    assert (await action(ledger, "accounts", frozen_account["id"], "close")).body["status"] == "closed"

    before = await state(ledger, a, b)
    problem(await ledger.transfer(a["id"], b["id"], 1), 422, "account_closed", field="debit_account_id")
    problem(await ledger.transfer(b["id"], a["id"], 1), 422, "account_closed", field="credit_account_id")
    problem(await ledger.transfer(b["id"], a["id"], 1, pending=True), 422, "account_closed")
    problem(await transaction(ledger, [debit(b, 1), credit(a, 1)]), 422, "account_closed")
    problem(await action(ledger, "accounts", a["id"], "freeze"), 422, "account_closed")
    problem(await action(ledger, "accounts", a["id"], "unfreeze"), 422, "account_closed")
    problem(await patch(ledger, a, {"metadata": {"k": "v"}}), 422, "account_closed")
    problem(await patch(ledger, a, {"overdraft_limit": 1}), 422, "account_closed")
    assert await state(ledger, a, b) == before
    assert (await get_account(ledger, a))["version"] == v


async def test_transfer_rule_order_with_lifecycle_and_versions(ledger: ApiClient) -> None:
    """same_account, account_not_found, currency_mismatch, account_closed (debit first),
    account_frozen (debit first), version_mismatch, exceeds_credits, exceeds_debits, overflow."""
    closed_1, closed_2, frozen_1, frozen_2 = [await ledger.create_account() for _ in range(4)]
    for account in (closed_1, closed_2):
        assert (await action(ledger, "accounts", account["id"], "close")).status == 200
    for account in (frozen_1, frozen_2):
        assert (await action(ledger, "accounts", account["id"], "freeze")).status == 200
    eur = await ledger.create_account("EUR")
    guarded = await ledger.create_account(flags={"debits_must_not_exceed_credits": True})
    capped = await ledger.create_account(flags={"credits_must_not_exceed_debits": True})
    plain = await ledger.create_account()
    ghost = new_id()
    everyone = (closed_1, closed_2, frozen_1, frozen_2, eur, guarded, capped, plain)
    before = await state(ledger, *everyone)
    cases: list[tuple[str, str, dict[str, Any], int, str, str | None]] = [
        (closed_1["id"], closed_1["id"], {}, 422, "same_account", None),
        (closed_1["id"], ghost, {}, 404, "account_not_found", "credit_account_id"),
        (ghost, frozen_1["id"], {}, 404, "account_not_found", "debit_account_id"),
        (closed_1["id"], eur["id"], {}, 422, "currency_mismatch", None),
        (closed_1["id"], closed_2["id"], {}, 422, "account_closed", "debit_account_id"),
        (closed_1["id"], frozen_1["id"], {}, 422, "account_closed", "debit_account_id"),
        (frozen_1["id"], frozen_2["id"], {}, 422, "account_frozen", "debit_account_id"),
        (plain["id"], frozen_2["id"], {}, 422, "account_frozen", "credit_account_id"),
        (frozen_1["id"], guarded["id"], {"expected_versions": {guarded["id"]: 7}}, 422, "account_frozen", None),
        (guarded["id"], capped["id"], {"expected_versions": {capped["id"]: 7}}, 422, "version_mismatch", None),
        (guarded["id"], capped["id"], {"expected_versions": {guarded["id"]: 0}}, 422, "exceeds_credits", None),
        (plain["id"], capped["id"], {"expected_versions": {capped["id"]: 0}}, 422, "exceeds_debits", None),
    ]
    for debit_id, credit_id, fields, status, code, field in cases:
        reply = await ledger.transfer(debit_id, credit_id, 10, **fields)
        problem(reply, status, code, field=field)
    assert await state(ledger, *everyone) == before


async def test_account_closed_is_checked_before_account_frozen_whichever_side(ledger: ApiClient) -> None:
    """The decided order is account_closed (debit first), then account_frozen (debit first): a
    frozen debit account and a closed credit account answer account_closed."""
    frozen, closed = await ledger.create_account(), await ledger.create_account()
    assert (await action(ledger, "accounts", frozen["id"], "freeze")).status == 200
    assert (await action(ledger, "accounts", closed["id"], "close")).status == 200
    before = await state(ledger, frozen, closed)
    reply = await ledger.transfer(frozen["id"], closed["id"], 10)
    problem(reply, 422, "account_closed", field="credit_account_id")
    assert await state(ledger, frozen, closed) == before


async def test_exceeds_debits_is_checked_before_overflow(ledger: ApiClient) -> None:
    """docs/api.md section 5: exceeds_credits, exceeds_debits, overflow, whichever account each
    concerns: a capped credit account answers exceeds_debits even when the debit account would
    also overflow."""
    maxed, sink = await ledger.create_account(), await ledger.create_account()
    capped = await ledger.create_account(flags={"credits_must_not_exceed_debits": True})
    assert (await ledger.transfer(maxed["id"], sink["id"], MAX)).status == 201
    before = await state(ledger, maxed, capped)
    problem(await ledger.transfer(maxed["id"], capped["id"], 1), 422, "exceeds_debits")
    assert await state(ledger, maxed, capped) == before


async def test_lifecycle_operations_and_transfers_in_one_batch_of_requests(ledger: ApiClient) -> None:
    """Freeze, PATCH and close queued with transfers (concurrent requests, possibly one group) each
    see the state the operations before them left; the end state is one serial order's."""
    a, b = await ledger.create_account(), await ledger.create_account()
    await fund(ledger, a, 30)
    replies = await asyncio.gather(
        *(ledger.transfer(a["id"], b["id"], 1) for _ in range(10)),
        action(ledger, "accounts", a["id"], "freeze"),
        *(ledger.transfer(a["id"], b["id"], 1) for _ in range(10)),
    )
    moved = [r for r in replies[:10] + replies[11:] if r.status == 201]
    refused = [r for r in replies[:10] + replies[11:] if r.status != 201]
    assert replies[10].status == 200
    assert all(r.code == "account_frozen" for r in refused), [r.body for r in refused]
    got = await get_account(ledger, a)
    assert got["debits_posted"] == len(moved)
    assert got["version"] == 1 + len(moved) + 1  # funding, each transfer, the freeze


async def test_account_list_shows_each_status(ledger: ApiClient) -> None:
    a = await ledger.create_account()
    b = await ledger.create_account()
    assert (await action(ledger, "accounts", a["id"], "close")).status == 200
    assert (await action(ledger, "accounts", b["id"], "freeze")).status == 200
    listed = await ledger.call("GET", "/v1/accounts", params={"limit": "1000"})
    statuses = {x["id"]: x["status"] for x in listed.body["data"]}
    assert (statuses[a["id"]], statuses[b["id"]]) == ("closed", "frozen")


async def test_a_read_after_an_unswept_expiry_gives_the_version_writes_expect(http: aiohttp.ClientSession) -> None:
    """A reservation past its expires_at reads as released before the sweep has run (section 5);
    the version read with it must be the one a write conditioned on it is judged against, or a
    read-modify-write with expected_versions fails on a change the client was already shown.

    Its own database and one ledger process whose sweep is slow: no other process's sweep may
    release the reservation first (the suite's ledgers sweep the shared database every 0.2 s)."""
    base = get_settings().database.url
    name = f"test_unswept_{uuid.uuid4().hex[:10]}"
    database_url = with_database(base, name)
    await migrate(database_url)
    port = free_port()
    env = {**ledger_env(database_url, port, grouped=True), "EXPIRY_SWEEP_INTERVAL_SECONDS": "3600"}
    process = ServiceProcess("ledger", port, env)
    try:
        await asyncio.to_thread(process.start)
        ledger = client_for(http, process)
        a, b = await ledger.create_account(), await ledger.create_account()
        held = await ledger.transfer(a["id"], b["id"], 5, pending=True, timeout_seconds=1)
        assert held.status == 201
        got = await get_account(ledger, a)
        for _ in range(100):
            got = await get_account(ledger, a)
            if got["debits_pending"] == 0:
                break
            await asyncio.sleep(0.05)
        assert got["debits_pending"] == 0  # read as released, whether or not the sweep ran
        changed = await patch(ledger, a, {"metadata": {"k": "v"}, "expected_versions": {a["id"]: got["version"]}})
        assert changed.status == 200, changed.body
    finally:
        await asyncio.to_thread(process.stop)
        await drop_database(base, name)
