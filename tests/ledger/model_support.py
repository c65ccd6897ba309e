"""Helpers for the tests of the ledger model (docs/api.md sections 8-10): transactions,
reversals, account lifecycle, overdraft limits and versions, all through the ledger's HTTP API."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.http import ApiClient, Reply

MAX = 2**63 - 1
COUNTERS = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")


def new_id() -> str:
    return str(uuid.uuid4())


def entry(account: dict[str, Any] | str, direction: str, amount: int, currency: str = "USD") -> dict[str, Any]:
    account_id = account if isinstance(account, str) else account["id"]
    return {"account_id": account_id, "direction": direction, "amount": amount, "currency": currency}


def debit(account: dict[str, Any] | str, amount: int, currency: str = "USD") -> dict[str, Any]:
    return entry(account, "debit", amount, currency)


def credit(account: dict[str, Any] | str, amount: int, currency: str = "USD") -> dict[str, Any]:
    return entry(account, "credit", amount, currency)


async def transaction(ledger: ApiClient, entries: list[dict[str, Any]], **fields: Any) -> Reply:
    body = {"id": fields.pop("id", new_id()), "entries": entries, **fields}
    return await ledger.call("POST", "/v1/transactions", body)


async def reverse(ledger: ApiClient, transfer_id: str, **fields: Any) -> Reply:
    body = {"id": fields.pop("id", new_id()), **fields}
    return await ledger.call("POST", f"/v1/transfers/{transfer_id}/reverse", body)


async def reverse_transaction(ledger: ApiClient, transaction_id: str, **fields: Any) -> Reply:
    body = {"id": fields.pop("id", new_id()), **fields}
    return await ledger.call("POST", f"/v1/transactions/{transaction_id}/reverse", body)


async def get_account(ledger: ApiClient, account: dict[str, Any] | str) -> dict[str, Any]:
    account_id = account if isinstance(account, str) else account["id"]
    reply = await ledger.call("GET", f"/v1/accounts/{account_id}")
    assert reply.status == 200, reply.body
    return dict(reply.body)


async def state(ledger: ApiClient, *accounts: dict[str, Any] | str) -> list[tuple[Any, ...]]:
    """What a refused write must leave untouched: counters, version, status and limit of each account."""
    result = []
    for account in accounts:
        got = await get_account(ledger, account)
        result.append((*(got[k] for k in COUNTERS), got["version"], got["status"], got["overdraft_limit"]))
    return result


async def counters(ledger: ApiClient, account: dict[str, Any] | str) -> tuple[int, int, int, int]:
    got = await get_account(ledger, account)
    return got["debits_posted"], got["credits_posted"], got["debits_pending"], got["credits_pending"]


async def version(ledger: ApiClient, account: dict[str, Any] | str) -> int:
    return int((await get_account(ledger, account))["version"])


async def fund(ledger: ApiClient, account: dict[str, Any], amount: int, currency: str = "USD") -> None:
    """Credit ``account`` with ``amount`` from a fresh unguarded source account."""
    source = await ledger.create_account(currency)
    reply = await ledger.transfer(source["id"], account["id"], amount, currency)
    assert reply.status == 201, reply.body


async def action(ledger: ApiClient, kind: str, object_id: str, verb: str, body: Any = None) -> Reply:
    """``POST /v1/{kind}/{id}/{verb}``: post, void, reverse, freeze, unfreeze, close."""
    return await ledger.call("POST", f"/v1/{kind}/{object_id}/{verb}", body)


async def patch(ledger: ApiClient, account: dict[str, Any] | str, body: dict[str, Any]) -> Reply:
    account_id = account if isinstance(account, str) else account["id"]
    return await ledger.call("PATCH", f"/v1/accounts/{account_id}", body)


def problem(reply: Reply, status: int, code: str, *, index: int | None = None, field: str | None = None) -> None:
    """The reply is the problem+json ``code`` with ``status``; ``index``/``field`` name the culprit."""
    assert (reply.status, reply.code) == (status, code), (status, code, reply.status, reply.body)
    assert reply.headers["Content-Type"].startswith("application/problem+json"), reply.headers
    if index is not None:
        assert index in [e.get("index") for e in reply.body.get("errors", [])], reply.body
    if field is not None:
        assert field in [e.get("field") for e in reply.body.get("errors", [])], reply.body
