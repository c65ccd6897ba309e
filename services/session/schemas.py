"""Bodies of the session service's internal API (msgspec Structs)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

Secret = Annotated[str, Meta(min_length=1, max_length=512)]


class LoginRequest(Struct, forbid_unknown_fields=True):
    """``POST /v1/sessions`` (public) and ``POST /internal/sessions`` (internal)."""

    api_key: Secret


class LoginResponse(Struct):
    token: str
    expires_at: str
    tenant_id: str


class TokenRequest(Struct, forbid_unknown_fields=True):
    """Introspection and revocation name the token in the body, never in a URL (URLs get logged)."""

    token: Secret


class Introspection(Struct):
    tenant_id: str
    key_id: str
    expires_at_epoch: int
