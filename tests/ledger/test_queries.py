"""Finding things (docs/api.md section 11) through the ledger's HTTP API: filtered lists of
transfers, transactions and accounts with cursor pages, an account's entries with running
balances, its statement (opening + totals = closing) and its balances at an instant."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from tests.ledger.conftest import client_for
from tests.support.http import ApiClient, Reply
from tests.support.processes import ServiceProcess

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def _id() -> str:
    return str(uuid.uuid4())


async def _ok(reply: Reply, status: int = 201) -> dict[str, Any]:
    assert reply.status == status, reply.body
    return dict(reply.body)


async def _transfer(ledger: ApiClient, debit: dict, credit: dict, amount: int, **fields: Any) -> dict[str, Any]:
    return await _ok(await ledger.transfer(debit["id"], credit["id"], amount, **fields))


async def _transaction(ledger: ApiClient, legs: list[tuple[dict, str, int]], **fields: Any) -> dict[str, Any]:
    entries = [{"account_id": a["id"], "direction": d, "amount": n, "currency": "USD"} for a, d, n in legs]
    return await _ok(await ledger.call("POST", "/v1/transactions", {"id": _id(), "entries": entries, **fields}))


async def _all(ledger: ApiClient, path: str, **params: str) -> list[dict[str, Any]]:
    """Every item of a list, fetched in pages of two (so the cursors are exercised)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await ledger.call("GET", path, params={**params, "limit": "2", **({"cursor": cursor} if cursor else {})})
        assert page.status == 200, page.body
        items += page.body["data"]
        cursor = page.body["next_cursor"]
        if cursor is None:
            return items


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in items]


async def _until_expired(ledger: ApiClient, transfer_id: str) -> None:
    """Until the transfer reads as expired, i.e. the ledger's clock is past its expires_at (15 s at most)."""
    deadline = time.monotonic() + 15
    while (status := (await _ok(await ledger.call("GET", f"/v1/transfers/{transfer_id}"), 200))["status"]) != "expired":
        assert status == "pending" and time.monotonic() < deadline, status
        await asyncio.sleep(0.05)


async def _entries_once_released(ledger: ApiClient, account: dict, transfer_id: str) -> list[dict[str, Any]]:
    """The account's entries once one of them releases ``transfer_id``'s reservation.

    That entry is written by the ledger's expiry sweeper, in its own transaction shortly after
    expires_at: on a busy machine it can take seconds. Polled for 15 s at most; the caller asserts
    the entries exactly, so a release that never comes (or comes twice) still fails."""
    deadline = time.monotonic() + 15
    while True:
        entries = await _all(ledger, f"/v1/accounts/{account['id']}/entries")
        released = any(e["kind"] == "pending_released" and e["source"]["id"] == transfer_id for e in entries)
        if released or time.monotonic() >= deadline:
            return entries
        await asyncio.sleep(0.05)


