"""Account history in applied order with cursors, and posted balances at past instants."""

from __future__ import annotations

import asyncio

from tests.support.http import ApiClient


async def test_history_in_applied_order_with_cursors(ledger: ApiClient) -> None:
    a, b, c = [await ledger.create_account() for _ in range(3)]
    ids = []
    for i in range(9):
        debit, credit = (a, b) if i % 3 else (c, a)
        reply = await ledger.transfer(debit["id"], credit["id"], i + 1)
        ids.append(reply.body["id"])
    unrelated = await ledger.transfer(b["id"], c["id"], 5)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        page = await ledger.call("GET", f"/v1/accounts/{a['id']}/transfers", params=params)
        assert page.status == 200
        seen += [t["id"] for t in page.body["data"]]
        cursor = page.body["next_cursor"]
        if not cursor:
            break
    assert seen == ids
    assert unrelated.body["id"] not in seen
    # Cursors of one list are not accepted by another.
    accounts_cursor = (await ledger.call("GET", "/v1/accounts", params={"limit": "1"})).body["next_cursor"]
    wrong = await ledger.call("GET", f"/v1/accounts/{a['id']}/transfers", params={"cursor": accounts_cursor})
    assert wrong.status == 400
    missing = await ledger.call("GET", "/v1/accounts/00000000-0000-4000-8000-000000000000/transfers")
    assert missing.status == 404 and missing.code == "account_not_found"


async def test_posted_balance_at_past_instants(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account(normal_balance="debit")
    first = (await ledger.transfer(a["id"], b["id"], 10)).body
    await asyncio.sleep(0.01)
    hold = (await ledger.transfer(a["id"], b["id"], 7, pending=True)).body
    second = (await ledger.transfer(a["id"], b["id"], 5)).body
    await asyncio.sleep(0.01)
    posted = (await ledger.call("POST", f"/v1/transfers/{hold['id']}/post", {"amount": 3})).body

    async def at(account: dict, instant: str) -> dict:
        reply = await ledger.call("GET", f"/v1/accounts/{account['id']}/balances", params={"at": instant})
        assert reply.status == 200, reply.body
        return dict(reply.body)

    assert (await at(a, "2000-01-01T00:00:00Z"))["balances"]["posted"] == 0
    inclusive = await at(a, first["created_at"])
    assert (inclusive["debits_posted"], inclusive["credits_posted"], inclusive["balances"]["posted"]) == (10, 0, -10)
    # The reservation counts from when it was posted (its updated_at), not when it was made.
    assert (await at(a, second["created_at"]))["debits_posted"] == 15
    assert (await at(a, posted["updated_at"]))["debits_posted"] == 18
    debit_normal = await at(b, posted["updated_at"])
    assert (debit_normal["credits_posted"], debit_normal["balances"]["posted"]) == (18, -18)
    assert debit_normal["account_id"] == b["id"] and debit_normal["at"] == posted["updated_at"]
    for bad in ("yesterday", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00", ""):
        reply = await ledger.call("GET", f"/v1/accounts/{a['id']}/balances", params={"at": bad})
        assert reply.status == 400, bad
    offset = await ledger.call("GET", f"/v1/accounts/{a['id']}/balances", params={"at": "2000-01-01T01:00:00+01:00"})
    assert offset.status == 200 and offset.body["at"] == "2000-01-01T00:00:00.000000Z"
