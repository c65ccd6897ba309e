"""Admission of an authenticated request: the rate limit, and the Idempotency-Key claim if any.

Without a key (the hot path) the rate limit is taken from this process's lease of the tenant's
budget (:mod:`.rate_budget`): no Redis round trip. With a key, rate limit and claim are decided
together in one Redis round trip (one Lua script, one tenant slot), since the claim must be
shared by every gateway anyway.

Outcomes: ``limited`` (429, nothing claimed), ``proceed`` (no key, or the key is now claimed by this
request), ``replay`` (the kept response), ``reused`` (same key, another request: 422), ``in_use``
(same request still in flight: 409). Redis unreachable: 503, nothing forwarded (fail closed).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.gateway.idempotency import FINISH_SCRIPT, KeptResponse, idem_key, idem_set_key, new_claim
from services.gateway.rate_budget import RateBudget
from services.gateway.ratelimit import GCRA_TAKE, RateDecision, RateLimit, rate_key
from shared.errors import ErrorCode, ProblemError, unavailable
from shared.redis_client import describe

log = logging.getLogger(__name__)

# KEYS[1] = rate key; KEYS[2] = idempotency key (only read when ARGV[3] == '1'); KEYS[3] = the
# tenant's set of kept keys (scored by expiry, ms). ARGV: 1 interval_us, 2 tolerance_us, 3 has key,
# 4 claim value 'P|fp|id', 5 fingerprint, 6 lease ms, 7 most keys a tenant may keep, 8 tokens the
# request costs (a batch: its item count).
# Returns {allowed, remaining, retry_after_us, reset_us, outcome, record}.
ADMIT_SCRIPT = (
    "local wanted = tonumber(ARGV[8])\nlocal whole = true\n"
    + GCRA_TAKE
    + """
if granted < 1 then return {0, 0, retry_after, reset, 'limited', ''} end
if ARGV[3] ~= '1' then return {1, remaining, '0', reset, 'proceed', ''} end
local v = redis.call('GET', KEYS[2])
if not v then
  local now_ms = math.floor(now / 1000)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_ms)
  if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[7]) then
    local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
    return {1, remaining, string.format('%.0f', (tonumber(oldest[2]) - now_ms) * 1000), reset, 'full', ''}
  end
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[6])
  redis.call('ZADD', KEYS[3], now_ms + tonumber(ARGV[6]), KEYS[2])
  if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[6]) + 120000 then
    redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[6]) + 120000)
  end
  return {1, remaining, '0', reset, 'proceed', ''}
end
if string.sub(v, 3, 2 + string.len(ARGV[5])) ~= ARGV[5] then return {1, remaining, '0', reset, 'reused', ''} end
if string.sub(v, 1, 1) == 'P' then return {1, remaining, '0', reset, 'in_use', ''} end
return {1, remaining, '0', reset, 'replay', v}
"""
)


@dataclass(frozen=True, slots=True)
class Claim:
    """A held Idempotency-Key claim: the key, the exact value this request wrote, and the tenant's
    set of kept keys."""

    key: str
    value: bytes
    fingerprint: str
    set_key: str


@dataclass(frozen=True, slots=True)
class Admitted:
    rate: RateDecision
    claim: Claim | None
    replay: KeptResponse | None


class Admission:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        limit: RateLimit,
        lease_seconds: int,
        keep_seconds: int,
        max_keys: int,
        max_kept_bytes: int,
    ) -> None:
        self.budget = RateBudget(redis, prefix, limit)
        self._admit = redis.register_script(ADMIT_SCRIPT)
        self._finish = redis.register_script(FINISH_SCRIPT)
        self._prefix = prefix
        self._limit = limit
        self._lease_ms = lease_seconds * 1000
        self._keep_seconds = keep_seconds
        self._max_keys = max_keys
        self._max_kept_bytes = max_kept_bytes

    async def admit(self, tenant_id: str, key: str | None = None, fp: str = "", tokens: int = 1) -> Admitted:
        """Count the request (``tokens`` of the tenant's budget: a batch costs its item count) against
        the tenant's limit and, with a key, claim it or find its record."""
        # A batch over the burst costs the whole burst: it is admitted when the bucket is full, so
        # the contract's largest batch stays possible whatever the burst.
        tokens = max(1, min(tokens, self._limit.burst))
        if key is None:
            decision = await self.budget.admit(tenant_id, tokens)
            if not decision.allowed:
                raise decision.problem()
            return Admitted(decision, None, None)
        claim = Claim(idem_key(self._prefix, tenant_id, key), new_claim(fp), fp, idem_set_key(self._prefix, tenant_id))
        keys = [rate_key(self._prefix, tenant_id), claim.key, claim.set_key]
        args: list[bytes | str | int] = [
            self._limit.interval_us,
            self._limit.tolerance_us,
            "1",
            claim.value,
            fp,
            self._lease_ms,
            self._max_keys,
            tokens,
        ]
        try:
            result = await self._admit(keys=keys, args=args)
        except RedisError as exc:
            log.warning("redis unavailable for admission", extra={"error": describe(exc)})
            raise unavailable("the rate limiter is unavailable; retry later") from exc
        allowed, remaining, retry_after, reset, outcome, record = result
        decision = RateDecision(
            allowed=bool(int(allowed)),
            limit=self._limit.burst,
            remaining=int(remaining),
            reset_us=int(reset),
            retry_after_us=int(retry_after),
        )
        outcome = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
        if outcome == "limited":
            raise decision.problem()
        headers = decision.headers()
        if outcome == "reused":
            raise ProblemError(
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was used with a different request",
                headers=headers,
            )
        if outcome == "in_use":
            raise ProblemError(
                ErrorCode.IDEMPOTENCY_KEY_IN_USE,
                "a request with this Idempotency-Key is still in flight; retry later",
                headers={**headers, "Retry-After": "1"},
            )
        if outcome == "full":
            retry = max(1, math.ceil(int(retry_after) / 1_000_000))
            raise ProblemError(
                ErrorCode.RATE_LIMITED,
                f"this tenant keeps the most Idempotency-Keys allowed ({self._max_keys}); retry after {retry} s "
                "or send the request without one",
                headers={**headers, "Retry-After": str(retry)},
            )
        if outcome == "replay":
            return Admitted(decision, None, KeptResponse.decode(bytes(record)))
        return Admitted(decision, claim, None)

    async def complete(self, claim: Claim, response: KeptResponse | None) -> None:
        """Keep ``response`` under the claimed key (24 h), or release the claim when None.

        Best effort: if Redis fails here the upstream already acted, so the caller still gets the
        real answer; the claim then lapses after its lease and a retry runs afresh.
        """
        record = response.encode(claim.fingerprint, self._max_kept_bytes) if response is not None else None
        if response is not None and record is None:
            log.info("response too large to keep; claim released", extra={"bytes": len(response.body)})
        try:
            await self._finish(keys=[claim.key, claim.set_key], args=[claim.value, record or b"", self._keep_seconds])
        except RedisError as exc:
            log.error("could not record the idempotent response", extra={"error": describe(exc)})
