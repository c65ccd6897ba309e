"""The routes of docs/api.md sections 8-12 through the gateway: forwarded, authenticated, per tenant, idempotent.

Against the real platform (gateway, ledger, session service): every new public path answers 401
without a session and reaches the ledger with one (the pipeline's RateLimit headers on the ledger's
answer); another tenant's ids answer 404; Idempotency-Key replays ``POST /v1/transactions``,
``.../reverse`` and ``PATCH /v1/accounts/{id}``; the lifecycle actions need no body; a long-poll
read is not cut by the ordinary upstream timeout (the ledger frozen past it, the read still gets
the ledger's answer). Coalescing stays with single transfer writes: the rest go alone.

Where an assertion is the ledger's behaviour (a status or code of docs/api.md sections 8-12), it is made only
once the ledger serves the operation: until then the ledger answers the path 404 ``not_found`` (the
code for a path it does not route), and the test says so with a skip instead of asserting the
spec against a route that is not there yet.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
import uuid
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from services.gateway.app import Components
from services.gateway.auth import Principal
from services.gateway.openapi import build_document
from services.gateway.proxy import _transfer_write
from services.gateway.routes import LONG_POLL_SECONDS, PROXIED
from shared.settings import Settings
from tests.support.api import Api, Reply, Tenant
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


def _new_id() -> str:
    return str(uuid.uuid4())


_DOCUMENT = build_document(awaiting=True)


def conforms(reply: Reply, schema: str) -> None:
    """The body is what the OpenAPI document promises for ``schema`` (formats checked too)."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": _DOCUMENT["components"]}
    errors = [e.message for e in Draft202012Validator(root, format_checker=FormatChecker()).iter_errors(reply.json)]
    assert not errors, (schema, errors, reply)


def not_served(reply: Reply) -> bool:
    """The ledger does not route this path (yet): its answer for an unknown path."""
    return (reply.status, reply.code) == (404, "not_found")


def skip_unless_served(reply: Reply, what: str) -> None:
    if not_served(reply):
        pytest.skip(f"the ledger does not serve {what} yet (404 not_found)")


async def _funded(api: Api, tenant: Tenant) -> tuple[str, str, dict[str, Any]]:
    """A funding account, a wallet, and a posted transfer of 1000 from the first to the second."""
    bank = (await api.account(tenant, normal_balance="debit"))["id"]
    wallet = (await api.account(tenant))["id"]
    reply = await api.transfer(tenant, bank, wallet, 1000)
    assert reply.status == 201, reply
    return bank, wallet, reply.json


# -- the route table -------------------------------------------------------------------------------


def test_every_new_path_is_in_the_route_table() -> None:
    def shape(path: str) -> str:
        return re.sub(r"\{[^}]*\}", "{}", path)

    routed = {(method, shape(path)) for path, methods in PROXIED for method in methods}
    assert {(method, shape(path)) for method, path in NEW_ROUTES} <= routed


def test_long_poll_timeout_covers_the_wait() -> None:
    """The events route is forwarded with the ordinary timeout plus its longest wait (30 s); every other
    route keeps the ordinary one, so a hung ledger is still noticed quickly there."""
    settings = Settings(upstream_timeout_seconds=7.0)
    components = Components(settings)
    assert LONG_POLL_SECONDS == {"/v1/events": 30.0}
    client = components.pipeline.long_poll["/v1/events"].client
    assert client._timeout.total == 37.0
    assert components.pipeline.ledger.client._timeout.total == 7.0


@pytest.mark.parametrize(
    ("method", "path", "coalesced"),
    [
        ("POST", "/v1/transfers", True),
        ("POST", "/v1/transfers/t1/post", True),
        ("POST", "/v1/transfers/t1/void", True),
        ("POST", "/v1/transfers/t1/reverse", False),
        ("POST", "/v1/transfers/batch", False),
        ("POST", "/v1/transactions", False),
        ("POST", "/v1/transactions/t1/post", False),
        ("POST", "/v1/transactions/t1/void", False),
        ("POST", "/v1/transactions/t1/reverse", False),
        ("POST", "/v1/accounts/a1/freeze", False),
        ("GET", "/v1/transfers", False),
        ("PATCH", "/v1/accounts/a1", False),
    ],
)
def test_only_single_transfer_writes_are_coalesced(method: str, path: str, coalesced: bool) -> None:
    principal = Principal(str(uuid.uuid4()), "token", "key-1")
    item = _transfer_write(method, path, principal, "application/json", b"{}")
    assert (item is not None) is coalesced, path


