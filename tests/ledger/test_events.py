"""The event journal (docs/api.md section 12) through the ledger's HTTP API: every change is one
event in applied order, the hash chain recomputed by the recipe of docs/events.md with the standard
library only, the long-poll, and bad parameters."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

from tests.support.http import ApiClient


def canonical(event: dict[str, Any]) -> bytes:
    """docs/events.md: the event without ``hash``, keys sorted, no whitespace, UTF-8."""
    body = {k: v for k, v in event.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


async def test_every_change_is_one_chained_event(ledger: ApiClient) -> None:
    a = await ledger.create_account(metadata={"name": "Zoë — ünïcode"})
    b = await ledger.create_account()
    assert (await ledger.transfer(a["id"], b["id"], 5)).status == 201
    pending = await ledger.transfer(a["id"], b["id"], 7, pending=True)
    assert (await ledger.call("POST", f"/v1/transfers/{pending.body['id']}/post", {"amount": 3})).status == 200
    assert (await ledger.call("POST", f"/v1/accounts/{a['id']}/freeze")).status == 200
    refused = await ledger.transfer(a["id"], b["id"], 1)
    assert refused.code == "account_frozen"  # a refused write is no event

    reply = await ledger.call("GET", "/v1/events")
    assert reply.status == 200, reply
    events = reply.body["data"]
    assert [e["type"] for e in events] == [
        "account.created",
        "account.created",
        "transfer.created",
        "transfer.created",
        "transfer.posted",
        "account.updated",
    ]
    prev = "0" * 64
    for seq, event in enumerate(events, 1):
        assert set(event) == {"seq", "type", "occurred_at", "data", "prev_hash", "hash"}
        assert event["seq"] == seq and event["prev_hash"] == prev
        assert event["hash"] == hashlib.sha256(prev.encode() + canonical(event)).hexdigest(), event
        prev = event["hash"]
    assert events[0]["data"]["metadata"] == {"name": "Zoë — ünïcode"}
    assert (events[4]["data"]["status"], events[4]["data"]["posted_amount"]) == ("posted", 3)
    assert (events[5]["data"]["status"], events[5]["data"]["id"]) == ("frozen", a["id"])

    page = await ledger.call("GET", "/v1/events?after=2&limit=2")
    assert [e["seq"] for e in page.body["data"]] == [3, 4]


async def test_long_poll_returns_when_an_event_commits_or_empty_when_the_wait_passes(ledger: ApiClient) -> None:
    await ledger.create_account()

    async def later() -> None:
        await asyncio.sleep(0.5)
        await ledger.create_account()

    task = asyncio.create_task(later())
    started = time.monotonic()
    reply = await ledger.call("GET", "/v1/events?after=1&wait=10")
    await task
    assert reply.status == 200 and [e["seq"] for e in reply.body["data"]] == [2], reply
    assert time.monotonic() - started < 8  # woken by the commit, not by the end of the wait
    reply = await ledger.call("GET", "/v1/events?after=2&wait=1")
    assert (reply.status, reply.body) == (200, {"data": []})


async def test_bad_parameters_are_400(ledger: ApiClient) -> None:
    for query, field in (
        ("after=-1", "after"),
        ("after=x", "after"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("wait=31", "wait"),
        ("wait=1.5", "wait"),
    ):
        reply = await ledger.call("GET", f"/v1/events?{query}")
        assert (reply.status, reply.code) == (400, "invalid_request"), (query, reply)
        assert reply.body["errors"][0]["field"] == field
