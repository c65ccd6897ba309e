"""Each dependency stopped in turn: 503 ``unavailable`` with Retry-After, never a 500, never a write
the client was told failed; after a restart the platform recovers by itself.

"Recovers by itself" is asserted the way a client experiences it: the first calls after a restart
are retried on 503 (the contract's answer for "nothing done, retry"), for at most
:data:`RECOVERY_SECONDS`, and must then succeed with the outcome the test names. A 503 right after a
restart is within the contract (a dependency answering slowly on a loaded machine); one that lasts
is a failure to recover. (A CI failure here was pooled Redis connections to the old server failing
once each after the restart: fixed in shared/redis_client.py and tested in
tests/shared/test_redis_client.py, which asks for every pooled connection at once.)

Every test restores what it stopped (in ``finally``), since the platform is shared.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from tests.support.api import Api, Reply, Tenant
from tests.support.platform import Platform, quick_tenant
from tests.support.processes import http_status

RECOVERY_SECONDS = 15.0


def _unavailable(reply: Reply) -> None:
    assert (reply.status, reply.code) == (503, "unavailable"), reply
    assert int(reply.headers["Retry-After"]) >= 1
    assert reply.headers["Content-Type"].startswith("application/problem+json")


async def _once_recovered(call: Callable[[], Awaitable[Reply]]) -> Reply:
    """``call``'s reply once the platform has recovered: a 503 ``unavailable`` is retried (a
    well-formed one only) until another answer or :data:`RECOVERY_SECONDS` have passed."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    while True:
        reply = await call()
        if reply.status != 503 or time.monotonic() >= deadline:
            return reply
        _unavailable(reply)
        await asyncio.sleep(0.25)


async def _ledger_accounts(api: Api, platform: Platform, tenant: Tenant) -> list[str]:
    """The tenant's accounts as the ledger itself has them (bypassing the gateway)."""
    headers = {"X-Internal-Token": platform.env["INTERNAL_TOKEN"], "X-Tenant-Id": tenant.tenant_id}
    reply = await api.call("GET", "/v1/accounts?limit=1000", headers=headers, base_url=platform.ledger.url)
    assert reply.status == 200, reply
    return [a["id"] for a in reply.json["data"]]


@contextmanager
def stopped(platform: Platform, name: str) -> Iterator[None]:
    piece = getattr(platform, name)
    piece.stop()
    try:
        yield
    finally:
        piece.start()
        platform.wait_ready()


async def test_ledger_down(api: Api, platform: Platform) -> None:
    tenant = await quick_tenant(platform, api)
    account = await api.account(tenant)
    other = await api.account(tenant)
    transfer = {
        "id": str(uuid.uuid4()),
        "debit_account_id": account["id"],
        "credit_account_id": other["id"],
        "amount": 7,
        "currency": "USD",
    }
    key = {"Idempotency-Key": "during-ledger-outage"}
    with stopped(platform, "ledger"):
        _unavailable(await api.call("GET", f"/v1/accounts/{account['id']}", token=tenant.token))
        _unavailable(await api.call("POST", "/v1/transfers", json=transfer, token=tenant.token, headers=key))
        _unavailable(await api.call("POST", "/v1/accounts", json={"currency": "USD"}, token=tenant.token))
        assert http_status(f"{platform.gateway.url}/health/ready") == 503
        assert http_status(f"{platform.gateway.url}/health/live") == 200
        # What does not need the ledger keeps working.
        assert (await api.call("POST", "/v1/sessions", json={"api_key": tenant.api_key})).status == 201
    # The 503 was not kept: the same key runs afresh, and the transfer is applied once.
    after = await _once_recovered(
        lambda: api.call("POST", "/v1/transfers", json=transfer, token=tenant.token, headers=key)
    )
    assert after.status == 201, after
    assert "Idempotent-Replayed" not in after.headers
    history = await api.call("GET", f"/v1/accounts/{account['id']}/transfers", token=tenant.token)
    assert [t["id"] for t in history.json["data"]] == [transfer["id"]]
    assert await _ledger_accounts(api, platform, tenant) == [account["id"], other["id"]]


