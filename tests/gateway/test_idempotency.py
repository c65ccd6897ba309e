"""Idempotency-Key: replay, reuse with another request, in-flight duplicates, tenant separation."""

from __future__ import annotations

import asyncio
import signal
import uuid
from typing import cast

from redis.asyncio import Redis

from services.gateway.idempotency import idem_key
from tests.support.api import Api, Reply, Tenant
from tests.support.platform import Platform, quick_tenant


async def _count_accounts(api: Api, tenant: Tenant) -> int:
    reply = await api.call("GET", "/v1/accounts?limit=1000", token=tenant.token)
    assert reply.status == 200, reply
    return len(reply.json["data"])


def _post_account(api: Api, tenant: Tenant, key: str, body: bytes, base_url: str | None = None) -> asyncio.Task[Reply]:
    return asyncio.ensure_future(
        api.call(
            "POST",
            "/v1/accounts",
            data=body,
            token=tenant.token,
            headers={"Content-Type": "application/json", "Idempotency-Key": key},
            base_url=base_url,
        )
    )


async def test_replay_returns_the_kept_response_without_applying_again(api: Api, platform: Platform) -> None:
    tenant = await quick_tenant(platform, api)
    first = await _post_account(api, tenant, "open-1", b'{"currency": "USD", "metadata": {"a": "1", "b": "2"}}')
    assert first.status == 201
    assert "Idempotent-Replayed" not in first.headers
    # Same JSON, other key order and spacing: the same request.
    again = await _post_account(api, tenant, "open-1", b'{"metadata":{"b":"2","a":"1"},"currency":"USD"}')
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.body == first.body
    assert "RateLimit-Remaining" in again.headers
    assert await _count_accounts(api, tenant) == 1


async def test_same_key_with_another_request_is_422(api: Api, platform: Platform) -> None:
    tenant = await quick_tenant(platform, api)
    assert (await _post_account(api, tenant, "k", b'{"currency": "USD"}')).status == 201
    other_body = await _post_account(api, tenant, "k", b'{"currency": "EUR"}')
    assert (other_body.status, other_body.code) == (422, "idempotency_key_reused")
    other_path = await api.call(
        "POST", "/v1/transfers", json={"currency": "USD"}, token=tenant.token, headers={"Idempotency-Key": "k"}
    )
    assert (other_path.status, other_path.code) == (422, "idempotency_key_reused")
    assert await _count_accounts(api, tenant) == 1


async def test_error_responses_are_kept_too(api: Api, platform: Platform) -> None:
    tenant = await quick_tenant(platform, api)
    first = await _post_account(api, tenant, "bad", b'{"currency": "usd"}')
    assert (first.status, first.code) == (400, "invalid_request")
    again = await _post_account(api, tenant, "bad", b'{"currency": "usd"}')
    assert again.status == 400
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_keys_of_different_tenants_never_meet(api: Api, platform: Platform) -> None:
    one, two = await quick_tenant(platform, api), await quick_tenant(platform, api)
    body = b'{"currency": "USD"}'
    first = await _post_account(api, one, "shared-key", body)
    second = await _post_account(api, two, "shared-key", body)
    assert first.status == second.status == 201
    assert "Idempotent-Replayed" not in second.headers
    assert first.json["id"] != second.json["id"]


async def test_invalid_keys_are_400(api: Api, tenant_a: Tenant) -> None:
    for key in ["x" * 256, "tab\there"]:
        reply = await _post_account(api, tenant_a, key, b'{"currency": "USD"}')
        assert (reply.status, reply.code) == (400, "invalid_request"), key
        assert "RateLimit-Limit" in reply.headers


async def test_concurrent_duplicates_apply_exactly_once(api: Api, platform: Platform) -> None:
    tenant = await quick_tenant(platform, api)
    body = b'{"currency": "EUR"}'
    replies = await asyncio.gather(*[_post_account(api, tenant, "race", body) for _ in range(20)])
    applied = [r for r in replies if r.status == 201 and "Idempotent-Replayed" not in r.headers]
    replayed = [r for r in replies if r.status == 201 and "Idempotent-Replayed" in r.headers]
    in_use = [r for r in replies if r.status == 409]
    assert len(applied) == 1
    assert len(applied) + len(replayed) + len(in_use) == 20, replies
    assert all(r.code == "idempotency_key_in_use" and r.headers["Retry-After"] for r in in_use)
    assert all(r.body == applied[0].body for r in replayed)
    assert await _count_accounts(api, tenant) == 1


async def test_a_repeat_while_the_first_is_in_flight_is_409(api: Api, platform: Platform) -> None:
    """The ledger is frozen (SIGSTOP) so that the first request is certainly still in flight. Through
    a gateway of its own that waits 30 s for the ledger: at the platform's 5 s, a slow machine
    could time the first request out (503) before the ledger is thawed."""
    patient = platform.extra_gateway(UPSTREAM_TIMEOUT_SECONDS="30")
    try:
        await _repeat_while_in_flight(api, platform, patient.url)
    finally:
        patient.stop()


async def _repeat_while_in_flight(api: Api, platform: Platform, gateway: str) -> None:
    tenant = await quick_tenant(platform, api)
    key = f"slow-{uuid.uuid4()}"
    redis = Redis.from_url(platform.env["REDIS_URL"])
    ledger = platform.ledger.process
    assert ledger is not None
    claim_key = idem_key(platform.env["REDIS_KEY_PREFIX"], tenant.tenant_id, key)
    ledger.send_signal(signal.SIGSTOP)
    try:
        first = _post_account(api, tenant, key, b'{"currency": "USD"}', gateway)
        for _ in range(500):
            claim = await redis.get(claim_key)
            if claim is not None:
                break
            await asyncio.sleep(0.01)
        assert claim is not None and cast(bytes, claim).startswith(b"P|")
        second = await _post_account(api, tenant, key, b'{"currency": "USD"}', gateway)
        assert (second.status, second.code) == (409, "idempotency_key_in_use")
        assert second.headers["Retry-After"] == "1"
    finally:
        ledger.send_signal(signal.SIGCONT)
        await redis.aclose()
    done = await first
    assert done.status == 201
    third = await _post_account(api, tenant, key, b'{"currency": "USD"}')
    assert third.headers["Idempotent-Replayed"] == "true"
    assert third.body == done.body
    assert await _count_accounts(api, tenant) == 1
