"""Refused authentications are counted per client address (services/gateway/refusals.py): past the
limit, tokens the gateway cannot resolve without the session service are 429, while tokens found in
Redis keep working from the same address."""

from __future__ import annotations

import uuid

from tests.support.api import Api
from tests.support.platform import Platform, quick_tenant


async def test_an_address_that_keeps_failing_is_cut_off_before_the_session_service(
    api: Api, platform: Platform
) -> None:
    # The count lives in the platform's Redis under the platform's key prefix, keyed by address:
    # every test client is 127.0.0.1, and the platform's own gateway counts the suites' deliberate
    # 401s there too (against its high limit), which would use up part of this gateway's low one.
    # So this gateway trusts one proxy hop and the test's calls come from an address of their own
    # (in 198.18.0.0/15, the benchmarking range: no other test uses it; random, so a rerun in the
    # same session starts afresh too).
    strict = platform.extra_gateway(
        REFUSED_AUTH_BURST_PER_ADDRESS="3",
        REFUSED_AUTH_RATE_PER_ADDRESS_PER_SECOND="0.01",
        UNKNOWN_TOKEN_CACHE_SECONDS="0",
        TRUSTED_PROXY_HOPS="1",
    )
    n = uuid.uuid4().int
    address = {"X-Forwarded-For": f"198.18.{n % 256}.{n // 256 % 254 + 1}"}
    try:
        tenant = await quick_tenant(platform, api)  # logged in: its session is in Redis

        def unknown() -> str:
            return "st_never-issued-" + uuid.uuid4().hex

        statuses = []
        for _ in range(6):
            reply = await api.call("GET", "/v1/accounts", token=unknown(), headers=address, base_url=strict.url)
            statuses.append((reply.status, reply.code))
        assert statuses[:3] == [(401, "unauthorized")] * 3
        assert statuses[3:] == [(429, "rate_limited")] * 3
        limited = await api.call("GET", "/v1/accounts", token=unknown(), headers=address, base_url=strict.url)
        assert int(limited.headers["Retry-After"]) >= 1
        # An honest client behind the same address: its session is found in Redis, so it is served.
        ok = await api.call("GET", "/v1/accounts", token=tenant.token, headers=address, base_url=strict.url)
        assert ok.status == 200, ok
        # No Authorization header at all is a refusal too, answered 429 while blocked.
        bare = await api.call("GET", "/v1/accounts", headers=address, base_url=strict.url)
        assert (bare.status, bare.code) == (429, "rate_limited")
    finally:
        strict.stop()
