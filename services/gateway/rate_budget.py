"""The per-tenant rate limit without a Redis round trip per request: a local lease of the budget.

The tenant's budget lives in Redis as GCRA state (:mod:`.ratelimit`), shared by every gateway
process. Instead of asking Redis for every request, a gateway *leases* a few tokens at once
(:data:`LEASE_SCRIPT`: the TAT moves on by ``n`` emission intervals, so Redis debits them at once)
and admits requests from the lease locally. When the lease runs low it is refilled in the
background, so a busy tenant's requests do not wait for Redis at all.

Bounds, with N gateway processes (each a share of ``max_chunk`` tokens at most):

- **Over-admission.** Every admitted request was debited in Redis first, so the GCRA bound
  (at most ``burst + rate x t`` in any window of length t) holds for what was leased. A lease
  spent later than it was taken can move leased-but-unspent tokens (at most ``max_chunk`` per
  process, never more) into a later window, so in any window the fleet admits at most
  ``burst + rate x t + N x max_chunk`` requests.
- **Under-admission.** Tokens left in a lease when it expires (:data:`LEASE_LIFETIME_SECONDS`)
  are lost: at most ``N x max_chunk`` per lease lifetime. The lease size follows the tenant's observed rate
  on this process (about :data:`LEASE_HORIZON_SECONDS` of its requests), so a quiet tenant leases
  one token at a time (exactly the old per-request behaviour) and loses nothing.

``max_chunk`` is ``min(64, burst // 16)``: a tenant with a burst under 32 is never leased more
than one token, and its limit is exact.

Redis unreachable: a request that finds no local token is 503 (fail closed, as before); tokens
already leased are still spent, since Redis debited them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.gateway.ratelimit import GCRA_TAKE, RateDecision, RateLimit, rate_key
from shared.errors import unavailable
from shared.redis_client import describe

log = logging.getLogger(__name__)

LEASE_LIFETIME_SECONDS = 1.0
"""A lease's unspent tokens are dropped after this long (the over-admission bound above)."""

LEASE_HORIZON_SECONDS = 0.05
"""A lease is sized to last about this long at the tenant's recent rate on this process."""

MAX_CHUNK = 64

# KEYS[1] = rate key. ARGV: 1 interval_us, 2 tolerance_us, 3 tokens wanted, 4 '1': all or none.
# Grants min(wanted, available) tokens (or all or none): {granted, remaining, retry_after_us, reset_us}.
LEASE_SCRIPT = (
    "local wanted = tonumber(ARGV[3])\nlocal whole = ARGV[4] == '1'\n"
    + GCRA_TAKE
    + "return {granted, remaining, retry_after, reset}\n"
)


@dataclass(slots=True)
class _Lease:
    tokens: int
    """Unspent tokens."""
    size: int
    taken_at: float
    """``time.monotonic()`` when Redis granted it."""
    remaining: int
    """Tokens left in Redis right after the grant (for RateLimit-Remaining)."""
    reset_us: int
    """Microseconds, at the grant, until Redis' bucket was full again."""


def _retrieve(task: asyncio.Task[_Lease | None]) -> None:
    """A refill started ahead of need may fail with nobody awaiting it: its error was logged."""
    if not task.cancelled():
        task.exception()


