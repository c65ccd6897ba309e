"""The session domain: tenants and API keys (admin), login, introspection, revocation.

Used by the session service's routes and by ``./scripts/admin``; all state is in DynamoDB
(:mod:`services.session.store`), with the Redis cache (:mod:`services.session.cache`) in front of
sessions. Revocations write Redis first (so every gateway refuses at once) and DynamoDB second
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
        self, store: SessionStore, cache: SessionCache, session_ttl_seconds: int, tombstone_ttl_seconds: int
    ) -> None:
        self.store = store
        self.cache = cache
        self.session_ttl_seconds = session_ttl_seconds
        self.tombstone_ttl_seconds = tombstone_ttl_seconds

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
        await self.store.put_session(session, keys.rfc3339(keys.utc_now()))
        await self.cache.fill(session.token_hash, session.tenant_id, session.key_id, expires_at_epoch)
        expires_at = keys.rfc3339(datetime.fromtimestamp(expires_at_epoch, UTC))
        log.info("session opened", extra={"tenant_id": record.tenant_id, "key_id": record.key_id})
        return NewSession(token=token, expires_at=expires_at, tenant_id=record.tenant_id)

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
        await self.store.revoke_session(hashed)
        log.info("session revoked")
