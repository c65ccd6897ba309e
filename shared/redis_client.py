"""The one way a process opens its Redis client: fail fast, never retry silently.

Timeouts come from ``settings.redis_timeout_seconds`` so that a Redis outage turns into a 503
within that time instead of a hung request; no retry on timeout, because the callers (rate limit,
idempotency claim, session cache) decide themselves what an unanswered command means. In AWS the
AUTH token comes from its secret, for every new connection (``REDIS_AUTH_SECRET_ARN``).
"""

from __future__ import annotations

from redis.asyncio import Redis

from shared.credentials import RedisSecretCredentials, SecretTokens
from shared.settings import Settings


def open_redis(settings: Settings, max_connections: int | None = None) -> Redis:
    credentials = None
    if settings.redis_auth_secret_arn:
        # The AUTH token rotates every 30 days, and ECS would inject it only once. Each new
        # connection takes the secret's current token instead, re-read while the process runs, so a
        # rotation needs no restart (ADR 0107).
        tokens = SecretTokens.from_aws(settings.redis_auth_secret_arn, "token", region=settings.aws_region)
        credentials = RedisSecretCredentials(tokens)
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        retry_on_timeout=False,
        max_connections=max_connections,
        credential_provider=credentials,
    )