# -- through the platform --------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), NEW_ROUTES)
async def test_each_new_route_needs_a_session_and_reaches_the_ledger(
    api: Api, tenant_a: Tenant, method: str, path: str
) -> None:
    concrete = path.replace("{id}", _new_id())
    body = b"{}" if method in ("POST", "PATCH") else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    anonymous = await api.call(method, concrete, data=body, headers=headers)
    assert (anonymous.status, anonymous.code) == (401, "unauthorized"), anonymous
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    reply = await api.call(method, concrete, data=body, headers=headers, token=tenant_a.token)
    # Through the pipeline (its RateLimit headers) to the ledger, which answered: no gateway refusal.
    assert reply.status not in (401, 415, 503), reply
    assert "RateLimit-Remaining" in reply.headers and reply.headers["X-Request-Id"]
    assert reply.headers["Content-Type"].startswith(("application/json", "application/problem+json")) or (
        reply.status == 204
    )


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("PATCH", "/v1/accounts/{account}", "account_not_found"),
        ("POST", "/v1/accounts/{account}/freeze", "account_not_found"),
        ("POST", "/v1/accounts/{account}/unfreeze", "account_not_found"),
        ("POST", "/v1/accounts/{account}/close", "account_not_found"),
        ("GET", "/v1/accounts/{account}/entries", "account_not_found"),
        ("GET", "/v1/accounts/{account}/statement", "account_not_found"),
        ("POST", "/v1/transfers/{transfer}/reverse", "transfer_not_found"),
    ],
)
async def test_another_tenants_ids_are_404(api: Api, platform: Platform, method: str, path: str, code: str) -> None:
    owner, other = await quick_tenant(platform, api), await quick_tenant(platform, api)
    _, wallet, transfer = await _funded(api, owner)
    concrete = path.format(account=wallet, transfer=transfer["id"])
    body: dict[str, Any] | None = None
    if method == "PATCH":
        body = {"metadata": {"k": "v"}}
    elif path.endswith("/reverse"):
        body = {"id": _new_id()}
    query = "?from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z" if path.endswith("/statement") else ""
    reply = await api.call(method, concrete + query, json=body, token=other.token)
    assert reply.status == 404, reply
    skip_unless_served(reply, f"{method} {path}")
    assert reply.code == code, reply
    # Nothing happened to the owner's account.
    mine = await api.call("GET", f"/v1/accounts/{wallet}", token=owner.token)
    assert mine.json["status"] == "open" and mine.json["metadata"] == {}, mine
    assert mine.json["balances"]["posted"] == 1000


async def test_another_tenants_transaction_is_404(api: Api, platform: Platform) -> None:
    owner, other = await quick_tenant(platform, api), await quick_tenant(platform, api)
    bank, wallet, _ = await _funded(api, owner)
    transaction_id = _new_id()
    body = {
        "id": transaction_id,
        "entries": [
            {"account_id": bank, "direction": "debit", "amount": 100, "currency": "USD"},
            {"account_id": wallet, "direction": "credit", "amount": 100, "currency": "USD"},
        ],
    }
    created = await api.call("POST", "/v1/transactions", json=body, token=owner.token)
    skip_unless_served(created, "POST /v1/transactions")
    assert created.status == 201, created
    for method, suffix, payload in [
        ("GET", "", None),
        ("POST", "/post", None),
        ("POST", "/void", None),
        ("POST", "/reverse", {"id": _new_id()}),
    ]:
        reply = await api.call(method, f"/v1/transactions/{transaction_id}{suffix}", json=payload, token=other.token)
        assert (reply.status, reply.code) == (404, "transaction_not_found"), (suffix, reply)
    # The same id is free in the other tenant's namespace: its own transaction, not a replay.
    other_bank, other_wallet, _ = await _funded(api, other)
    theirs = {
        **body,
        "entries": [
            {"account_id": other_bank, "direction": "debit", "amount": 5, "currency": "USD"},
            {"account_id": other_wallet, "direction": "credit", "amount": 5, "currency": "USD"},
        ],
    }
    mine = await api.call("POST", "/v1/transactions", json=theirs, token=other.token)
    assert mine.status == 201, mine


