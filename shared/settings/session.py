"""Settings of the session service: session lifetimes, the Redis cache, live sessions per key."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings.loading import PORT, at_least, positive, setting


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """The session service's settings (docs/services.md, Session service; docs/hardening.md)."""

    port: int = setting("SESSION_PORT", 8002, check=PORT)
    """``SESSION_PORT``: TCP port of the session service's internal API."""

    ttl_seconds: int = setting("SESSION_TTL_SECONDS", 900, check=positive)
    """``SESSION_TTL_SECONDS``, seconds: lifetime of a session token from login."""

    cache_ttl_seconds: int = setting("SESSION_CACHE_TTL_SECONDS", 300, check=positive)
    """``SESSION_CACHE_TTL_SECONDS``, seconds: longest a session stays in the Redis cache before the
    session service re-reads DynamoDB (revocations do not wait for it: they overwrite the cache
    entry at once)."""

    max_live_per_key: int = setting("SESSIONS_MAX_LIVE_PER_KEY", 1000, check=at_least(1))
    """``SESSIONS_MAX_LIVE_PER_KEY``, sessions: the most one API key may have live (not expired, not
    revoked) at once; a login beyond it is 429 ``rate_limited`` until one ends."""
