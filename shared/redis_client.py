"""The one way a process opens its Redis client: fail fast, never retry silently.

Timeouts come from ``settings.redis.timeout_seconds`` so that a Redis outage turns into a 503
within that time instead of a hung request; no retry on timeout, because the callers (rate limit,
idempotency claim, session cache) decide themselves what an unanswered command means.

Authentication: in AWS each service is its own ElastiCache RBAC user (``REDIS_USERNAME``, ADR 0110)
whose password comes from its secret (``REDIS_AUTH_SECRET_ARN``), read again for every new
connection, so a rotation needs no restart (ADR 0107). Every connection then sends
``AUTH <user> <password>``; without a user name it sends ``AUTH <password>`` (the ``default`` user).
Locally the URL's own credentials are used, with ``REDIS_USERNAME`` when the URL names no user.

Connections that outlive the server: redis-py 8 turns "maintenance notifications" on by default
(``auto``, for Redis Enterprise/Cloud), and while they are on the pool no longer checks a pooled
connection before handing it out. After a Redis restart or an ElastiCache failover every connection
that sat idle in the pool then failed once, "Connection closed by server", as a 503 (seen in CI and
reproduced by tests/shared/test_redis_client.py). They are off here: ElastiCache sends no such
notifications, and the pool again reconnects a connection whose server has gone before using it.

A primary demoted but kept up (a failover that turns the old primary into a replica) keeps its
connections open, and every write on them answers ``READONLY``. A connection that gets that answer
is closed (redis-py's own failure handling, given ``ReadOnlyError`` as an error it handles, with no
retry), so its next use connects to the endpoint again, which by then names the new primary: one
503 per such connection, not one per request until a restart.

Invariant: a password never appears in a log line or a ``repr`` (the provider holds the secret
source, not the value).
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider
from redis.exceptions import ReadOnlyError
from redis.maint_notifications import MaintNotificationsConfig

from shared.credentials import RedisSecretCredentials, SecretTokens
from shared.settings import Settings


class RedisUserCredentials(CredentialProvider):
    """redis-py credential provider: every new connection authenticates as ``username`` with the
    secret's current token (``AUTH <username> <token>``)."""

    def __init__(self, username: str, tokens: SecretTokens) -> None:
        self._username = username
        self._tokens = tokens

    def __repr__(self) -> str:
        return f"RedisUserCredentials(username={self._username!r})"

    def get_credentials(self) -> tuple[str, str]:
        raise NotImplementedError("the asyncio client calls get_credentials_async")

    async def get_credentials_async(self) -> tuple[str, str]:
        return self._username, (await self._tokens.tokens()).current


def open_redis(settings: Settings, max_connections: int | None = None) -> Redis:
    credentials: CredentialProvider | None = None
    username: str | None = None
    if settings.redis.auth_secret_arn:
        # The password rotates every 30 days, and ECS would inject it only once. Each new
        # connection takes the secret's current token instead, re-read while the process runs, so a
        # rotation needs no restart (ADR 0107).
        tokens = SecretTokens.from_aws(settings.redis.auth_secret_arn, "token", region=settings.process.aws_region)
        if settings.redis.username:
            credentials = RedisUserCredentials(settings.redis.username, tokens)
        else:
            credentials = RedisSecretCredentials(tokens)
    else:
        # The URL's password, as this user (a user named in the URL itself takes precedence).
        username = settings.redis.username or None
    return Redis.from_url(
        settings.redis.url,
        socket_timeout=settings.redis.timeout_seconds,
        socket_connect_timeout=settings.redis.timeout_seconds,
        retry_on_timeout=False,
        # No retry, but a READONLY answer, like a lost connection, closes the connection it came on.
        retry=Retry(NoBackoff(), 0),
        retry_on_error=[ReadOnlyError],
        max_connections=max_connections,
        credential_provider=credentials,
        username=username,
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )


def describe(exc: BaseException) -> str:
    """``exc`` for a log line: its class and message. redis-py 8's ``repr`` of an error is only its
    category and class (``network:ConnectionError``), which cannot tell a refused connection from a
    timeout or a connection the server closed."""
    return f"{type(exc).__name__}: {exc}"