async def _keyed(api: Api, tenant: Tenant, method: str, path: str, key: str, body: dict[str, Any]) -> Reply:
    return await api.call(method, path, json=body, token=tenant.token, headers={"Idempotency-Key": key})


async def test_idempotency_key_replays_a_transaction(api: Api, platform: Platform) -> None:
    tenant = await quick_tenant(platform, api)
    bank, wallet, _ = await _funded(api, tenant)
    fees = (await api.account(tenant))["id"]
    body = {
        "id": _new_id(),
        "entries": [
            {"account_id": bank, "direction": "debit", "amount": 1000, "currency": "USD"},
            {"account_id": wallet, "direction": "credit", "amount": 970, "currency": "USD"},
            {"account_id": fees, "direction": "credit", "amount": 30, "currency": "USD"},
        ],
    }
    first = await _keyed(api, tenant, "POST", "/v1/transactions", "split-1", body)
    again = await _keyed(api, tenant, "POST", "/v1/transactions", "split-1", body)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (again.status, again.body) == (first.status, first.body)
    other = await _keyed(api, tenant, "POST", "/v1/transactions", "split-1", {**body, "id": _new_id()})
    assert (other.status, other.code) == (422, "idempotency_key_reused")
    skip_unless_served(first, "POST /v1/transactions")
    assert first.status == 201, first
    assert "Idempotent-Replayed" not in first.headers
    conforms(first, "Transaction")
    fees_now = await api.call("GET", f"/v1/accounts/{fees}", token=tenant.token)
    assert fees_now.json["balances"]["posted"] == 30  # applied once


async def test_idempotency_key_replays_a_reversal(api: Api, platform: Platform) -> None:
    tenant = await quick_tenant(platform, api)
    bank, wallet, transfer = await _funded(api, tenant)
    path = f"/v1/transfers/{transfer['id']}/reverse"
    body = {"id": _new_id(), "amount": 400}
    first = await _keyed(api, tenant, "POST", path, "refund-1", body)
    again = await _keyed(api, tenant, "POST", path, "refund-1", body)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (again.status, again.body) == (first.status, first.body)
    skip_unless_served(first, "POST /v1/transfers/{id}/reverse")
    assert first.status == 201, first
    conforms(first, "Transfer")
    assert first.json["reverses"] == transfer["id"]
    assert (first.json["debit_account_id"], first.json["credit_account_id"]) == (wallet, bank)
    original = await api.call("GET", f"/v1/transfers/{transfer['id']}", token=tenant.token)
    assert original.json["reversed_amount"] == 400  # applied once


async def test_idempotency_key_replays_a_patch(api: Api, platform: Platform) -> None:
    tenant = await quick_tenant(platform, api)
    account = await api.account(tenant)
    path = f"/v1/accounts/{account['id']}"
    body = {"metadata": {"tier": "gold"}, "expected_versions": {account["id"]: 0}}
    first = await _keyed(api, tenant, "PATCH", path, "patch-1", body)
    again = await _keyed(api, tenant, "PATCH", path, "patch-1", body)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (again.status, again.body) == (first.status, first.body)
    skip_unless_served(first, "PATCH /v1/accounts/{id}")
    # A retry without the key is the conditional change again: the version moved on.
    assert first.status == 200, first
    conforms(first, "Account")
    assert (first.json["metadata"], first.json["version"]) == ({"tier": "gold"}, 1)
    retry = await api.call("PATCH", path, json=body, token=tenant.token)
    assert (retry.status, retry.code) == (422, "version_mismatch")
    conforms(retry, "Problem")


async def test_patch_needs_a_json_body(api: Api, tenant_a: Tenant) -> None:
    account = await api.account(tenant_a)
    path = f"/v1/accounts/{account['id']}"
    plain = await api.call(
        "PATCH", path, data=b"metadata=x", token=tenant_a.token, headers={"Content-Type": "text/plain"}
    )
    assert (plain.status, plain.code) == (415, "unsupported_media_type")
    big = await api.call(
        "PATCH",
        path,
        data=b'{"metadata": {"k": "' + b"x" * (4 * 1024 * 1024) + b'"}}',
        token=tenant_a.token,
        headers={"Content-Type": "application/json"},
    )
    assert (big.status, big.code) == (413, "payload_too_large")
    bad_key = await api.call("PATCH", path, json={}, token=tenant_a.token, headers={"Idempotency-Key": "tab\there"})
    assert (bad_key.status, bad_key.code) == (400, "invalid_request")


