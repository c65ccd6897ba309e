"""Credentials that can change while a process runs (issue 13, item 1; ADR 0107).

ECS resolves a task's secrets once, when the task starts. Every credential that rotates therefore
needs a source the process reads again while it runs:

- **Database.** With RDS IAM database authentication (``DATABASE_IAM_AUTH=true``), each new
  connection gets a freshly signed 15-minute token from :func:`database_password`, which asyncpg
  calls per connection. There is no password to rotate, and a pool never holds a stale one.
- **Tokens in Secrets Manager** (the internal service token, the Redis AUTH token).
  :class:`SecretTokens` reads one JSON key of the secret's ``AWSCURRENT`` and ``AWSPREVIOUS``
  versions and caches them for ``max_age_seconds``. A receiver accepts either
  (:meth:`TokenSet.accepts`), so tasks that have not re-read yet are not refused. A sender uses the
  current one. Rotations (30 and 90 days apart) are far longer than the cache age, so every task
  has moved on before a token stops being accepted.
- **Redis.** :class:`RedisSecretCredentials` is a redis-py credential provider. Each new
  connection authenticates with the current token. The rotation Lambda keeps the previous token
  valid on ElastiCache (``ROTATE``) until the next rotation.

Invariants: no credential appears in a log line, an exception message or a ``repr``; tokens are
compared in constant time; a failed re-read keeps the last good value (an outage of Secrets Manager
does not take a running service down) and is not retried more often than ``retry_seconds``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from redis.credentials import CredentialProvider

log = logging.getLogger(__name__)

IAM_AUTH_ENV = "DATABASE_IAM_AUTH"
"""``true``: the ledger signs an RDS IAM authentication token for every new connection."""
IAM_TOKEN_PORT_DEFAULT = 5432


@dataclass(frozen=True)
class TokenSet:
    """The tokens a receiver accepts: the current one and, during a rotation, the previous one."""

    current: str
    previous: str | None = None
    current_since: datetime | None = None
    """When the current version was created (Secrets Manager's ``CreatedDate``), if known."""

    def __repr__(self) -> str:  # never print a credential
        return f"TokenSet(current=<{len(self.current)} chars>, previous={'<set>' if self.previous else None})"

    def accepts(self, presented: str | None) -> bool:
        """True when ``presented`` equals the current or the previous token (constant time)."""
        if not presented:
            return False
        given = presented.encode()
        matches = [hmac.compare_digest(given, self.current.encode())]
        if self.previous:
            matches.append(hmac.compare_digest(given, self.previous.encode()))
        return any(matches)

    @classmethod
    def from_env(cls, name: str) -> TokenSet:
        """``<name>`` and optionally ``<name>_PREVIOUS`` from the environment (local runs)."""
        return cls(os.environ.get(name, ""), os.environ.get(f"{name}_PREVIOUS") or None)


SecretsClientFactory = Callable[[], Any]
"""Returns an async context manager yielding an aioboto3 ``secretsmanager`` client."""


@dataclass
class SecretTokens:
    """One JSON key of a Secrets Manager secret, current and previous version, cached and re-read."""

    secret_id: str
    key: str
    client_factory: SecretsClientFactory
    max_age_seconds: float = 300.0
    retry_seconds: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _tokens: TokenSet | None = field(default=None, init=False, repr=False)
    _read_at: float = field(default=float("-inf"), init=False, repr=False)
    _tried_at: float = field(default=float("-inf"), init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    @classmethod
    def from_aws(
        cls, secret_id: str, key: str, region: str | None = None, endpoint_url: str | None = None, **kwargs: Any
    ) -> SecretTokens:
        """A source reading the secret through aioboto3 (the task role's credentials)."""
        import aioboto3  # the session service's dependency already; imported only where used

        session = aioboto3.Session()

        def factory() -> Any:
            return session.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)

        return cls(secret_id, key, factory, **kwargs)

    async def tokens(self) -> TokenSet:
        """The cached tokens, re-read when older than ``max_age_seconds`` (or invalidated)."""
        if self._tokens is not None and self.clock() - self._read_at < self.max_age_seconds:
            return self._tokens
        async with self._lock:
            now = self.clock()
            stale = self._tokens is None or now - self._read_at >= self.max_age_seconds
            if stale and now - self._tried_at >= self.retry_seconds:
                self._tried_at = now
                try:
                    self._tokens = await self._read()
                    self._read_at = now
                except Exception as exc:  # keep serving with the last good value
                    if self._tokens is None:
                        raise CredentialUnavailable(f"cannot read {self.key} of {self.secret_id}") from None
                    log.warning(
                        "secret re-read failed; keeping the last value",
                        extra={"secret": self.secret_id, "error": type(exc).__name__},
                    )
            if self._tokens is None:
                raise CredentialUnavailable(f"cannot read {self.key} of {self.secret_id}")
            return self._tokens

    def cached(self) -> TokenSet | None:
        """The last value read, however old (None before the first read); never waits."""
        return self._tokens

    def stale(self) -> bool:
        """True when :meth:`tokens` would re-read now."""
        now = self.clock()
        return (self._tokens is None or now - self._read_at >= self.max_age_seconds) and (
            now - self._tried_at >= self.retry_seconds
        )

    def invalidate(self) -> None:
        """Re-read on the next :meth:`tokens` (after a peer refused the current token, say); still
        at most once per ``retry_seconds``."""
        self._read_at = float("-inf")

    async def _read(self) -> TokenSet:
        async with self.client_factory() as client:
            current, since = await self._version(client, "AWSCURRENT")
            if current is None:
                raise CredentialUnavailable(f"{self.secret_id} has no AWSCURRENT {self.key}")
            previous, _ = await self._version(client, "AWSPREVIOUS")
        return TokenSet(current, previous if previous != current else None, since)

    async def _version(self, client: Any, stage: str) -> tuple[str | None, datetime | None]:
        try:
            answer = await client.get_secret_value(SecretId=self.secret_id, VersionStage=stage)
        except client.exceptions.ResourceNotFoundException:
            return None, None  # no such stage yet (a secret that never rotated has no AWSPREVIOUS)
        value = json.loads(answer["SecretString"]).get(self.key)
        return (value if isinstance(value, str) and value else None), answer.get("CreatedDate")


class CredentialUnavailable(RuntimeError):
    """No value of a credential could be read (and none was cached)."""


class RedisSecretCredentials(CredentialProvider):
    """redis-py credential provider: every new connection AUTHs with the secret's current token."""

    def __init__(self, tokens: SecretTokens) -> None:
        self._tokens = tokens

    def get_credentials(self) -> tuple[str]:
        raise NotImplementedError("the asyncio client calls get_credentials_async")

    async def get_credentials_async(self) -> tuple[str]:
        return ((await self._tokens.tokens()).current,)


def database_password(dsn: str, *, env: dict[str, str] | None = None) -> Callable[[], Awaitable[str]] | None:
    """asyncpg's ``password`` for ``dsn``: with ``DATABASE_IAM_AUTH=true`` a callable that signs a
    fresh RDS IAM authentication token for each new connection; otherwise None (asyncpg then takes
    the DSN's password or ``PGPASSWORD``, as before)."""
    values = os.environ if env is None else env
    if values.get(IAM_AUTH_ENV, "").lower() != "true":
        return None
    parts = urlsplit(dsn)
    if not parts.hostname or not parts.username:
        raise ValueError(f"{IAM_AUTH_ENV}=true needs a DSN with a user and a host")
    region = values.get("AWS_REGION") or values.get("AWS_DEFAULT_REGION")
    if not region:
        raise ValueError(f"{IAM_AUTH_ENV}=true needs AWS_REGION")
    host, port, user = parts.hostname, parts.port or IAM_TOKEN_PORT_DEFAULT, parts.username
    signer = _RdsTokenSigner(region)

    async def password() -> str:
        # Signing is local, but the first call may fetch the task role's credentials over HTTP.
        return await asyncio.to_thread(signer.token, host, port, user)

    return password


class _RdsTokenSigner:
    def __init__(self, region: str) -> None:
        self._region = region
        self._client: Any = None

    def token(self, host: str, port: int, user: str) -> str:
        if self._client is None:
            import botocore.session  # botocore comes with aioboto3

            self._client = botocore.session.get_session().create_client("rds", region_name=self._region)
        token: str = self._client.generate_db_auth_token(
            DBHostname=host, Port=port, DBUsername=user, Region=self._region
        )
        return token
