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

from services.gateway.app import Components
from services.gateway.auth import Principal
from services.gateway.proxy import coalescable_write
from services.gateway.routes import LONG_POLL_SECONDS, PROXIED
from shared.settings import GatewaySettings, Settings
from tests.gateway.routes_support import conforms, funded, new_id, skip_unless_served
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


# -- the route table -------------------------------------------------------------------------------


def test_every_new_path_is_in_the_route_table() -> None:
    def shape(path: str) -> str:
        return re.sub(r"\{[^}]*\}", "{}", path)

    routed = {(method, shape(path)) for path, methods in PROXIED for method in methods}
    assert {(method, shape(path)) for method, path in NEW_ROUTES} <= routed


def test_long_poll_timeout_covers_the_wait() -> None:
    """The events route is forwarded with the ordinary timeout plus its longest wait (30 s); every other
    route keeps the ordinary one, so a hung ledger is still noticed quickly there."""
    settings = Settings(gateway=GatewaySettings(upstream_timeout_seconds=7.0))
    components = Components(settings)
    assert LONG_POLL_SECONDS == {"/v1/events": 30.0}
    client = components.pipeline.long_poll["/v1/events"].client
    assert client.timeout_seconds == 37.0
    assert components.pipeline.ledger.client.timeout_seconds == 7.0


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
    item = coalescable_write(method, path, principal, "application/json", b"{}")
    assert (item is not None) is coalesced, path


# -- through the platform --------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), NEW_ROUTES)
async def test_each_new_route_needs_a_session_and_reaches_the_ledger(
    api: Api, tenant_a: Tenant, method: str, path: str
) -> None:
    concrete = path.replace("{id}", new_id())
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
    _, wallet, transfer = await funded(api, owner)
    concrete = path.format(account=wallet, transfer=transfer["id"])
    body: dict[str, Any] | None = None
    if method == "PATCH":
        body = {"metadata": {"k": "v"}}
    elif path.endswith("/reverse"):
        body = {"id": new_id()}
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
    bank, wallet, _ = await funded(api, owner)
    transaction_id = new_id()
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
        ("POST", "/reverse", {"id": new_id()}),
    ]:
        reply = await api.call(method, f"/v1/transactions/{transaction_id}{suffix}", json=payload, token=other.token)
        assert (reply.status, reply.code) == (404, "transaction_not_found"), (suffix, reply)
    # The same id is free in the other tenant's namespace: its own transaction, not a replay.
    other_bank, other_wallet, _ = await funded(api, other)
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
    bank, wallet, _ = await funded(api, tenant)
    fees = (await api.account(tenant))["id"]
    body = {
        "id": new_id(),
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
    other = await _keyed(api, tenant, "POST", "/v1/transactions", "split-1", {**body, "id": new_id()})
    assert (other.status, other.code) == (422, "idempotency_key_reused")
    skip_unless_served(first, "POST /v1/transactions")
    assert first.status == 201, first
    assert "Idempotent-Replayed" not in first.headers
    conforms(first, "Transaction")
    fees_now = await api.call("GET", f"/v1/accounts/{fees}", token=tenant.token)
    assert fees_now.json["balances"]["posted"] == 30  # applied once


async def test_idempotency_key_replays_a_reversal(api: Api, platform: Platform) -> None:
    tenant = await quick_tenant(platform, api)
    bank, wallet, transfer = await funded(api, tenant)
    path = f"/v1/transfers/{transfer['id']}/reverse"
    body = {"id": new_id(), "amount": 400}
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
    bank, wallet, _ = await funded(api, tenant)
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
