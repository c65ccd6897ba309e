"""The Redis session cache: the one contract the session service (writer) and the gateway (reader) share.

Keys (all under ``settings.redis.key_prefix``):

- ``sess:<sha256(token)>`` holds ``<tenant_id>|<key_id>|<expires_at_epoch>`` for a live session,
  or the tombstone ``revoked``. It lives at most ``session_cache_ttl_seconds`` and never past the
  session's expiry. Filled with ``SET NX`` (so a fill racing a revocation never overwrites the
  tombstone); the tombstone is written with a plain ``SET`` before DynamoDB is updated.
- ``keyrev:<key_id>`` exists once an API key is revoked: every cached session opened with that key
  is refused from the next request on, on every gateway instance (revocation within one second).

The gateway resolves a token with :data:`LOOKUP_SCRIPT` in one round trip: the record, its
expiry against Redis' own clock, and the key's revocation marker. A miss sends the gateway to the
session service, which reads DynamoDB and fills the cache.
"""

from __future__ import annotations

import hashlib

TOMBSTONE = "revoked"

KEY_REVOCATION_TTL_SECONDS = 86_400
"""Life of a ``keyrev:`` marker. It must outlive every cache entry (at most
``session_cache_ttl_seconds``); after that the session service refuses the key from DynamoDB."""


def token_hash(token: str) -> str:
    """SHA-256 of a session token or API key, hex. Only this is ever stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def session_key(prefix: str, hashed_token: str) -> str:
    return f"{prefix}sess:{hashed_token}"


def key_revocation_key(prefix: str, key_id: str) -> str:
    return f"{prefix}keyrev:{key_id}"


def encode_record(tenant_id: str, key_id: str, expires_at_epoch: int) -> str:
    return f"{tenant_id}|{key_id}|{expires_at_epoch}"


# KEYS[1] = sess:<hash>; ARGV[1] = the keyrev: prefix (the key id is only known from the record).
# Returns {0} on a miss, {2} when revoked or expired, {1, tenant_id, key_id, expires_at_epoch}.
LOOKUP_SCRIPT = f"""
local v = redis.call('GET', KEYS[1])
if not v then return {{0}} end
if v == '{TOMBSTONE}' then return {{2}} end
local tenant, key, exp = string.match(v, '^([^|]+)|([^|]+)|(%d+)$')
if not tenant then return {{0}} end
local now = tonumber(redis.call('TIME')[1])
if tonumber(exp) <= now then return {{2}} end
if redis.call('EXISTS', ARGV[1] .. key) == 1 then return {{2}} end
return {{1, tenant, key, exp}}
"""

MISS = 0
FOUND = 1
REFUSED = 2
