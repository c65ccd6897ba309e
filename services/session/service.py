"""The session domain: tenants and API keys (admin), login, introspection, revocation.

Used by the session service's routes and by ``./scripts/admin``; all state is in DynamoDB
(:mod:`services.session.store`), with the Redis cache (:mod:`services.session.cache`) in front of
sessions. An API key has at most ``max_live_per_key`` live sessions (``SESSIONS_MAX_LIVE_PER_KEY``):
a login beyond it is 429 ``rate_limited`` with ``Retry-After`` (when the oldest one expires), and
logging out frees a place at once. Revocations write Redis first (so every gateway refuses at once) and DynamoDB second
(so a cache miss cannot bring the session back); a failure of either is reported, never hidden.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from services.session import keys
from services.session.cache import SessionCache
from services.session.store import NotFound, SessionRecord, SessionStore
from shared.errors import ErrorCode, ProblemError
from shared.session_cache import token_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NewKey:
    tenant_id: str
    key_id: str
    api_key: str


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str
    expires_at: str
    tenant_id: str


@dataclass(frozen=True, slots=True)
class ActiveSession:
    tenant_id: str
    key_id: str
    expires_at_epoch: int


class UnknownTenant(Exception):
    pass


class UnknownKey(Exception):
    pass


_INVALID_API_KEY = "the API key is not valid"
_UNAUTHORIZED = "missing, unknown, expired or revoked token"


class SessionService:
    def __init__(
        self,
        store: SessionStore,
        cache: SessionCache,
        session_ttl_seconds: int,
        tombstone_ttl_seconds: int,
        max_live_per_key: int | None = None,
    ) -> None:
        self.store = store
        self.cache = cache
        self.session_ttl_seconds = session_ttl_seconds
        self.tombstone_ttl_seconds = tombstone_ttl_seconds
        self.max_live_per_key = max_live_per_key
        """None: no cap (the admin CLI, which opens no sessions)."""

    # -- admin ---------------------------------------------------------------------------------

    async def create_tenant(self, name: str) -> NewKey:
        tenant_id = keys.new_tenant_id()
        await self.store.put_tenant(tenant_id, name, keys.rfc3339(keys.utc_now()))
        return await self.create_api_key(tenant_id)

    async def create_api_key(self, tenant_id: str) -> NewKey:
        canonical = keys.canonical_tenant_id(tenant_id)
        if canonical is None or not await self.store.tenant_exists(canonical):
            raise UnknownTenant(tenant_id)
        key_id = keys.new_key_id()
        api_key = keys.new_api_key(key_id)
        created_at = keys.rfc3339(keys.utc_now())
        await self.store.put_api_key(key_id, canonical, keys.hash_secret(api_key), created_at)
        return NewKey(tenant_id=canonical, key_id=key_id, api_key=api_key)

    async def revoke_api_key(self, key_id: str) -> None:
        if not keys.valid_key_id(key_id) or await self.store.get_api_key(key_id) is None:
            raise UnknownKey(key_id)
        await self.cache.mark_key_revoked(key_id)
        try:
            await self.store.revoke_api_key(key_id, keys.rfc3339(keys.utc_now()))
        except NotFound:
            raise UnknownKey(key_id) from None
        await self.cache.forget_key(key_id)

    # -- sessions ------------------------------------------------------------------------------

    async def login(self, api_key: str) -> NewSession:
        key_id = keys.key_id_of(api_key)
        record = await self.store.get_api_key(key_id) if key_id else None
        if record is None or not keys.hash_matches(api_key, record.key_hash) or record.revoked:
            raise ProblemError(ErrorCode.INVALID_API_KEY, _INVALID_API_KEY)
        token = keys.new_session_token()
        now = int(time.time())
        expires_at_epoch = now + self.session_ttl_seconds
        session = SessionRecord(
            token_hash=token_hash(token),
            tenant_id=record.tenant_id,
            key_id=record.key_id,
            expires_at_epoch=expires_at_epoch,
            revoked=False,
        )
        await self._admit(session)
        try:
            await self.store.put_session(session, keys.rfc3339(keys.utc_now()))
        except BaseException:
            await self.cache.forget_session(session.key_id, session.token_hash)
            raise
        await self.cache.fill(session.token_hash, session.tenant_id, session.key_id, expires_at_epoch)
        expires_at = keys.rfc3339(datetime.fromtimestamp(expires_at_epoch, UTC))
        log.info("session opened", extra={"tenant_id": record.tenant_id, "key_id": record.key_id})
        return NewSession(token=token, expires_at=expires_at, tenant_id=record.tenant_id)

    async def _admit(self, session: SessionRecord) -> None:
        """Take one of the key's live-session places, or refuse the login (429)."""
        cap = self.max_live_per_key
        if cap is None:
            return
        wait = await self.cache.admit_session(session.key_id, session.token_hash, session.expires_at_epoch, cap)
        if wait is not None:
            log.info(
                "login refused: live session cap", extra={"tenant_id": session.tenant_id, "key_id": session.key_id}
            )
            raise ProblemError(
                ErrorCode.RATE_LIMITED,
                f"this API key has {cap} live sessions, the most allowed: end one (DELETE /v1/sessions/current) "
                f"or retry after {wait} s",
                headers={"Retry-After": str(wait)},
            )

    async def introspect(self, token: str) -> ActiveSession:
        """The live session behind ``token`` read from DynamoDB (the cache missed); fills the cache."""
        hashed = token_hash(token)
        session = await self.store.get_session(hashed)
        if session is None or session.revoked or session.expires_at_epoch <= int(time.time()):
            raise ProblemError(ErrorCode.UNAUTHORIZED, _UNAUTHORIZED)
        key = await self.store.get_api_key(session.key_id)
        if key is None or key.revoked:
            raise ProblemError(ErrorCode.UNAUTHORIZED, _UNAUTHORIZED)
        await self.cache.fill(hashed, session.tenant_id, session.key_id, session.expires_at_epoch)
        return ActiveSession(session.tenant_id, session.key_id, session.expires_at_epoch)

    async def revoke(self, token: str) -> None:
        hashed = token_hash(token)
        await self.cache.tombstone(hashed, self.tombstone_ttl_seconds)
        key_id = await self.store.revoke_session(hashed)
        if key_id is not None:
            await self.cache.forget_session(key_id, hashed)
        log.info("session revoked")