class RateBudget:
    """Admits a tenant's requests from a local lease of its Redis budget."""

    def __init__(self, redis: Redis, prefix: str, limit: RateLimit) -> None:
        self._lease_script = redis.register_script(LEASE_SCRIPT)
        self._prefix = prefix
        self._limit = limit
        self.max_chunk = max(1, min(MAX_CHUNK, limit.burst // 16))
        self._leases: dict[str, _Lease] = {}
        self._refills: dict[str, asyncio.Task[_Lease | None]] = {}
        self._next_size: dict[str, int] = {}
        self._limited_until: dict[str, tuple[float, RateDecision]] = {}

    async def admit(self, tenant_id: str, tokens: int = 1) -> RateDecision:
        """``tokens`` for ``tenant_id`` (a batch: its item count): the decision (raise
        ``decision.problem()`` when refused). Several tokens are taken from Redis directly, all or
        none, never from the lease: a batch must not drain what single requests lease."""
        if tokens > 1:
            return await self._take_whole(tenant_id, tokens)
        while True:
            now = time.monotonic()
            lease = self._leases.get(tenant_id)
            if lease is not None and lease.tokens > 0 and now - lease.taken_at < LEASE_LIFETIME_SECONDS:
                lease.tokens -= 1
                if lease.tokens * 4 < lease.size and tenant_id not in self._refills:
                    self._refill(tenant_id, now, lease)  # ahead of need: the next request won't wait
                return self._decision(lease, now)
            limited = self._limited_until.get(tenant_id)
            if limited is not None and now < limited[0]:
                return limited[1]
            refill = self._refills.get(tenant_id) or self._refill(tenant_id, now, lease)
            granted = await asyncio.shield(refill)
            if granted is None:  # Redis refused: limited
                limited = self._limited_until.get(tenant_id)
                assert limited is not None
                return limited[1]

    def _refill(self, tenant_id: str, now: float, spent: _Lease | None) -> asyncio.Task[_Lease | None]:
        size = self._next_size.get(tenant_id, 1)
        if spent is not None:
            used = spent.size - spent.tokens
            elapsed = max(now - spent.taken_at, 1e-6)
            size = math.ceil(used / elapsed * LEASE_HORIZON_SECONDS)
        unspent = spent.tokens if spent is not None else 0
        # Never hold more than max_chunk tokens locally (the over-admission bound).
        size = max(1, min(self.max_chunk - unspent, size))
        task = asyncio.create_task(self._lease(tenant_id, size))
        task.add_done_callback(_retrieve)
        self._refills[tenant_id] = task
        return task

    async def _lease(self, tenant_id: str, size: int) -> _Lease | None:
        try:
            result = await self._lease_script(
                keys=[rate_key(self._prefix, tenant_id)],
                args=[self._limit.interval_us, self._limit.tolerance_us, size, "0"],
            )
        except RedisError as exc:
            log.warning("redis unavailable for the rate limit", extra={"error": describe(exc)})
            raise unavailable("the rate limiter is unavailable; retry later") from exc
        finally:
            self._refills.pop(tenant_id, None)
        granted, remaining, retry_after_us, reset_us = (int(v) for v in result)
        now = time.monotonic()
        self._next_size[tenant_id] = size
        if granted == 0:
            decision = RateDecision(False, self._limit.burst, 0, reset_us, retry_after_us)
            # Refuse locally for a short while instead of asking Redis again for every request.
            self._limited_until[tenant_id] = (now + min(retry_after_us / 1e6, 0.1), decision)
            return None
        self._limited_until.pop(tenant_id, None)
        old = self._leases.get(tenant_id)
        carried = old.tokens if old is not None and now - old.taken_at < LEASE_LIFETIME_SECONDS else 0
        lease = _Lease(granted + carried, granted + carried, now, remaining, reset_us)
        self._leases[tenant_id] = lease
        return lease

    async def _take_whole(self, tenant_id: str, tokens: int) -> RateDecision:
        """``tokens`` at once, all or none: first what this process already leased, the rest from
        Redis (so a lease taken ahead of need is not counted twice)."""
        lease = self._leases.get(tenant_id)
        now = time.monotonic()
        if lease is None or now - lease.taken_at >= LEASE_LIFETIME_SECONDS:
            lease = None
        local = min(lease.tokens if lease is not None else 0, tokens)
        need = tokens - local
        remaining, reset_us, retry_after_us = 0, 0, 0
        if need > 0:
            try:
                result = await self._lease_script(
                    keys=[rate_key(self._prefix, tenant_id)],
                    args=[self._limit.interval_us, self._limit.tolerance_us, need, "1"],
                )
            except RedisError as exc:
                log.warning("redis unavailable for the rate limit", extra={"error": describe(exc)})
                raise unavailable("the rate limiter is unavailable; retry later") from exc
            granted, remaining, retry_after_us, reset_us = (int(v) for v in result)
            if granted != need:
                return RateDecision(False, self._limit.burst, remaining + local, reset_us, retry_after_us)
        if lease is not None:
            lease.tokens -= local
            if need == 0:
                return self._decision(lease, time.monotonic())
        left = lease.tokens if lease is not None else 0
        return RateDecision(True, self._limit.burst, remaining + left, reset_us, 0)

    def _decision(self, lease: _Lease, now: float) -> RateDecision:
        elapsed_us = int((now - lease.taken_at) * 1e6)
        return RateDecision(
            allowed=True,
            limit=self._limit.burst,
            remaining=lease.remaining + lease.tokens,
            reset_us=max(0, lease.reset_us - elapsed_us),
            retry_after_us=0,
        )
