"""The session service's API as the gateway calls it: one definition of each body for both sides.

``LoginRequest`` and ``SessionCreated`` are also the public ``POST /v1/sessions`` bodies (the
gateway's OpenAPI document describes them from here); the rest are internal only.
"""

from __future__ import annotations

import re
from typing import Annotated

from msgspec import Meta, Struct

Secret = Annotated[str, Meta(min_length=1, max_length=512)]

_KEY_ID = re.compile(r"ak_[0-9a-f]{24}")


def key_id_of(api_key: str) -> str | None:
    """The key id of a presented API key (``<key_id>.<secret>``), or None when it cannot be one:
    the gateway limits logins per key id before the session service looks the key up."""
    key_id, dot, secret = api_key.partition(".")
    if not dot or not secret or not _KEY_ID.fullmatch(key_id):
        return None
    return key_id


def valid_key_id(key_id: str) -> bool:
    return _KEY_ID.fullmatch(key_id) is not None


class LoginRequest(Struct, forbid_unknown_fields=True):
    """``POST /v1/sessions`` (public) and ``POST /internal/sessions`` (internal)."""

    api_key: Annotated[str, Meta(min_length=1, max_length=512, description="An API key from ./scripts/admin.")]


class SessionCreated(Struct):
    """201 answer of ``POST /v1/sessions`` and ``POST /internal/sessions``."""

    token: Annotated[str, Meta(description="Bearer token for every other /v1 call.")]
    expires_at: Annotated[str, Meta(description="RFC 3339 UTC instant after which the token is refused.")]
    tenant_id: Annotated[str, Meta(description="The tenant the API key belongs to.")]


class TokenRequest(Struct, forbid_unknown_fields=True):
    """Introspection and revocation name the token in the body, never in a URL (URLs get logged)."""

    token: Secret


class Introspection(Struct):
    """A live session: whom it acts for, the key it was opened with, and when it ends."""

    tenant_id: str
    key_id: str
    expires_at_epoch: int
