"""The session service's side of the Redis session cache (see :mod:`shared.session_cache`).

Reads are the gateway's; this module only writes: fills after a DynamoDB read (``SET NX``, so a
fill never overwrites a revocation tombstone), tombstones on session revocation, and key
revocation markers. Fills are best effort (DynamoDB is the truth); tombstones and markers are not:
when Redis is unreachable a revocation fails with 503 rather than be silently incomplete.

It also keeps each API key's live sessions (``live:{<key_id>}``, a sorted set of token hashes
scored by expiry), so that a login past ``SESSIONS_MAX_LIVE_PER_KEY`` can be refused in one round
trip: :data:`ADMIT_SESSION_SCRIPT` drops the expired members, counts the rest and adds the new one
only below the cap. Logout and key revocation remove members, so they free places at once. The set
is bookkeeping for the cap, not a credential: were it lost, the cap would only count from zero again.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.redis_client import describe
from shared.session_cache import (
    KEY_REVOCATION_TTL_SECONDS,
    TOMBSTONE,
    encode_record,
    key_revocation_key,
    session_key,
)

log = logging.getLogger(__name__)


# KEYS[1] = the key's live set. ARGV: 1 token hash, 2 its expiry (epoch s), 3 cap.
# Returns -1 when admitted, else the seconds until the oldest live session expires.
ADMIT_SESSION_SCRIPT = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) - now)
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('EXPIREAT', KEYS[1], math.max(tonumber(last[2]), tonumber(ARGV[2])) + 1)
return -1
"""


def live_sessions_key(prefix: str, key_id: str) -> str:
    return f"{prefix}live:{{{key_id}}}"


class CacheUnavailable(Exception):
    """Redis did not answer a write that must not be skipped."""


class SessionCache:
    def __init__(self, redis: Redis, prefix: str, max_ttl_seconds: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.max_ttl_seconds = max_ttl_seconds
        self._admit_session = redis.register_script(ADMIT_SESSION_SCRIPT)

    async def admit_session(self, key_id: str, hashed_token: str, expires_at_epoch: int, cap: int) -> int | None:
        """Count a new session of ``key_id``: None when admitted, else the seconds until a place
        frees up. Redis unreachable: admitted (fail open, logged): a login needs only DynamoDB by
        contract, which checks the key itself; the cap is a guard against runaway clients."""
        try:
            wait = int(
                await self._admit_session(
                    keys=[live_sessions_key(self.prefix, key_id)], args=[hashed_token, expires_at_epoch, cap]
                )
            )
        except RedisError as exc:
            log.warning("live session cap not checked: redis unavailable", extra={"error": describe(exc)})
            return None
        return None if wait < 0 else wait

    async def forget_session(self, key_id: str, hashed_token: str) -> None:
        """The session ended early (logout, or it was never stored): free its place. Best effort."""
        try:
            await self.redis.zrem(live_sessions_key(self.prefix, key_id), hashed_token)
        except RedisError as exc:
            log.warning("live session not forgotten: redis unavailable", extra={"error": describe(exc)})

    async def forget_key(self, key_id: str) -> None:
        """Every session of a revoked key is dead: drop its live set. Best effort."""
        try:
            await self.redis.delete(live_sessions_key(self.prefix, key_id))
        except RedisError as exc:
            log.warning("live sessions not forgotten: redis unavailable", extra={"error": describe(exc)})

    async def fill(self, hashed_token: str, tenant_id: str, key_id: str, expires_at_epoch: int) -> None:
        """Cache a live session until its expiry (at most the cache TTL). Best effort."""
        ttl = min(self.max_ttl_seconds, expires_at_epoch - int(time.time()))
        if ttl <= 0:
            return
        try:
            await self.redis.set(
                session_key(self.prefix, hashed_token),
                encode_record(tenant_id, key_id, expires_at_epoch),
                ex=ttl,
                nx=True,
            )
        except RedisError as exc:
            log.warning("session cache fill skipped: redis unavailable", extra={"error": describe(exc)})

    async def tombstone(self, hashed_token: str, ttl_seconds: int) -> None:
        """Refuse the token on every gateway from now on. Raises when Redis cannot be written."""
        try:
            await self.redis.set(session_key(self.prefix, hashed_token), TOMBSTONE, ex=max(ttl_seconds, 1))
        except RedisError as exc:
            raise CacheUnavailable(describe(exc)) from exc

    async def mark_key_revoked(self, key_id: str) -> None:
        """Refuse every cached session of ``key_id`` from now on. Raises when Redis cannot be written."""
        try:
            await self.redis.set(key_revocation_key(self.prefix, key_id), "1", ex=KEY_REVOCATION_TTL_SECONDS)
        except RedisError as exc:
            raise CacheUnavailable(describe(exc)) from exc

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except RedisError:
            return False
