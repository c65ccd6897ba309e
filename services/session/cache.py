"""The session service's side of the Redis session cache (see :mod:`shared.session_cache`).

Reads are the gateway's; this module only writes: fills after a DynamoDB read (``SET NX``, so a
fill never overwrites a revocation tombstone), tombstones on session revocation, and key
revocation markers. Fills are best effort (DynamoDB is the truth); tombstones and markers are not:
when Redis is unreachable a revocation fails with 503 rather than be silently incomplete.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.session_cache import (
    KEY_REVOCATION_TTL_SECONDS,
    TOMBSTONE,
    encode_record,
    key_revocation_key,
    session_key,
)

log = logging.getLogger(__name__)


class CacheUnavailable(Exception):
    """Redis did not answer a write that must not be skipped."""


class SessionCache:
    def __init__(self, redis: Redis, prefix: str, max_ttl_seconds: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.max_ttl_seconds = max_ttl_seconds

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
            log.warning("session cache fill skipped: redis unavailable", extra={"error": repr(exc)})

    async def tombstone(self, hashed_token: str, ttl_seconds: int) -> None:
        """Refuse the token on every gateway from now on. Raises when Redis cannot be written."""
        try:
            await self.redis.set(session_key(self.prefix, hashed_token), TOMBSTONE, ex=max(ttl_seconds, 1))
        except RedisError as exc:
            raise CacheUnavailable(repr(exc)) from exc

    async def mark_key_revoked(self, key_id: str) -> None:
        """Refuse every cached session of ``key_id`` from now on. Raises when Redis cannot be written."""
        try:
            await self.redis.set(key_revocation_key(self.prefix, key_id), "1", ex=KEY_REVOCATION_TTL_SECONDS)
        except RedisError as exc:
            raise CacheUnavailable(repr(exc)) from exc

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except RedisError:
            return False
