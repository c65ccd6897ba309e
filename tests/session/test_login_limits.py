"""``POST /v1/sessions`` limits (issue 14, item 3): per API key, per client address, live sessions.

A gateway (and, for the cap, a session service) of the shared platform is started again with small
limits, so each limit is reached in a few calls. Every answer carries the RateLimit headers; past a
limit it is 429 ``rate_limited`` with ``Retry-After``, and the session service was not asked.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.api import Api, Reply
from tests.support.platform import Platform, session_domain
from tests.support.processes import ServiceProcess

SLOW = "0.001"  # a refill so slow that a test never sees one


@pytest.fixture
def limited_gateway(platform: Platform) -> Iterator[ServiceProcess]:
    gateway = platform.extra_gateway(
        LOGIN_BURST_PER_KEY="3",
        LOGIN_RATE_PER_KEY_PER_SECOND=SLOW,
        LOGIN_BURST_PER_ADDRESS="5",
        LOGIN_RATE_PER_ADDRESS_PER_SECOND=SLOW,
        TRUSTED_PROXY_HOPS="1",
    )
    yield gateway
    gateway.stop()


async def _keys(platform: Platform, count: int) -> list[str]:
    async with session_domain(platform) as service:
        tenant = await service.create_tenant("login-limits")
        keys = [tenant.api_key]
        for _ in range(count - 1):
            keys.append((await service.create_api_key(tenant.tenant_id)).api_key)
    return keys


async def _login(api: Api, gateway: ServiceProcess, api_key: str, address: str) -> Reply:
    return await api.call(
        "POST", "/v1/sessions", json={"api_key": api_key}, base_url=gateway.url, headers={"X-Forwarded-For": address}
    )


def _assert_limited(reply: Reply) -> None:
    assert (reply.status, reply.code) == (429, "rate_limited"), reply
    assert int(reply.headers["Retry-After"]) >= 1, reply.headers
    assert reply.headers["RateLimit-Remaining"] == "0", reply.headers


async def test_logins_are_limited_per_api_key(api: Api, platform: Platform, limited_gateway: ServiceProcess) -> None:
    key, other = await _keys(platform, 2)
    for remaining in (2, 1, 0):
        reply = await _login(api, limited_gateway, key, "198.51.100.1")
        assert reply.status == 201, reply
        assert (reply.headers["RateLimit-Limit"], reply.headers["RateLimit-Remaining"]) == ("3", str(remaining))
        assert int(reply.headers["RateLimit-Reset"]) >= 1
    # From another address too: the limit is the key's.
    _assert_limited(await _login(api, limited_gateway, key, "198.51.100.2"))
    # A wrong secret for the same key id counts against it as well (the secret is checked later).
    _assert_limited(await _login(api, limited_gateway, key.split(".")[0] + ".wrong", "198.51.100.3"))
    # Another key is not affected.
    assert (await _login(api, limited_gateway, other, "198.51.100.1")).status == 201


async def test_logins_are_limited_per_client_address(
    api: Api, platform: Platform, limited_gateway: ServiceProcess
) -> None:
    keys = await _keys(platform, 9)
    attempts = [keys[0], keys[1], "ak_000000000000000000000000.nope", "garbage", keys[2]]
    statuses = [(await _login(api, limited_gateway, key, "203.0.113.9")).status for key in attempts]
    assert statuses == [201, 201, 401, 401, 201], statuses
    # The address's budget is spent, whatever key comes next, bad or good.
    _assert_limited(await _login(api, limited_gateway, keys[0], "203.0.113.9"))
    _assert_limited(await _login(api, limited_gateway, "garbage", "203.0.113.9"))
    # Only the entry the trusted proxy appended counts: a client cannot pick its own address.
    _assert_limited(await _login(api, limited_gateway, keys[1], "192.0.2.77, 203.0.113.9"))
    assert (await _login(api, limited_gateway, keys[1], "203.0.113.9, 192.0.2.77")).status == 201
    # IPv6 clients count per /64 (each login here with a key of its own, so only the address counts).
    for host, key in enumerate(keys[3:8], start=1):
        assert (await _login(api, limited_gateway, key, f"2001:db8:1:2::{host}")).status == 201
    _assert_limited(await _login(api, limited_gateway, keys[8], "2001:db8:1:2:ffff::1"))
    assert (await _login(api, limited_gateway, keys[8], "2001:db8:1:3::1")).status == 201


async def test_live_sessions_per_key_are_capped(api: Api, platform: Platform) -> None:
    session = platform.extra_session(SESSIONS_MAX_LIVE_PER_KEY="2")
    gateway = platform.extra_gateway(SESSION_URL=session.url)
    try:
        key, other = await _keys(platform, 2)
        tokens = []
        for _ in range(2):
            reply = await _login(api, gateway, key, "198.51.100.20")
            assert reply.status == 201, reply
            tokens.append(reply.json["token"])
        full = await _login(api, gateway, key, "198.51.100.20")
        assert (full.status, full.code) == (429, "rate_limited"), full
        # The place frees up when the oldest session expires (SESSION_TTL_SECONDS, 900 s).
        assert 800 <= int(full.headers["Retry-After"]) <= 900, full.headers
        assert "RateLimit-Limit" in full.headers
        assert (await _login(api, gateway, other, "198.51.100.20")).status == 201  # per key
        # Logging out frees a place at once.
        out = await api.call("DELETE", "/v1/sessions/current", token=tokens[0], base_url=gateway.url)
        assert out.status == 204, out
        assert (await _login(api, gateway, key, "198.51.100.20")).status == 201
        assert (await _login(api, gateway, key, "198.51.100.20")).status == 429
        # The refused logins opened nothing: the sessions still work.
        reply = await api.call("GET", "/v1/accounts", token=tokens[1], base_url=gateway.url)
        assert reply.status == 200, reply
    finally:
        gateway.stop()
        session.stop()
