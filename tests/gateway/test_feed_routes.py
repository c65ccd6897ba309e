"""Issue 11 and 12 features end to end through the gateway: a transaction's life, the event
feed, webhook endpoints and the query routes, each answer checked against the OpenAPI document."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.gateway.routes_support import conforms, funded, new_id, skip_unless_served
from tests.support.api import Api
from tests.support.platform import Platform, quick_tenant

NEW_ROUTES = [
    ("POST", "/v1/transactions"),
    ("GET", "/v1/transactions"),
    ("GET", "/v1/transactions/{id}"),
    ("POST", "/v1/transactions/{id}/post"),
    ("POST", "/v1/transactions/{id}/void"),
    ("POST", "/v1/transactions/{id}/reverse"),
    ("GET", "/v1/transfers"),
    ("POST", "/v1/transfers/{id}/reverse"),
    ("PATCH", "/v1/accounts/{id}"),
    ("POST", "/v1/accounts/{id}/freeze"),
    ("POST", "/v1/accounts/{id}/unfreeze"),
    ("POST", "/v1/accounts/{id}/close"),
    ("GET", "/v1/accounts/{id}/entries"),
    ("GET", "/v1/accounts/{id}/statement"),
    ("GET", "/v1/events"),
    ("POST", "/v1/webhook-endpoints"),
    ("GET", "/v1/webhook-endpoints"),
    ("GET", "/v1/webhook-endpoints/{id}"),
    ("DELETE", "/v1/webhook-endpoints/{id}"),
    ("POST", "/v1/webhook-endpoints/{id}/enable"),
    ("GET", "/v1/webhook-endpoints/{id}/deliveries"),
]


# -- the route table -------------------------------------------------------------------------------


async def test_a_pending_transaction_is_posted_read_and_reversed_through_the_gateway(
    api: Api, platform: Platform
) -> None:
    tenant = await quick_tenant(platform, api)
    bank, wallet, _ = await funded(api, tenant)

    def transaction(amount: int, **fields: Any) -> dict[str, Any]:
        return {
            "id": new_id(),
            "entries": [
                {"account_id": bank, "direction": "debit", "amount": amount, "currency": "USD"},
                {"account_id": wallet, "direction": "credit", "amount": amount, "currency": "USD"},
            ],
            **fields,
        }

    held = await api.call("POST", "/v1/transactions", json=transaction(300, pending=True), token=tenant.token)
    skip_unless_served(held, "POST /v1/transactions")
    assert (held.status, held.json["status"]) == (201, "pending"), held
    path = f"/v1/transactions/{held.json['id']}"
    read = await api.call("GET", path, token=tenant.token)
    assert read.status == 200 and read.json == held.json, read
    conforms(read, "Transaction")
    posted = await api.call("POST", f"{path}/post", token=tenant.token)  # no body: whole amounts
    assert (posted.status, posted.json["status"]) == (200, "posted"), posted
    reversal_id = new_id()
    reversed_ = await api.call("POST", f"{path}/reverse", json={"id": reversal_id}, token=tenant.token)
    assert reversed_.status == 201, reversed_
    conforms(reversed_, "Transaction")
    assert reversed_.json["reverses"] == held.json["id"]
    assert [e["direction"] for e in reversed_.json["entries"]] == ["credit", "debit"]
    assert (await api.call("GET", path, token=tenant.token)).json["reversed_by"] == [reversal_id]
    twice = await api.call("POST", f"{path}/reverse", json={"id": new_id()}, token=tenant.token)
    assert (twice.status, twice.code) == (422, "amount_exceeds_reversible")

    other = await api.call("POST", "/v1/transactions", json=transaction(50, pending=True), token=tenant.token)
    voided = await api.call("POST", f"/v1/transactions/{other.json['id']}/void", token=tenant.token)
    assert (voided.status, voided.json["status"]) == (200, "voided"), voided
    unbalanced = transaction(10)
    unbalanced["entries"][1]["amount"] = 9
    refused = await api.call("POST", "/v1/transactions", json=unbalanced, token=tenant.token)
    assert (refused.status, refused.code) == (422, "unbalanced")
    conforms(refused, "Problem")
    assert (await api.call("GET", f"/v1/accounts/{wallet}", token=tenant.token)).json["balances"]["posted"] == 1000


async def test_the_event_feed_through_the_gateway(api: Api, platform: Platform) -> None:
    """Events of the tenant in seq order, and a long-poll that returns as soon as one commits."""
    tenant = await quick_tenant(platform, api)
    await api.account(tenant)
    first = await api.call("GET", "/v1/events?after=0", token=tenant.token)
    skip_unless_served(first, "GET /v1/events")
    assert first.status == 200, first
    conforms(first, "EventPage")
    assert [(e["seq"], e["type"]) for e in first.json["data"]] == [(1, "account.created")]
    assert first.json["data"][0]["prev_hash"] == "0" * 64

    waiting = asyncio.ensure_future(api.call("GET", "/v1/events?after=1&wait=20", token=tenant.token))
    await asyncio.sleep(0.5)
    assert not waiting.done()  # nothing after seq 1 yet: the gateway holds the call open
    started = time.monotonic()
    await api.account(tenant)
    woken = await waiting
    assert woken.status == 200, woken
    assert time.monotonic() - started < 10  # answered by the commit, not by the end of the wait
    conforms(woken, "EventPage")
    assert [(e["seq"], e["type"]) for e in woken.json["data"]] == [(2, "account.created")]
    assert woken.json["data"][0]["prev_hash"] == first.json["data"][0]["hash"]

    too_long = await api.call("GET", "/v1/events?wait=31", token=tenant.token)
    assert (too_long.status, too_long.code) == (400, "invalid_request")


async def test_webhook_endpoints_through_the_gateway(api: Api, platform: Platform) -> None:
    """Create, list, read, re-enable, read deliveries and delete (204 through the gateway's plain route),
    against a ledger that allows loopback URLs (as tests and local demos run it); another tenant's
    endpoint is 404 ``webhook_endpoint_not_found``."""
    ledger = platform.extra_ledger(WEBHOOK_ALLOW_PRIVATE_URLS="true")
    gateway = platform.extra_gateway(LEDGER_URL=ledger.url)
    try:
        base = gateway.url
        owner, other = await quick_tenant(platform, api), await quick_tenant(platform, api)
        body = {"url": "http://127.0.0.1:9/hooks", "event_types": ["transfer.*", "account.created"]}
        created = await api.call("POST", "/v1/webhook-endpoints", json=body, token=owner.token, base_url=base)
        skip_unless_served(created, "POST /v1/webhook-endpoints")
        assert created.status == 201, created
        conforms(created, "WebhookEndpointCreated")
        assert created.json["secret"] and created.json["event_types"] == body["event_types"]
        path = f"/v1/webhook-endpoints/{created.json['id']}"

        listed = await api.call("GET", "/v1/webhook-endpoints", token=owner.token, base_url=base)
        assert listed.status == 200, listed
        conforms(listed, "WebhookEndpointPage")
        assert [e["id"] for e in listed.json["data"]] == [created.json["id"]]
        assert "secret" not in listed.json["data"][0]
        read = await api.call("GET", path, token=owner.token, base_url=base)
        assert (read.status, read.json["status"]) == (200, "enabled"), read
        conforms(read, "WebhookEndpoint")
        enabled = await api.call("POST", f"{path}/enable", token=owner.token, base_url=base)  # no body
        assert enabled.status == 200, enabled
        conforms(enabled, "WebhookEndpoint")
        deliveries = await api.call("GET", f"{path}/deliveries?order=desc", token=owner.token, base_url=base)
        assert deliveries.status == 200, deliveries
        conforms(deliveries, "WebhookDeliveryPage")

        for method, suffix in [("GET", ""), ("DELETE", ""), ("POST", "/enable"), ("GET", "/deliveries")]:
            theirs = await api.call(method, path + suffix, token=other.token, base_url=base)
            assert (theirs.status, theirs.code) == (404, "webhook_endpoint_not_found"), (method, suffix, theirs)
        unknown_type = {**body, "event_types": ["transfer.nope"]}
        refused = await api.call("POST", "/v1/webhook-endpoints", json=unknown_type, token=owner.token, base_url=base)
        assert (refused.status, refused.code) == (400, "invalid_request")

        deleted = await api.call("DELETE", path, token=owner.token, base_url=base)
        assert (deleted.status, deleted.body) == (204, b""), deleted
        assert "RateLimit-Remaining" in deleted.headers
        gone = await api.call("GET", path, token=owner.token, base_url=base)
        assert (gone.status, gone.code) == (404, "webhook_endpoint_not_found")
    finally:
        gateway.stop()
        ledger.stop()


async def test_the_query_routes_through_the_gateway(api: Api, platform: Platform) -> None:
    """Filtered lists, an account's entries and statement and its balances at an instant: forwarded
    with their query strings (``metadata[KEY]=VALUE`` as the client encoded it) and answered as the
    document says."""
    tenant = await quick_tenant(platform, api)
    bank, wallet, transfer = await funded(api, tenant)
    tagged = await api.transfer(tenant, bank, wallet, 7, metadata={"order": "a&b=c"})
    listed = await api.call("GET", f"/v1/transfers?account_id={wallet}&order=desc", token=tenant.token)
    skip_unless_served(listed, "GET /v1/transfers")
    assert listed.status == 200, listed
    conforms(listed, "TransferPage")
    assert [t["id"] for t in listed.json["data"]] == [tagged.json["id"], transfer["id"]]
    by_tag = await api.call("GET", "/v1/transfers?metadata%5Border%5D=a%26b%3Dc", token=tenant.token)
    assert [t["id"] for t in by_tag.json["data"]] == [tagged.json["id"]], by_tag
    transactions = await api.call("GET", f"/v1/transactions?account_id={wallet}", token=tenant.token)
    assert transactions.status == 200, transactions
    conforms(transactions, "TransactionPage")
    accounts = await api.call("GET", "/v1/accounts?status=open&limit=1", token=tenant.token)
    assert accounts.status == 200 and len(accounts.json["data"]) == 1, accounts
    conforms(accounts, "AccountPage")
    bad = await api.call("GET", "/v1/accounts?status=sleeping", token=tenant.token)
    assert (bad.status, bad.code) == (400, "invalid_request")

    entries = await api.call("GET", f"/v1/accounts/{wallet}/entries", token=tenant.token)
    assert entries.status == 200, entries
    conforms(entries, "EntryPage")
    assert [e["balances"]["posted"] for e in entries.json["data"]] == [1000, 1007]
    statement = await api.call("GET", f"/v1/accounts/{wallet}/statement", token=tenant.token)
    assert statement.status == 200, statement
    conforms(statement, "Statement")
    assert (statement.json["credits_posted"], statement.json["closing"]["posted"]) == (1007, 1007)
    at = entries.json["data"][0]["at"]
    balances = await api.call("GET", f"/v1/accounts/{wallet}/balances?at={at}", token=tenant.token)
    assert balances.status == 200, balances
    conforms(balances, "BalanceAt")
    assert balances.json["balances"]["posted"] == 1000
