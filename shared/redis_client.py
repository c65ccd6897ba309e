"""The one way a process opens its Redis client: fail fast, never retry silently.

Timeouts come from ``settings.redis_timeout_seconds`` so that a Redis outage turns into a 503
within that time instead of a hung request; no retry on timeout, because the callers (rate limit,
idempotency claim, session cache) decide themselves what an unanswered command means.
"""

from __future__ import annotations

from redis.asyncio import Redis

from shared.settings import Settings


def open_redis(settings: Settings, max_connections: int | None = None) -> Redis:
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        retry_on_timeout=False,
        max_connections=max_connections,
    )
