"""Bearer token -> tenant: from process memory on the hot path, Redis at most once a period.

Three levels, each consulted only when the one before has no answer:

1. **This process** (:class:`LocalSessions`): a resolved token is kept for at most
   ``session_local_cache_seconds`` (default 0.5 s, never more than 1 s) and never past the
   session's expiry. This bounds how long a revocation takes to reach every gateway: docs/api.md
   section 3 requires within one second, and every other gateway re-reads Redis within that
   period. A logout through this process forgets the token here at once.
2. **Redis**: :data:`shared.session_cache.LOOKUP_SCRIPT` checks the record, its expiry on Redis'
   clock and the API key's revocation marker in one round trip.
3. **The session service** on a Redis miss: it reads DynamoDB and fills the Redis cache.

A refused token (unknown, expired, revoked) is remembered in this process for
``unknown_token_cache_seconds``, so a flood of bad tokens costs neither Redis nor DynamoDB. Tokens
are random and never reused, and a refusal is final (expiry and revocation do not end), so a
cached refusal can never hide a session that became valid. Refusals are kept apart from resolved
sessions and capped separately: spraying random tokens cannot evict real sessions.

Redis unreachable: a token resolved within the period still works; any other is 503 (fail closed;
see docs/adr).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.errors import ErrorCode, ProblemError, unavailable
from shared.http import ServiceClient, UpstreamUnavailable
from shared.redis_client import describe
from shared.session_api import Introspection, TokenRequest
from shared.session_cache import FOUND, LOOKUP_SCRIPT, REFUSED, key_revocation_key, session_key, token_hash

log = logging.getLogger(__name__)

_BEARER = re.compile(r"^[Bb][Ee][Aa][Rr][Ee][Rr] +(?P<token>st_[A-Za-z0-9_\-]{16,200})\s*$")
_UNAUTHORIZED = "missing, unknown, expired or revoked token"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: the tenant it acts for, its token (for revocation) and the id of
    the API key its session was opened with (recorded with every write it makes)."""

    tenant_id: str
    token: str
    key_id: str


class _Expiring:
    """A bounded map of token -> (deadline on the monotonic clock, value)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    def get(self, token: str, now: float) -> tuple[float, Principal | None] | None:
        entry = self._entries.get(token)
        if entry is None or entry[0] <= now:
            return None
        return entry

    def put(self, token: str, deadline: float, value: Principal | None, now: float) -> None:
        if len(self._entries) >= self._capacity and token not in self._entries:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= self._capacity:
                # Still full of live entries: drop the older half (insertion order).
                keep = list(self._entries.items())[self._capacity // 2 :]
                self._entries = dict(keep)
        self._entries[token] = (deadline, value)

    def pop(self, token: str) -> None:
        self._entries.pop(token, None)


class LocalSessions:
    """Resolved sessions and refused tokens of this process (level 1 of the module docstring)."""

    def __init__(self, ttl: float, refused_ttl: float, capacity: int = 100_000) -> None:
        self.ttl = min(ttl, 1.0)  # the revocation contract: within one second on every gateway
        self.refused_ttl = refused_ttl
        self._sessions = _Expiring(capacity)
        self._refused = _Expiring(capacity // 10)

    def lookup(self, token: str) -> Principal | None:
        """The cached principal; raises 401 for a cached refusal; None when unknown here."""
        now = time.monotonic()
        hit = self._sessions.get(token, now)
        if hit is not None:
            return hit[1]
        if self._refused.get(token, now) is not None:
            raise ProblemError(ErrorCode.UNAUTHORIZED, _UNAUTHORIZED)
        return None

    def keep(self, principal: Principal, expires_at_epoch: float | None) -> None:
        if self.ttl <= 0:
            return
        now = time.monotonic()
        life = self.ttl
        if expires_at_epoch is not None:
            life = min(life, expires_at_epoch - time.time())
        if life > 0:
            self._sessions.put(principal.token, now + life, principal, now)

    def refuse(self, token: str) -> None:
        if self.refused_ttl > 0:
            now = time.monotonic()
            self._refused.put(token, now + self.refused_ttl, None, now)
            self._sessions.pop(token)


class Authenticator:
    def __init__(self, redis: Redis, prefix: str, sessions: ServiceClient, local: LocalSessions) -> None:
        self._lookup = redis.register_script(LOOKUP_SCRIPT)
        self._prefix = prefix
        self._revocation_prefix = key_revocation_key(prefix, "")
        self._sessions = sessions
        self.local = local

    async def authenticate(self, authorization: str | None, unresolved: ProblemError | None = None) -> Principal:
        """The caller of a request with this ``Authorization`` header, or 401.

        ``unresolved``: raised instead of asking the session service about a token that neither
        this process nor Redis knows (its address is blocked: :mod:`.refusals`).
        """
        match = _BEARER.match(authorization or "")
        if match is None:
            raise ProblemError(ErrorCode.UNAUTHORIZED, _UNAUTHORIZED)
        token = match.group("token")
        cached = self.local.lookup(token)
        if cached is not None:
            return cached
        hashed = token_hash(token)
        try:
            result = await self._lookup(keys=[session_key(self._prefix, hashed)], args=[self._revocation_prefix])
        except RedisError as exc:
            log.warning("redis unavailable for authentication", extra={"error": describe(exc)})
            raise unavailable("the session cache is unavailable; retry later") from exc
        status = int(result[0])
        if status == FOUND:
            tenant, key_id = (v.decode() if isinstance(v, bytes) else str(v) for v in result[1:3])
            principal = Principal(tenant, token, key_id)
            self.local.keep(principal, float(result[3]))
            return principal
        if status == REFUSED:
            self.local.refuse(token)
            raise ProblemError(ErrorCode.UNAUTHORIZED, _UNAUTHORIZED)
        if unresolved is not None:
            raise unresolved
        try:
            active = await self._sessions.call(
                "POST", "/internal/sessions/introspect", TokenRequest(token), Introspection
            )
        except UpstreamUnavailable as exc:
            raise exc.to_problem() from exc
        except ProblemError as error:
            if error.code is ErrorCode.UNAUTHORIZED:
                self.local.refuse(token)
            raise
        principal = Principal(active.tenant_id, token, active.key_id)
        self.local.keep(principal, float(active.expires_at_epoch))
        return principal

    async def revoke(self, principal: Principal) -> None:
        try:
            await self._sessions.call("POST", "/internal/sessions/revoke", TokenRequest(principal.token), type(None))
        except UpstreamUnavailable as exc:
            raise exc.to_problem() from exc
        self.local.refuse(principal.token)  # refused here at once; elsewhere within the period
