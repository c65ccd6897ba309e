"""Identifiers and secrets: tenant ids, API keys, session tokens, and the hashes that are stored.

An API key reads ``<key_id>.<secret>``: the key id says which record to load, the secret (256
random bits) is what proves possession. Only ``sha256(api_key)`` is stored, so a leaked table
yields no usable key; with that much entropy a plain SHA-256 is enough (no password stretching is
needed, and login stays one hash). Session tokens are 256 random bits too, stored as their hash.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from datetime import UTC, datetime

from shared.session_api import key_id_of as key_id_of  # re-exported: one parser of API keys
from shared.session_api import valid_key_id as valid_key_id
from shared.session_cache import token_hash
from shared.timefmt import rfc3339 as rfc3339  # re-exported: the one formatter

KEY_ID_PREFIX = "ak_"
TOKEN_PREFIX = "st_"


def new_tenant_id() -> str:
    return str(uuid.uuid4())


def new_key_id() -> str:
    return KEY_ID_PREFIX + secrets.token_hex(12)


def new_api_key(key_id: str) -> str:
    return f"{key_id}.{secrets.token_urlsafe(32)}"


def new_session_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return token_hash(secret)


def hash_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret).encode(), stored_hash.encode())


def canonical_tenant_id(value: str) -> str | None:
    """The lowercase canonical form of a tenant id, or None when it is not a UUID."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def utc_now() -> datetime:
    return datetime.now(UTC)
