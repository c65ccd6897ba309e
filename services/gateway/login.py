"""``POST /v1/sessions``: limits per API key and per client address, then the session service.

Each login costs the session service a consistent DynamoDB read and, when the key is good, a write;
without limits one client could run that up at will, and a leaked key could mint sessions without
end. So, before the session service is asked:

- **Per key**: ``LOGIN_RATE_PER_KEY_PER_SECOND`` / ``LOGIN_BURST_PER_KEY`` for every call that
  presents one key id (read from the key itself, valid or not: the secret is checked later).
- **Per client address**: ``LOGIN_RATE_PER_ADDRESS_PER_SECOND`` / ``LOGIN_BURST_PER_ADDRESS`` for
  every call from one address, whatever the key. The address is the peer, or behind
  ``TRUSTED_PROXY_HOPS`` proxies (the ALB) the ``X-Forwarded-For`` entry they appended; the entries
  a client writes itself are never trusted. IPv6 clients count per /64, which is what one
  subscriber usually holds.

Both are GCRA on Redis' clock (:mod:`.ratelimit`), checked and debited together in one script, so
a call refused by one limit costs nothing against the other. Every answer carries the RateLimit
headers of the tighter limit; past either, 429 ``rate_limited`` with ``Retry-After``. The live
session cap per key is the session service's (429 too, with its ``Retry-After`` passed through).
A new session's token never lands in a cache: the 201 carries ``Cache-Control: no-store``.
Redis unreachable: the limits fail open (logged), as logins need only DynamoDB (ADR 0020).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import msgspec
from litestar import Request, Response
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.gateway.ratelimit import RateDecision, RateLimit
from shared.errors import ErrorCode, unavailable
from shared.http import ServiceClient, UpstreamUnavailable, upstream_problem
from shared.redis_client import describe
from shared.session_api import LoginRequest, SessionCreated, key_id_of
from shared.settings import Settings
from shared.web import JSON_MEDIA_TYPE, decode_json, json_response, read_body

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}
"""On every response that carries a token: no browser, proxy or CDN may keep it (RFC 9111)."""

# KEYS: the GCRA keys to check (per address, then per key when the key id is well formed).
# ARGV: interval_us and tolerance_us for each key, in the same order.
# Returns {allowed, index of the tighter key (1-based), remaining, retry_after_us, reset_us}.
LOGIN_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
local tight, tight_remaining, tight_reset = 1, nil, 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local stored = redis.call('GET', KEYS[i])
  local tat = now
  if stored then tat = math.max(tonumber(stored), now) end
  local new_tat = tat + interval
  if now < new_tat - tolerance then
    return {0, i, 0, string.format('%.0f', new_tat - tolerance - now), string.format('%.0f', tat - now)}
  end
  tats[i] = new_tat
  local remaining = math.floor((tolerance - (new_tat - now)) / interval)
  if tight_remaining == nil or remaining < tight_remaining then
    tight, tight_remaining, tight_reset = i, remaining, new_tat - now
  end
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1000)
end
return {1, tight, tight_remaining, '0', string.format('%.0f', tight_reset)}
"""


def client_address(request: Request[Any, Any, Any], trusted_hops: int) -> str:
    """The caller's address as the limits count it (see the module docstring)."""
    return address_of(request.scope, trusted_hops)


def address_of(scope: Any, trusted_hops: int) -> str:
    """:func:`client_address` from a raw ASGI scope."""
    candidate = ""
    if trusted_hops > 0:
        hops = [
            part.strip()
            for name, value in scope["headers"]
            if name == b"x-forwarded-for"
            for part in value.decode("latin-1").split(",")
        ]
        if len(hops) >= trusted_hops:
            candidate = hops[-trusted_hops]
    if not candidate:
        client = scope.get("client")
        candidate = client[0] if client else ""
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class LoginLimiter:
    """The per-address and per-key login limits of one gateway process (state lives in Redis)."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._script = redis.register_script(LOGIN_SCRIPT)
        # One hash tag for every login key: the script touches two of them, which a Redis Cluster
        # allows only within one slot. Logins are few enough for one slot.
        self._prefix = f"{settings.redis.key_prefix}login:{{login}}:"
        self.per_address = RateLimit(
            settings.gateway.login_rate_per_address_per_second, settings.gateway.login_burst_per_address
        )
        self.per_key = RateLimit(settings.gateway.login_rate_per_key_per_second, settings.gateway.login_burst_per_key)
        self.trusted_hops = settings.gateway.trusted_proxy_hops

    async def admit(self, address: str, key_id: str | None) -> RateDecision:
        """Count one login from ``address`` presenting ``key_id``; 429 past either limit."""
        limits = [self.per_address] + ([self.per_key] if key_id else [])
        keys = [f"{self._prefix}addr:{address}"] + ([f"{self._prefix}key:{key_id}"] if key_id else [])
        args = [value for limit in limits for value in (limit.interval_us, limit.tolerance_us)]
        try:
            allowed, index, remaining, retry_after, reset = await self._script(keys=keys, args=args)
        except RedisError as exc:
            # Fail open: a login needs only DynamoDB, which checks the key itself (ADR 0020), and
            # the contract keeps logins working through a Redis outage. No headers then.
            log.warning("redis unavailable for the login limits; admitting", extra={"error": describe(exc)})
            return RateDecision(
                allowed=True, limit=limits[0].burst, remaining=limits[0].burst, reset_us=0, retry_after_us=0
            )
        decision = RateDecision(
            allowed=bool(int(allowed)),
            limit=limits[int(index) - 1].burst,
            remaining=int(remaining),
            reset_us=int(reset),
            retry_after_us=int(retry_after),
        )
        if not decision.allowed:
            which = "API key" if int(index) == 2 else "client address"
            log.info("login rate limited", extra={"limit": which, "key_id": key_id})
            raise decision.problem()
        return decision


async def open_session(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The whole ``POST /v1/sessions`` handler (mounted by :mod:`.routes`)."""
    body = decode_json(await read_body(request), request.headers.get("content-type"), LoginRequest)
    assert body is not None
    limiter: LoginLimiter = request.app.state.logins
    decision = await limiter.admit(client_address(request, limiter.trusted_hops), key_id_of(body.api_key))
    headers = decision.headers()
    sessions: ServiceClient = request.app.state.sessions
    try:
        # ServiceClient.request rather than .call: the session service's Retry-After (a full live
        # session cap) must reach the client.
        answer = await sessions.request(
            "POST", "/internal/sessions", body=msgspec.json.encode(body), headers={"Content-Type": JSON_MEDIA_TYPE}
        )
        if answer.status == 201:
            created = msgspec.json.decode(answer.body, type=SessionCreated)
            return json_response(created, 201, headers={**headers, **NO_STORE})
        problem = upstream_problem("session", answer)
        if problem.code is ErrorCode.RATE_LIMITED and answer.retry_after:
            problem.headers["Retry-After"] = answer.retry_after
    except UpstreamUnavailable as exc:
        problem = exc.to_problem()
    except msgspec.DecodeError:
        log.error("malformed session service response")
        problem = unavailable("the session service is unavailable; retry later")
    problem.headers.update(headers)
    raise problem
