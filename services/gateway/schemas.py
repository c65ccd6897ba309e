"""Bodies the gateway itself decodes or answers (the ledger's are forwarded untouched)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct


class LoginRequest(Struct, forbid_unknown_fields=True):
    """``POST /v1/sessions``."""

    api_key: Annotated[str, Meta(min_length=1, max_length=512, description="An API key from ./scripts/admin.")]


class SessionCreated(Struct):
    """201 answer of ``POST /v1/sessions``."""

    token: Annotated[str, Meta(description="Bearer token for every other /v1 call.")]
    expires_at: Annotated[str, Meta(description="RFC 3339 UTC instant after which the token is refused.")]
    tenant_id: Annotated[str, Meta(description="The tenant the API key belongs to.")]