async def test_session_service_down(api: Api, platform: Platform) -> None:
    tenant = await quick_tenant(platform, api)
    with stopped(platform, "session"):
        _unavailable(await api.call("POST", "/v1/sessions", json={"api_key": tenant.api_key}))
        _unavailable(await api.call("GET", "/v1/accounts", token="st_never-seen-token-0123456789"))
        _unavailable(await api.call("DELETE", "/v1/sessions/current", token=tenant.token))
        # A session already in the Redis cache keeps working (see ADR 0020).
        assert (await api.call("GET", "/v1/accounts", token=tenant.token)).status == 200
        assert http_status(f"{platform.gateway.url}/health/ready") == 503
    login = await _once_recovered(lambda: api.call("POST", "/v1/sessions", json={"api_key": tenant.api_key}))
    assert login.status == 201, login
    unknown = await api.call("GET", "/v1/accounts", token="st_never-seen-token-0123456789")
    assert (unknown.status, unknown.code) == (401, "unauthorized")
    assert (await api.call("DELETE", "/v1/sessions/current", token=tenant.token)).status == 204


def _new_account(api: Api, tenant: Tenant, key: str | None) -> Awaitable[Reply]:
    """``POST /v1/accounts`` (USD), with ``key`` as its Idempotency-Key if given."""
    headers = {"Idempotency-Key": key} if key else {}
    return api.call("POST", "/v1/accounts", json={"currency": "USD"}, token=tenant.token, headers=headers)


async def test_redis_down(api: Api, platform: Platform) -> None:
    tenant = await quick_tenant(platform, api)
    kept = await _new_account(api, tenant, "before-outage")
    assert kept.status == 201
    with stopped(platform, "redis"):
        _unavailable(await api.call("GET", "/v1/accounts", token=tenant.token))
        for key in (None, "during-outage"):
            _unavailable(await _new_account(api, tenant, key))
        _unavailable(await api.call("DELETE", "/v1/sessions/current", token=tenant.token))
        # Login only needs DynamoDB (the cache fill is best effort).
        late = await api.call("POST", "/v1/sessions", json={"api_key": tenant.api_key})
        assert late.status == 201
        # Nothing the client was told failed was written.
        assert await _ledger_accounts(api, platform, tenant) == [kept.json["id"]]
    # Redis' append-only file kept the session cache and the idempotency records.
    replay = await _once_recovered(lambda: _new_account(api, tenant, "before-outage"))
    assert replay.status == 201, replay
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json["id"] == kept.json["id"]
    listed = await _once_recovered(lambda: api.call("GET", "/v1/accounts", token=late.json["token"]))
    assert listed.status == 200, listed
    again = await _once_recovered(lambda: _new_account(api, tenant, "during-outage"))
    assert again.status == 201, again
    assert "Idempotent-Replayed" not in again.headers
    # Retries after a 503 wrote nothing twice: exactly the two accounts the client was told of.
    assert await _ledger_accounts(api, platform, tenant) == [kept.json["id"], again.json["id"]]


async def test_dynamodb_unresponsive(api: Api, platform: Platform) -> None:
    """A frozen DynamoDB endpoint: logins time out into 503; cached sessions keep working."""
    tenant = await quick_tenant(platform, api)
    platform.dynamodb.freeze()
    try:
        _unavailable(await api.call("POST", "/v1/sessions", json={"api_key": tenant.api_key}))
        # A token never seen before: the gateway refuses tokens from memory once refused (ADR 0028).
        unseen = "st_never-seen-" + uuid.uuid4().hex
        _unavailable(await api.call("GET", "/v1/accounts", token=unseen))
        assert (await api.call("GET", "/v1/accounts", token=tenant.token)).status == 200
    finally:
        platform.dynamodb.thaw()
    login = await _once_recovered(lambda: api.call("POST", "/v1/sessions", json={"api_key": tenant.api_key}))
    assert login.status == 201, login


async def test_refused_tokens_are_refused_from_memory(api: Api, platform: Platform) -> None:
    """A token refused once is refused again by the same gateway without Redis or the session
    service (UNKNOWN_TOKEN_CACHE_SECONDS): a flood of bad tokens costs neither. Without the
    memory, Redis being down makes the same request 503."""
    bad = "st_never-issued-" + uuid.uuid4().hex
    first = await api.call("GET", "/v1/accounts", token=bad)
    assert (first.status, first.code) == (401, "unauthorized")
    with stopped(platform, "redis"):
        again = await api.call("GET", "/v1/accounts", token=bad)
        assert (again.status, again.code) == (401, "unauthorized")
        other = await api.call("GET", "/v1/accounts", token="st_never-issued-" + uuid.uuid4().hex)
        _unavailable(other)  # never seen: nothing to answer it from
