"""Bearer token -> tenant: one Redis round trip on the hot path, the session service on a miss.

The cache lookup (:data:`shared.session_cache.LOOKUP_SCRIPT`) checks the record, its expiry on
Redis' clock and the API key's revocation marker at once, so a revoked session or key is refused
from the next request on, on every gateway instance. A miss asks the session service, which reads
DynamoDB and fills the cache. Redis unreachable: 503 (fail closed; see docs/adr).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.errors import ErrorCode, ProblemError, unavailable
from shared.http import ServiceClient, UpstreamUnavailable
from shared.session_api import Introspection, TokenRequest
from shared.session_cache import FOUND, LOOKUP_SCRIPT, REFUSED, key_revocation_key, session_key, token_hash

log = logging.getLogger(__name__)

_BEARER = re.compile(r"^[Bb][Ee][Aa][Rr][Ee][Rr] +(?P<token>st_[A-Za-z0-9_\-]{16,200})\s*$")
_UNAUTHORIZED = "missing, unknown, expired or revoked token"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: the tenant it acts for, and its token (for revocation)."""

    tenant_id: str
    token: str


class Authenticator:
    def __init__(self, redis: Redis, prefix: str, sessions: ServiceClient) -> None:
        self._lookup = redis.register_script(LOOKUP_SCRIPT)
        self._prefix = prefix
        self._revocation_prefix = key_revocation_key(prefix, "")
        self._sessions = sessions

    async def authenticate(self, authorization: str | None) -> Principal:
        match = _BEARER.match(authorization or "")
        if match is None:
            raise ProblemError(ErrorCode.UNAUTHORIZED, _UNAUTHORIZED)
        token = match.group("token")
        hashed = token_hash(token)
        try:
            result = await self._lookup(keys=[session_key(self._prefix, hashed)], args=[self._revocation_prefix])
        except RedisError as exc:
            log.warning("redis unavailable for authentication", extra={"error": repr(exc)})
            raise unavailable("the session cache is unavailable; retry later") from exc
        status = int(result[0])
        if status == FOUND:
            tenant = result[1]
            return Principal(tenant.decode() if isinstance(tenant, bytes) else str(tenant), token)
        if status == REFUSED:
            raise ProblemError(ErrorCode.UNAUTHORIZED, _UNAUTHORIZED)
        try:
            active = await self._sessions.call(
                "POST", "/internal/sessions/introspect", TokenRequest(token), Introspection
            )
        except UpstreamUnavailable as exc:
            raise exc.to_problem() from exc
        return Principal(active.tenant_id, token)

    async def revoke(self, principal: Principal) -> None:
        try:
            await self._sessions.call("POST", "/internal/sessions/revoke", TokenRequest(principal.token), type(None))
        except UpstreamUnavailable as exc:
            raise exc.to_problem() from exc
