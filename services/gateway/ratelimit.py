"""Per-tenant rate limit: GCRA on Redis' clock.

The one Lua step (:data:`GCRA_TAKE`) is shared by :mod:`.admission` (one token, with the
Idempotency-Key claim) and :mod:`.rate_budget` (a lease of several tokens).

GCRA keeps one number per tenant, the theoretical arrival time (TAT) of the next request. With an
emission interval T = 1/rate and a tolerance of ``burst`` x T, a request at ``now`` is admitted when
``max(TAT, now) + T - burst*T <= now``; then TAT moves on by T. It is exactly a token bucket of
``burst`` tokens refilled at ``rate`` per second, but with one key, one read and one write, and on
Redis' clock (``TIME``) so every gateway instance agrees without synchronised clocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.errors import ErrorCode, ProblemError


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The configured limit, in the units the Lua script takes (microseconds)."""

    per_second: float
    burst: int

    @property
    def interval_us(self) -> int:
        return max(1, round(1_000_000 / self.per_second))

    @property
    def tolerance_us(self) -> int:
        return self.interval_us * max(1, self.burst)


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_us: int
    retry_after_us: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(max(0, math.ceil(self.reset_us / 1_000_000))),
        }

    def problem(self) -> ProblemError:
        retry_after = max(1, math.ceil(self.retry_after_us / 1_000_000))
        return ProblemError(
            ErrorCode.RATE_LIMITED,
            f"rate limit exceeded; retry after {retry_after} s",
            headers={**self.headers(), "Retry-After": str(retry_after)},
        )


# The one GCRA step, shared by the admission script (a request's tokens, with the Idempotency-Key
# claim) and the lease script (several tokens): KEYS[1] = the rate key, ARGV[1] = interval_us,
# ARGV[2] = tolerance_us; the caller's Lua defines `wanted` and `whole` first. Grants
# min(wanted, available) tokens, or, with `whole`, all of them or none (a batch counts by its item
# count). Leaves in Lua locals: granted, remaining, retry_after (string, us), reset (string, us).
GCRA_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then tat = math.max(tonumber(stored), now) end
local available = math.floor((now + tolerance - tat) / interval)
local granted = math.min(wanted, math.max(available, 0))
if whole and granted < wanted then granted = 0 end
local retry_after = '0'
if granted < 1 then
  local need = 1
  if whole then need = wanted end
  retry_after = string.format('%.0f', tat + need * interval - tolerance - now)
end
local new_tat = tat + granted * interval
if granted > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
end
local remaining = math.max(available - granted, 0)
local reset = string.format('%.0f', new_tat - now)
"""


def rate_key(prefix: str, tenant_id: str) -> str:
    # The hash tag keeps a tenant's rate and idempotency keys in one cluster slot (one script).
    return f"{prefix}rl:{{{tenant_id}}}"
