"""Per-tenant rate limit: GCRA on Redis' clock (the Lua part lives in :mod:`.admission`).

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


def rate_key(prefix: str, tenant_id: str) -> str:
    # The hash tag keeps a tenant's rate and idempotency keys in one cluster slot (one script).
    return f"{prefix}rl:{{{tenant_id}}}"