@pytest.mark.parametrize("action", ["freeze", "unfreeze", "close"])
async def test_lifecycle_actions_need_no_body(api: Api, platform: Platform, action: str) -> None:
    tenant = await quick_tenant(platform, api)
    account = await api.account(tenant)
    reply = await api.call("POST", f"/v1/accounts/{account['id']}/{action}", token=tenant.token)
    assert reply.status != 415, reply  # no body, no Content-Type: forwarded, as for post and void
    skip_unless_served(reply, f"POST /v1/accounts/{{id}}/{action}")
    assert reply.status == 200, reply
    conforms(reply, "Account")
    expected = {"freeze": "frozen", "unfreeze": "open", "close": "closed"}[action]
    assert reply.json["status"] == expected


async def test_a_frozen_account_refuses_a_transfer_through_the_gateway(api: Api, platform: Platform) -> None:
    tenant = await quick_tenant(platform, api)
    bank, wallet, _ = await _funded(api, tenant)
    frozen = await api.call("POST", f"/v1/accounts/{wallet}/freeze", token=tenant.token)
    skip_unless_served(frozen, "POST /v1/accounts/{id}/freeze")
    refused = await api.transfer(tenant, bank, wallet, 10)  # coalesced: the group path enforces it too
    assert (refused.status, refused.code) == (422, "account_frozen")
    assert (await api.call("POST", f"/v1/accounts/{wallet}/unfreeze", token=tenant.token)).status == 200
    assert (await api.transfer(tenant, bank, wallet, 10)).status == 201


async def test_a_long_poll_is_not_cut_by_the_upstream_timeout(api: Api, platform: Platform) -> None:
    """The ledger is frozen (SIGSTOP) for longer than UPSTREAM_TIMEOUT_SECONDS: an ordinary read
    gives up with 503 at that timeout, while ``GET /v1/events?wait=`` waits on and gets the ledger's
    own answer once it runs again."""
    tenant = await quick_tenant(platform, api)
    upstream_timeout = float(platform.env["UPSTREAM_TIMEOUT_SECONDS"])
    ledger = platform.ledger.process
    assert ledger is not None
    ledger.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        events = asyncio.ensure_future(api.call("GET", "/v1/events?after=0&wait=1", token=tenant.token))
        ordinary = await api.call("GET", "/v1/accounts", token=tenant.token)
        assert (ordinary.status, ordinary.code) == (503, "unavailable"), ordinary
        await asyncio.sleep(max(0.0, upstream_timeout + 2 - (time.monotonic() - started)))
        assert not events.done(), events  # still waiting, past the ordinary timeout
    finally:
        ledger.send_signal(signal.SIGCONT)
    reply = await events
    assert reply.status != 503 and reply.code != "unavailable", reply
    assert time.monotonic() - started > upstream_timeout
    skip_unless_served(reply, "GET /v1/events")
    assert reply.status == 200, reply
    assert isinstance(reply.json["data"], list)


async def test_a_pending_transaction_is_posted_read_and_reversed_through_the_gateway(
    api: Api, platform: Platform
) -> None:
    tenant = await quick_tenant(platform, api)
    bank, wallet, _ = await _funded(api, tenant)

    def transaction(amount: int, **fields: Any) -> dict[str, Any]:
        return {
            "id": _new_id(),
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
    reversal_id = _new_id()
    reversed_ = await api.call("POST", f"{path}/reverse", json={"id": reversal_id}, token=tenant.token)
    assert reversed_.status == 201, reversed_
    conforms(reversed_, "Transaction")
    assert reversed_.json["reverses"] == held.json["id"]
    assert [e["direction"] for e in reversed_.json["entries"]] == ["credit", "debit"]
    assert (await api.call("GET", path, token=tenant.token)).json["reversed_by"] == [reversal_id]
    twice = await api.call("POST", f"{path}/reverse", json={"id": _new_id()}, token=tenant.token)
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
    bank, wallet, transfer = await _funded(api, tenant)
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