def _micro(stamp: str, delta: int) -> str:
    """``stamp`` (the contract's format) moved by ``delta`` microseconds."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(microseconds=delta)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


async def test_transfers_filtered_in_applied_order_with_cursors(ledger: ApiClient) -> None:
    a, b, c = [await ledger.create_account() for _ in range(3)]
    made = [
        await _transfer(ledger, a, b, 10, metadata={"order": "o1", "channel": "web"}),
        await _transfer(ledger, b, c, 20, metadata={"channel": "web"}),
        await _transfer(ledger, c, a, 30, pending=True),
        await _transfer(ledger, a, c, 40, metadata={"order": "o2", "channel": "pos"}),
        await _transfer(ledger, b, a, 50, pending=True),
    ]
    await _ok(await ledger.call("POST", f"/v1/transfers/{made[4]['id']}/void"), 200)
    ids = _ids(made)
    assert _ids(await _all(ledger, "/v1/transfers")) == ids
    assert _ids(await _all(ledger, "/v1/transfers", order="desc")) == ids[::-1]
    assert _ids(await _all(ledger, "/v1/transfers", account_id=a["id"])) == [ids[0], ids[2], ids[3], ids[4]]
    assert _ids(await _all(ledger, "/v1/transfers", account_id=a["id"], order="desc")) == [
        ids[4],
        ids[3],
        ids[2],
        ids[0],
    ]
    assert _ids(await _all(ledger, "/v1/transfers", status="pending")) == [ids[2]]
    assert _ids(await _all(ledger, "/v1/transfers", status="voided")) == [ids[4]]
    assert _ids(await _all(ledger, "/v1/transfers", status="posted")) == [ids[0], ids[1], ids[3]]
    assert _ids(await _all(ledger, "/v1/transfers", **{"metadata[channel]": "web"})) == ids[:2]
    both = {"metadata[channel]": "pos", "metadata[order]": "o2"}
    assert _ids(await _all(ledger, "/v1/transfers", **both)) == [ids[3]]
    assert await _all(ledger, "/v1/transfers", **{"metadata[channel]": "web", "metadata[order]": "o2"}) == []
    # created_from is inclusive, created_to exclusive.
    window = {"created_from": made[1]["created_at"], "created_to": made[3]["created_at"]}
    assert _ids(await _all(ledger, "/v1/transfers", **window)) == ids[1:3]
    combined = await _all(ledger, "/v1/transfers", account_id=c["id"], status="posted", order="desc", **window)
    assert _ids(combined) == [ids[1]]
    # The objects are those of GET /v1/transfers/{id}.
    single = await ledger.call("GET", f"/v1/transfers/{ids[0]}")
    assert (await _all(ledger, "/v1/transfers"))[0] == single.body
    # Another tenant sees none of them.
    other = ApiClient(ledger.session, ledger.base_url, {**ledger.headers, "X-Tenant-Id": _id()})
    assert await _all(other, "/v1/transfers") == []
    assert await _all(other, "/v1/transfers", account_id=a["id"]) == []


async def test_a_reservation_past_expiry_lists_as_expired(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    hold = await _transfer(ledger, a, b, 5, pending=True, timeout_seconds=1)
    assert _ids(await _all(ledger, "/v1/transfers", status="pending")) == [hold["id"]]
    await asyncio.sleep(1.1)
    assert await _all(ledger, "/v1/transfers", status="pending") == []
    expired = await _all(ledger, "/v1/transfers", status="expired")
    assert _ids(expired) == [hold["id"]] and expired[0]["status"] == "expired"


async def test_transactions_filtered_by_account_once_each(ledger: ApiClient) -> None:
    a, b, c = [await ledger.create_account() for _ in range(3)]
    # a is on two legs of the first transaction: it is listed once.
    first = await _transaction(ledger, [(a, "debit", 7), (b, "credit", 4), (a, "debit", 3), (c, "credit", 6)])
    second = await _transaction(ledger, [(b, "debit", 5), (c, "credit", 5)], metadata={"invoice": "i2"})
    third = await _transaction(ledger, [(c, "debit", 9), (a, "credit", 9)], pending=True)
    ids = [first["id"], second["id"], third["id"]]
    assert _ids(await _all(ledger, "/v1/transactions")) == ids
    assert _ids(await _all(ledger, "/v1/transactions", order="desc")) == ids[::-1]
    assert _ids(await _all(ledger, "/v1/transactions", account_id=a["id"])) == [ids[0], ids[2]]
    assert _ids(await _all(ledger, "/v1/transactions", account_id=a["id"], order="desc")) == [ids[2], ids[0]]
    page = await ledger.call("GET", "/v1/transactions", params={"account_id": a["id"], "limit": "1"})
    assert _ids(page.body["data"]) == [ids[0]] and page.body["next_cursor"]
    assert _ids(await _all(ledger, "/v1/transactions", account_id=b["id"], status="posted")) == ids[:2]
    assert _ids(await _all(ledger, "/v1/transactions", status="pending")) == [ids[2]]
    assert _ids(await _all(ledger, "/v1/transactions", **{"metadata[invoice]": "i2"})) == [ids[1]]
    since = await _all(ledger, "/v1/transactions", account_id=c["id"], created_from=second["created_at"])
    assert _ids(since) == ids[1:]
    single = await ledger.call("GET", f"/v1/transactions/{ids[0]}")
    assert (await _all(ledger, "/v1/transactions"))[0] == single.body
    assert await _all(ledger, "/v1/transactions", account_id=UNKNOWN) == []


async def test_accounts_by_status_and_metadata(ledger: ApiClient) -> None:
    gold = await ledger.create_account(metadata={"tier": "gold", "region": "eu"})
    basic = await ledger.create_account(metadata={"tier": "basic"})
    plain = await ledger.create_account()
    euro = await ledger.create_account("EUR", metadata={"tier": "gold"})
    await _ok(await ledger.call("POST", f"/v1/accounts/{basic['id']}/freeze"), 200)
    assert _ids(await _all(ledger, "/v1/accounts")) == _ids([gold, basic, plain, euro])
    assert _ids(await _all(ledger, "/v1/accounts", status="frozen")) == [basic["id"]]
    assert _ids(await _all(ledger, "/v1/accounts", status="open")) == _ids([gold, plain, euro])
    assert _ids(await _all(ledger, "/v1/accounts", **{"metadata[tier]": "gold"})) == _ids([gold, euro])
    gold_usd = await _all(ledger, "/v1/accounts", currency="USD", **{"metadata[tier]": "gold"})
    assert _ids(gold_usd) == [gold["id"]] and gold_usd[0]["status"] == "open"
    assert await _all(ledger, "/v1/accounts", status="closed") == []


async def _bad(ledger: ApiClient, path: str, params: dict[str, str] | list[tuple[str, str]], field: str) -> None:
    reply = await ledger.call("GET", path, params=params)  # type: ignore[arg-type]
    assert reply.status == 400, (path, params, reply.body)
    assert reply.code == "invalid_request" and reply.body["errors"][0]["field"] == field, reply.body


async def test_bad_list_parameters_are_400_naming_the_field(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    for _ in range(3):
        await _transfer(ledger, a, b, 1)
    for path in ("/v1/transfers", "/v1/transactions"):
        await _bad(ledger, path, {"account_id": "nope"}, "account_id")
        await _bad(ledger, path, {"status": "settled"}, "status")
        await _bad(ledger, path, {"order": "up"}, "order")
        await _bad(ledger, path, {"created_from": "yesterday"}, "created_from")
        await _bad(ledger, path, {"created_to": "2026-01-01T00:00:00"}, "created_to")
        await _bad(
            ledger, path, {"created_from": "2026-02-01T00:00:00Z", "created_to": "2026-01-01T00:00:00Z"}, "created_to"
        )
        for limit in ("0", "1001", "ten", "-1", "٣"):
            await _bad(ledger, path, {"limit": limit}, "limit")
        await _bad(ledger, path, {"cursor": "not-a-cursor"}, "cursor")
        await _bad(ledger, path, {"metadata[]": "x"}, "metadata[]")
        await _bad(ledger, path, {"metadata": "x"}, "metadata")
        await _bad(ledger, path, {f"metadata[{'k' * 65}]": "x"}, f"metadata[{'k' * 65}]")
        await _bad(ledger, path, [("status", "posted"), ("status", "voided")], "status")
    await _bad(ledger, "/v1/accounts", {"status": "pending"}, "status")
    await _bad(ledger, "/v1/accounts", {"currency": "usd"}, "currency")
    # A cursor opens only for its own list, tenant and filter set.
    page = await ledger.call("GET", "/v1/transfers", params={"limit": "1", "status": "posted"})
    cursor = page.body["next_cursor"]
    assert (
        cursor
        and (await ledger.call("GET", "/v1/transfers", params={"cursor": cursor, "status": "posted"})).status == 200
    )
    await _bad(ledger, "/v1/transfers", {"cursor": cursor}, "cursor")
    await _bad(ledger, "/v1/transfers", {"cursor": cursor, "status": "posted", "order": "desc"}, "cursor")
    await _bad(ledger, "/v1/transactions", {"cursor": cursor, "status": "posted"}, "cursor")
    await _bad(ledger, "/v1/accounts", {"cursor": cursor}, "cursor")
    other = ApiClient(ledger.session, ledger.base_url, {**ledger.headers, "X-Tenant-Id": _id()})
    await _bad(other, "/v1/transfers", {"cursor": cursor, "status": "posted"}, "cursor")


def _balances(normal: str, dp: int, cp: int, dpe: int, cpe: int, limit: int = 0) -> dict[str, int]:
    if normal == "debit":
        dp, cp, dpe, cpe = cp, dp, cpe, dpe
    return {"posted": cp - dp, "pending": cp + cpe - dp - dpe, "available": cp - dp - dpe + limit}


async def test_entries_carry_running_balances(ledger: ApiClient) -> None:
    a = await ledger.create_account(overdraft_limit=100)
    b = await ledger.create_account(normal_balance="debit")
    await _transfer(ledger, b, a, 50)  # a: credit 50 posted
    hold = await _transfer(ledger, a, b, 30, pending=True)  # a: debit 30 pending
    await _ok(await ledger.call("POST", f"/v1/transfers/{hold['id']}/post", {"amount": 20}), 200)
    await _ok(await ledger.call("PATCH", f"/v1/accounts/{a['id']}", {"overdraft_limit": 40}), 200)
    legs = await _transaction(ledger, [(a, "debit", 5), (b, "credit", 5)])
    entries = await _all(ledger, f"/v1/accounts/{a['id']}/entries")
    expected = [
        (1, "transfer", "posted", "credit", 50, (0, 50, 0, 0), 100),
        (2, "transfer", "pending", "debit", 30, (0, 50, 30, 0), 100),
        (3, "transfer", "pending_posted", "debit", 20, (20, 50, 10, 0), 100),
        (4, "transfer", "pending_released", "debit", 10, (20, 50, 0, 0), 100),
        (5, "transaction", "posted", "debit", 5, (25, 50, 0, 0), 40),
    ]
    got = [(e["seq"], e["source"]["type"], e["kind"], e["direction"], e["amount"], e["balances"]) for e in entries]
    assert got == [(s, t, k, d, n, _balances("credit", *c, lim)) for s, t, k, d, n, c, lim in expected]
    assert entries[0]["source"]["id"] != hold["id"] and entries[1]["source"]["id"] == hold["id"]
    assert entries[4]["source"]["id"] == legs["id"]
    # The last entry's balances are the account's.
    account = await ledger.call("GET", f"/v1/accounts/{a['id']}")
    assert entries[-1]["balances"] == account.body["balances"]
    debit_side = await _all(ledger, f"/v1/accounts/{b['id']}/entries")
    assert debit_side[0]["balances"] == _balances("debit", 50, 0, 0, 0)
    # from (inclusive) and to (exclusive) select by `at`; a cursor belongs to its window.
    window = await _all(ledger, f"/v1/accounts/{a['id']}/entries", **{"from": entries[1]["at"], "to": entries[4]["at"]})
    assert [e["seq"] for e in window] == [2, 3, 4]
    page = await ledger.call("GET", f"/v1/accounts/{a['id']}/entries", params={"limit": "1"})
    await _bad(
        ledger,
        f"/v1/accounts/{a['id']}/entries",
        {"cursor": page.body["next_cursor"], "to": entries[4]["at"]},
        "cursor",
    )
    await _bad(ledger, f"/v1/accounts/{b['id']}/entries", {"cursor": page.body["next_cursor"]}, "cursor")
    await _bad(ledger, f"/v1/accounts/{a['id']}/entries", {"from": "soon"}, "from")
    await _bad(ledger, f"/v1/accounts/{a['id']}/entries", {"limit": "0"}, "limit")
    await _bad(ledger, "/v1/accounts/nope/entries", {}, "account_id")
    for path in (f"/v1/accounts/{UNKNOWN}/entries", f"/v1/accounts/{UNKNOWN}/statement"):
        missing = await ledger.call("GET", path)
        assert missing.status == 404 and missing.code == "account_not_found"
    other = ApiClient(ledger.session, ledger.base_url, {**ledger.headers, "X-Tenant-Id": _id()})
    foreign = await other.call("GET", f"/v1/accounts/{a['id']}/entries")
    assert foreign.status == 404 and foreign.code == "account_not_found"


async def test_statement_opening_plus_totals_is_closing(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    first = await _transfer(ledger, b, a, 100)
    second = await _transfer(ledger, a, b, 30)
    hold = await _transfer(ledger, a, b, 20, pending=True)
    fourth = await _transfer(ledger, b, a, 7)
    path = f"/v1/accounts/{a['id']}/statement"
    period = await _ok(
        await ledger.call("GET", path, params={"from": second["created_at"], "to": fourth["created_at"]}), 200
    )
    assert period["from"] == second["created_at"] and period["to"] == fourth["created_at"]
    assert period["opening"] == _balances("credit", 0, 100, 0, 0)
    assert period["closing"] == _balances("credit", 30, 100, 20, 0)
    assert (period["debits_posted"], period["credits_posted"], period["entries_count"]) == (30, 0, 2)
    whole = await _ok(await ledger.call("GET", path), 200)
    assert whole["from"] == a["created_at"] and whole["opening"] == _balances("credit", 0, 0, 0, 0)
    assert whole["closing"] == (await ledger.call("GET", f"/v1/accounts/{a['id']}")).body["balances"]
    assert (whole["debits_posted"], whole["credits_posted"], whole["entries_count"]) == (30, 107, 4)
    for s in (period, whole):
        assert s["closing"]["posted"] == s["opening"]["posted"] + s["credits_posted"] - s["debits_posted"]
    empty = await _ok(
        await ledger.call("GET", path, params={"from": first["created_at"], "to": first["created_at"]}), 200
    )
    assert empty["entries_count"] == 0 and empty["opening"] == empty["closing"]
    assert hold["status"] == "pending"
    await _bad(ledger, path, {"from": fourth["created_at"], "to": first["created_at"]}, "to")
    await _bad(ledger, path, {"to": "2026-01-01"}, "to")


async def test_balances_at_an_instant_with_all_counters(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account(normal_balance="debit")
    funded = await _transfer(ledger, b, a, 100)
    hold = await _transfer(ledger, a, b, 40, pending=True)
    await asyncio.sleep(0.01)
    posted = await _ok(await ledger.call("POST", f"/v1/transfers/{hold['id']}/post"), 200)

    async def at(account: dict, instant: str) -> dict[str, Any]:
        return await _ok(
            await ledger.call("GET", f"/v1/accounts/{account['id']}/balances", params={"at": instant}), 200
        )

    def counters(body: dict[str, Any]) -> tuple[int, ...]:
        return tuple(body[k] for k in ("debits_posted", "credits_posted", "debits_pending", "credits_pending"))

    assert counters(await at(a, "2000-01-01T00:00:00Z")) == (0, 0, 0, 0)
    assert counters(await at(a, funded["created_at"])) == (0, 100, 0, 0)
    # Pending counts from reservation to release.
    reserved = await at(a, hold["created_at"])
    assert counters(reserved) == (0, 100, 40, 0) and reserved["balances"] == _balances("credit", 0, 100, 40, 0)
    assert counters(await at(a, _micro(posted["updated_at"], -1))) == (0, 100, 40, 0)
    assert counters(await at(a, posted["updated_at"])) == (40, 100, 0, 0)
    mirror = await at(b, hold["created_at"])
    assert counters(mirror) == (100, 0, 0, 40) and mirror["balances"] == _balances("debit", 100, 0, 0, 40)
    assert mirror["account_id"] == b["id"] and mirror["at"] == hold["created_at"]
    await _bad(ledger, f"/v1/accounts/{a['id']}/balances", {"at": "yesterday"}, "at")
    await _bad(ledger, f"/v1/accounts/{a['id']}/balances", {}, "at")
    missing = await ledger.call("GET", f"/v1/accounts/{UNKNOWN}/balances", params={"at": "2026-01-01T00:00:00Z"})
    assert missing.status == 404 and missing.code == "account_not_found"


async def test_an_expired_reservation_is_not_pending_after_its_expiry(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    hold = await _transfer(ledger, a, b, 25, pending=True, timeout_seconds=1)
    # Past expires_at (reads go by the clock); the sweep may or may not have recorded the release yet.
    await _until_expired(ledger, hold["id"])
    path = f"/v1/accounts/{a['id']}/balances"
    before = await _ok(await ledger.call("GET", path, params={"at": _micro(hold["expires_at"], -1)}), 200)
    assert before["debits_pending"] == 25
    # From expires_at on, the reservation is released, whenever the sweep recorded it.
    for instant in (hold["expires_at"], _micro(hold["expires_at"], 1)):
        after = await _ok(await ledger.call("GET", path, params={"at": instant}), 200)
        assert after["debits_pending"] == 0, instant
    statement = await _ok(
        await ledger.call("GET", f"/v1/accounts/{a['id']}/statement", params={"to": _micro(hold["expires_at"], 1)}), 200
    )
    assert statement["closing"]["available"] == 0 and statement["closing"]["pending"] == 0
    # The release entry exists once the expiry sweeper has committed (a write like any other).
    entries = await _entries_once_released(ledger, a, hold["id"])
    assert [e["kind"] for e in entries] == ["pending", "pending_released"]
    assert entries[1]["at"] >= hold["expires_at"] and entries[1]["balances"]["pending"] == 0


async def test_entries_statement_and_balances_agree_under_concurrent_writes(
    ledger_processes: dict[str, ServiceProcess], http: aiohttp.ClientSession
) -> None:
    tenant = _id()
    grouped, direct = (client_for(http, ledger_processes[m], tenant) for m in ("grouped", "direct"))
    a, b = await grouped.create_account(), await grouped.create_account()
    done = asyncio.Event()

    async def write(client: ApiClient, offset: int) -> None:
        for i in range(40):
            debit, credit = (a, b) if i % 3 else (b, a)
            await _transfer(client, debit, credit, offset + i, pending=i % 5 == 0)

    async def read(client: ApiClient) -> int:
        checked = 0
        while not done.is_set():
            whole = await _ok(await client.call("GET", f"/v1/accounts/{a['id']}/statement"), 200)
            closing, opening = whole["closing"], whole["opening"]
            assert opening == {"posted": 0, "pending": 0, "available": 0}
            assert closing["posted"] == whole["credits_posted"] - whole["debits_posted"]
            checked += 1
        return checked

    writers = asyncio.gather(write(grouped, 1), write(direct, 100))
    readers = asyncio.gather(read(grouped), read(direct))
    await writers
    done.set()
    assert all(n > 0 for n in await readers)
    entries = await _all(grouped, f"/v1/accounts/{a['id']}/entries")
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1)) and len(entries) == 80
    posted = pending = 0
    for e in entries:  # a is credit-normal: each entry moves its balances by exactly its amount
        sign = 1 if e["direction"] == "credit" else -1
        if e["kind"] == "posted":
            posted += sign * e["amount"]
        pending += sign * e["amount"] if e["kind"] == "pending" else 0
        assert e["balances"]["posted"] == posted and e["balances"]["pending"] == posted + pending
    # The state at each entry's instant (inclusive) is the last entry at that instant.
    last_at = {e["at"]: e for e in entries}
    for at, e in list(last_at.items())[::8]:
        state = await _ok(await direct.call("GET", f"/v1/accounts/{a['id']}/balances", params={"at": at}), 200)
        assert state["balances"] == e["balances"], at
    account = await grouped.call("GET", f"/v1/accounts/{a['id']}")
    assert entries[-1]["balances"] == account.body["balances"]
