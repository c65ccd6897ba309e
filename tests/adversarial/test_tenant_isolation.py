"""Tenant isolation sweep: for every public endpoint that takes an id, another tenant's id answers
exactly like an id that exists nowhere: same status, same headers, same body byte for byte, apart
from the request id (and the rate-limit counters, which move with every call).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from tests.support.api import Api, Reply, Tenant
from tests.support.platform import Platform, quick_tenant

_VARYING = {"x-request-id", "date", "ratelimit-remaining", "ratelimit-reset"}
_REQUEST_ID = re.compile(rb'"request_id":"[^"]*"')


def _shape(reply: Reply) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k.lower(), v) for k, v in reply.headers.items() if k.lower() not in _VARYING)
    return reply.status, headers, _REQUEST_ID.sub(b'"request_id":"-"', reply.body)


def _transfer(debit: str, credit: str, amount: int = 5) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "currency": "USD",
    }


async def _owner_state(db: asyncpg.Connection, owner: Tenant) -> list[tuple[Any, ...]]:
    tenant = uuid.UUID(owner.tenant_id)
    accounts = await db.fetch(
        "SELECT id, debits_posted, credits_posted, debits_pending, credits_pending FROM accounts "
        "WHERE tenant_id = $1 ORDER BY pk",
        tenant,
    )
    transfers = await db.fetch(
        "SELECT id, status, posted_amount FROM transfers WHERE tenant_id = $1 ORDER BY seq", tenant
    )
    return [tuple(r) for r in [*accounts, *transfers]]


async def test_another_tenants_ids_answer_exactly_like_unknown_ids(
    platform: Platform, api: Api, db: asyncpg.Connection
) -> None:
    owner, intruder = await quick_tenant(platform, api, "owner"), await quick_tenant(platform, api, "intruder")
    a, b = (await api.account(owner))["id"], (await api.account(owner))["id"]
    assert (await api.transfer(owner, a, b, 100)).status == 201
    posted = (await api.transfer(owner, a, b, 30)).json["id"]
    pending = (await api.transfer(owner, a, b, 50, pending=True)).json["id"]
    mine, mine2 = (await api.account(intruder))["id"], (await api.account(intruder))["id"]
    before = await _owner_state(db, owner)

    # (method, path template, body template): "{}" is the id under test.
    Body = Callable[[str], Any] | None
    cases: list[tuple[str, str, Body, str]] = [
        ("GET", "/v1/accounts/{}", None, a),
        ("GET", "/v1/accounts/{}/transfers", None, a),
        ("GET", "/v1/accounts/{}/transfers?limit=1000", None, a),
        ("GET", "/v1/accounts/{}/balances?at=2999-01-01T00:00:00Z", None, a),
        ("GET", "/v1/transfers/{}", None, posted),
        ("GET", "/v1/transfers/{}", None, pending),
        ("POST", "/v1/transfers/{}/post", None, pending),
        ("POST", "/v1/transfers/{}/post", lambda _: {"amount": 1}, pending),
        ("POST", "/v1/transfers/{}/post", lambda _: {"amount": 51}, pending),  # above it: still 404
        ("POST", "/v1/transfers/{}/post", None, posted),  # not pending: still 404
        ("POST", "/v1/transfers/{}/void", None, pending),
        ("POST", "/v1/transfers/{}/void", lambda _: {}, posted),
        ("POST", "/v1/transfers", lambda x: _transfer(x, mine), a),
        ("POST", "/v1/transfers", lambda x: _transfer(mine, x), b),
        ("POST", "/v1/transfers", lambda x: _transfer(x, x), a),
        ("POST", "/v1/transfers", lambda x: {**_transfer(x, mine), "currency": "EUR"}, a),
        ("POST", "/v1/transfers/batch", lambda x: {"transfers": [_transfer(x, mine), _transfer(mine, x)]}, a),
        (
            "POST",
            "/v1/transfers/batch",
            lambda x: {"atomic": True, "transfers": [_transfer(mine, mine2), _transfer(mine, x)]},
            b,
        ),
    ]
    for method, path, body, known in cases:
        unknown = str(uuid.uuid4())
        theirs = await api.call(method, path.format(known), json=body(known) if body else None, token=intruder.token)
        nobody = await api.call(
            method, path.format(unknown), json=body(unknown) if body else None, token=intruder.token
        )
        # A POST with a foreign id in its body may succeed (ids are per tenant); it must never fail 5xx.
        assert theirs.status < 500 and (400 <= theirs.status < 500 or method == "POST"), (method, path, theirs)
        assert _shape(theirs) == _shape(nobody), (method, path, theirs, nobody)

    # Ids are per tenant: the owner's account and transfer ids are free for the intruder's own use,
    # answered exactly as fresh ids (created, with the intruder's own content).
    for known in (a, posted):
        unknown = str(uuid.uuid4())
        reuse = {"currency": "USD", "metadata": {"who": "intruder"}}
        theirs = await api.call("POST", "/v1/accounts", json={"id": known, **reuse}, token=intruder.token)
        nobody = await api.call("POST", "/v1/accounts", json={"id": unknown, **reuse}, token=intruder.token)
        assert (theirs.status, nobody.status) == (201, 201), (theirs, nobody)
        strip = ("id", "created_at")
        assert {k: v for k, v in theirs.json.items() if k not in strip} == {
            k: v for k, v in nobody.json.items() if k not in strip
        }
        moved = await api.call(
            "POST", "/v1/transfers", json={**_transfer(mine, mine2), "id": known}, token=intruder.token
        )
        assert moved.status == 201, moved

    # And nothing of the owner's moved.
    assert await _owner_state(db, owner) == before
