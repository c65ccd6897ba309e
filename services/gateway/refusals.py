"""Refused authentications, counted per client address: floods of bad tokens are cut off early.

Every 401 the pipeline answers for a missing, unknown, expired or revoked token is counted against
the client's address (:func:`services.gateway.login.address_of`) in a GCRA in Redis shared by the
fleet (``REFUSED_AUTH_RATE_PER_ADDRESS_PER_SECOND``, ``REFUSED_AUTH_BURST_PER_ADDRESS``). Past the
limit the address is *blocked* in this process until Redis says it may try again; while blocked,
a token this gateway cannot resolve from memory or Redis is answered 429 ``rate_limited`` instead
of being looked up in the session service (the DynamoDB read is what an attacker would make us
pay for). Tokens found in memory or Redis still work, so honest clients sharing the address (an
office behind one NAT) are not locked out.

Only refusals cost a Redis round trip, never a served request. Redis unreachable: not counted
(fail open: the 401 is answered as before, and the per-token negative cache still applies).
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.gateway.login import LOGIN_SCRIPT
from services.gateway.ratelimit import RateDecision, RateLimit
from shared.errors import ProblemError
from shared.redis_client import describe
from shared.settings import Settings

log = logging.getLogger(__name__)

_MAX_BLOCKED = 100_000
"""Addresses remembered as blocked per process (the map is pruned of expired entries past this)."""


class RefusalLimiter:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._script = redis.register_script(LOGIN_SCRIPT)  # one GCRA key: the same script
        self._prefix = f"{settings.redis.key_prefix}refused:"
        self.limit = RateLimit(
            settings.gateway.refused_auth_rate_per_address_per_second, settings.gateway.refused_auth_burst_per_address
        )
        self._blocked: dict[str, tuple[float, RateDecision]] = {}

    @property
    def any_blocked(self) -> bool:
        """Whether any address is (or was recently) blocked in this process."""
        return bool(self._blocked)

    def blocked(self, address: str) -> ProblemError | None:
        """The 429 to answer while ``address`` is blocked (None when it is not)."""
        entry = self._blocked.get(address)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._blocked[address]
            return None
        return _problem(entry[1], entry[0])

    async def refused(self, address: str) -> ProblemError | None:
        """Count one refused authentication; the 429 to answer instead once past the limit."""
        try:
            allowed, _, remaining, retry_after, reset = await self._script(
                keys=[f"{self._prefix}{address}"], args=[self.limit.interval_us, self.limit.tolerance_us]
            )
        except RedisError as exc:
            log.warning("redis unavailable for the refusal limit; not counted", extra={"error": describe(exc)})
            return None
        if int(allowed):
            return None
        decision = RateDecision(False, self.limit.burst, int(remaining), int(reset), int(retry_after))
        until = time.monotonic() + max(int(retry_after), 1) / 1e6
        if len(self._blocked) >= _MAX_BLOCKED:
            now = time.monotonic()
            self._blocked = {k: v for k, v in self._blocked.items() if v[0] > now}
        self._blocked[address] = (until, decision)
        log.info("address blocked after refused authentications", extra={"address": address})
        return _problem(decision, until)


def _problem(decision: RateDecision, until: float) -> ProblemError:
    left = max(0, int((until - time.monotonic()) * 1e6))
    return RateDecision(False, decision.limit, 0, left, left).problem()
