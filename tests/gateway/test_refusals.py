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
    strict = platform.extra_gateway(
        REFUSED_AUTH_BURST_PER_ADDRESS="3",
        REFUSED_AUTH_RATE_PER_ADDRESS_PER_SECOND="0.01",
        UNKNOWN_TOKEN_CACHE_SECONDS="0",
    )
    try:
        tenant = await quick_tenant(platform, api)  # logged in: its session is in Redis

        def unknown() -> str:
            return "st_never-issued-" + uuid.uuid4().hex

        statuses = []
        for _ in range(6):
            reply = await api.call("GET", "/v1/accounts", token=unknown(), base_url=strict.url)
            statuses.append((reply.status, reply.code))
        assert statuses[:3] == [(401, "unauthorized")] * 3
        assert statuses[3:] == [(429, "rate_limited")] * 3
        limited = await api.call("GET", "/v1/accounts", token=unknown(), base_url=strict.url)
        assert int(limited.headers["Retry-After"]) >= 1
        # An honest client behind the same address: its session is found in Redis, so it is served.
        ok = await api.call("GET", "/v1/accounts", token=tenant.token, base_url=strict.url)
        assert ok.status == 200, ok
        # No header at all is a refusal too, answered 429 while blocked.
        bare = await api.call("GET", "/v1/accounts", base_url=strict.url)
        assert (bare.status, bare.code) == (429, "rate_limited")
    finally:
        strict.stop()
