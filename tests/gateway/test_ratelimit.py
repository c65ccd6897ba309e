"""Per-tenant rate limit with RateLimit headers, observable on a gateway with a very low limit."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.support.api import Api, Tenant
from tests.support.platform import Platform, quick_tenant
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="module")
def strict_gateway(platform: Platform) -> ServiceProcess:
    # One request per 100 s after a burst of 3: no refill can happen while the test runs.
    return platform.extra_gateway(RATE_LIMIT_PER_SECOND="0.01", RATE_LIMIT_BURST="3")


async def test_past_the_burst_requests_get_429_with_retry_after(
    api: Api, platform: Platform, strict_gateway: ServiceProcess
) -> None:
    tenant = await quick_tenant(platform, api)
    remaining = []
    for _ in range(3):
        reply = await api.call("GET", "/v1/accounts", token=tenant.token, base_url=strict_gateway.url)
        assert reply.status == 200, reply
        assert reply.headers["RateLimit-Limit"] == "3"
        remaining.append(int(reply.headers["RateLimit-Remaining"]))
        assert int(reply.headers["RateLimit-Reset"]) >= 1
    assert remaining == [2, 1, 0]
    limited = await api.call(
        "POST", "/v1/accounts", json={"currency": "USD"}, token=tenant.token, base_url=strict_gateway.url
    )
    assert (limited.status, limited.code) == (429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Remaining"] == "0"
    # Nothing was applied by the refused request (asked of the ledger itself: the tenant is limited
    # on every gateway, since the limit state is shared in Redis).
    internal = {"X-Internal-Token": platform.env["INTERNAL_TOKEN"], "X-Tenant-Id": tenant.tenant_id}
    listed = await api.call("GET", "/v1/accounts", headers=internal, base_url=platform.ledger.url)
    assert listed.json["data"] == []


async def test_limits_are_per_tenant(api: Api, platform: Platform, strict_gateway: ServiceProcess) -> None:
    busy, quiet = await quick_tenant(platform, api), await quick_tenant(platform, api)
    for _ in range(4):
        await api.call("GET", "/v1/accounts", token=busy.token, base_url=strict_gateway.url)
    assert (await api.call("GET", "/v1/accounts", token=busy.token, base_url=strict_gateway.url)).status == 429
    reply = await api.call("GET", "/v1/accounts", token=quiet.token, base_url=strict_gateway.url)
    assert reply.status == 200


async def test_every_authenticated_response_has_ratelimit_headers(api: Api, tenant_a: Tenant) -> None:
    for method, path in [
        ("GET", "/v1/accounts"),
        ("GET", f"/v1/accounts/{'0' * 8}-0000-4000-8000-{'0' * 12}"),
        ("GET", "/v1/accounts?limit=0"),
        ("POST", "/v1/transfers"),
    ]:
        reply = await api.call(method, path, token=tenant_a.token, json={} if method == "POST" else None)
        assert reply.status < 500
        for header in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
            assert header in reply.headers, (path, reply)


async def test_local_leases_bound_admission_across_two_gateways(api: Api, platform: Platform) -> None:
    """Two gateways admit from local leases of one Redis budget (services/gateway/rate_budget.py):
    over any window the fleet admits at most burst + rate x t + N x max_chunk, and loses at most
    N x max_chunk to leases that expire unspent."""
    rate, burst = 50.0, 400
    max_chunk = min(64, burst // 16)  # 25, as RateBudget sizes it
    gateways = [platform.extra_gateway(RATE_LIMIT_PER_SECOND=str(rate), RATE_LIMIT_BURST=str(burst)) for _ in range(2)]
    tenant = await quick_tenant(platform, api)
    admitted = limited = 0
    started = time.monotonic()

    async def client(url: str) -> None:
        nonlocal admitted, limited
        for _ in range(150):  # bounded: 8 clients x 150 requests
            reply = await api.call("GET", "/v1/accounts?limit=1", token=tenant.token, base_url=url)
            assert reply.status in (200, 429), reply
            if reply.status == 200:
                admitted += 1
            else:
                limited += 1
                assert reply.code == "rate_limited" and int(reply.headers["Retry-After"]) >= 1

    try:
        await asyncio.gather(*(client(g.url) for g in gateways for _ in range(4)))
    finally:
        for gateway in gateways:
            gateway.stop()
    elapsed = time.monotonic() - started
    assert limited > 0, "the load must exceed the budget for the bound to mean anything"
    assert admitted <= burst + rate * elapsed + 2 * max_chunk, (admitted, elapsed)
    assert admitted >= burst - 2 * max_chunk, (admitted, elapsed)


async def test_a_batch_costs_its_item_count(api: Api, platform: Platform) -> None:
    """docs/api.md section 6 (rate limits), docs/hardening.md item 9: n transfers in a batch spend n tokens,
    all or none; a batch over the burst costs the whole burst."""
    gateway = platform.extra_gateway(RATE_LIMIT_PER_SECOND="0.01", RATE_LIMIT_BURST="10")
    try:
        tenant = await quick_tenant(platform, api)
        bank = await api.call(
            "POST",
            "/v1/accounts",
            json={"currency": "USD", "normal_balance": "debit"},
            token=tenant.token,
            base_url=gateway.url,
        )
        shop = await api.call(
            "POST", "/v1/accounts", json={"currency": "USD"}, token=tenant.token, base_url=gateway.url
        )
        assert int(shop.headers["RateLimit-Remaining"]) == 8

        def batch(n: int) -> dict[str, object]:
            return {
                "transfers": [
                    {
                        "id": str(uuid.uuid4()),
                        "debit_account_id": bank.json["id"],
                        "credit_account_id": shop.json["id"],
                        "amount": 1,
                        "currency": "USD",
                    }
                    for _ in range(n)
                ]
            }

        five = await api.call("POST", "/v1/transfers/batch", json=batch(5), token=tenant.token, base_url=gateway.url)
        assert five.status == 200 and int(five.headers["RateLimit-Remaining"]) == 3
        four = await api.call("POST", "/v1/transfers/batch", json=batch(4), token=tenant.token, base_url=gateway.url)
        assert (four.status, four.code) == (429, "rate_limited")  # all or none: 3 left, none spent
        three = await api.call("POST", "/v1/transfers/batch", json=batch(3), token=tenant.token, base_url=gateway.url)
        assert three.status == 200 and int(three.headers["RateLimit-Remaining"]) == 0
        # Asked of the ledger itself: the tenant's budget (shared in Redis) is spent on every gateway.
        internal = {"X-Internal-Token": platform.env["INTERNAL_TOKEN"], "X-Tenant-Id": tenant.tenant_id}
        history = await api.call(
            "GET", f"/v1/accounts/{shop.json['id']}/transfers", headers=internal, base_url=platform.ledger.url
        )
        assert history.status == 200, history
        assert len(history.json["data"]) == 8
    finally:
        gateway.stop()
