"""The authenticated request pipeline: auth -> body checks -> admission -> ledger -> keep response.

Reads top to bottom in the order a request meets it:

1. bearer token -> tenant (:mod:`.auth`); 401 without a valid session;
2. body size (413), media type (415) and the Idempotency-Key header (400);
3. rate limit and Idempotency-Key claim in one Redis round trip (:mod:`.admission`): 429, 409,
   422 or a replay of the kept response;
4. the ledger call (:mod:`.upstream`), 503 when the ledger cannot be reached;
5. the response kept for the key (or the claim released, for statuses that must not be kept).

Every response of an authenticated call carries the RateLimit headers.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response

from services.gateway.admission import Admission, Admitted
from services.gateway.auth import Authenticator, Principal
from services.gateway.idempotency import KeptResponse, fingerprint, keep, validate_key
from services.gateway.upstream import Ledger
from shared.errors import ProblemError
from shared.web import JSON_MEDIA_TYPE, check_json_media_type, read_body

_EMPTY_BODY_PATHS = ("/post", "/void")


class Pipeline:
    def __init__(self, auth: Authenticator, admission: Admission, ledger: Ledger) -> None:
        self.auth = auth
        self.admission = admission
        self.ledger = ledger

    async def authenticate(self, request: Request[Any, Any, Any]) -> Principal:
        return await self.auth.authenticate(request.headers.get("authorization"))

    async def admit_only(self, tenant_id: str) -> dict[str, str]:
        """Count a request that needs no idempotency; the RateLimit headers for its response."""
        admitted = await self.admission.admit(tenant_id)
        return admitted.rate.headers()

    async def forward(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        principal = await self.authenticate(request)
        method = request.method.upper()
        path = request.url.path
        query = request.scope.get("query_string", b"").decode("latin-1")
        content_type = request.headers.get("content-type")
        try:
            body = await read_body(request) if method == "POST" else b""
            if body.strip() or (method == "POST" and not path.endswith(_EMPTY_BODY_PATHS)):
                check_json_media_type(content_type)
            key = validate_key(request.headers.get("idempotency-key")) if method == "POST" else None
        except ProblemError as error:
            error.headers.update(await self.admit_only(principal.tenant_id))
            raise
        fp = fingerprint(method, path, body) if key is not None else ""
        admitted = await self.admission.admit(principal.tenant_id, key, fp)
        if admitted.replay is not None:
            return _respond(admitted.replay, admitted, replayed=True)
        try:
            # The media type goes along even with an empty body, so that the ledger answers an empty
            # application/json body 400 (malformed JSON) rather than 415.
            upstream = await self.ledger.forward(
                method, _raw_path(request), query, body, content_type, principal.tenant_id
            )
        except ProblemError as error:
            if admitted.claim is not None:
                await self.admission.complete(admitted.claim, None)
            error.headers.update(admitted.rate.headers())
            raise
        kept = KeptResponse(upstream.status, upstream.content_type, upstream.body)
        if admitted.claim is not None:
            await self.admission.complete(admitted.claim, kept if keep(upstream.status) else None)
        response = _respond(kept, admitted, replayed=False)
        if upstream.retry_after is not None and upstream.status >= 500:
            response.headers["Retry-After"] = upstream.retry_after
        return response

    async def revoke_current(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        principal = await self.authenticate(request)
        headers = await self.admit_only(principal.tenant_id)
        try:
            await self.auth.revoke(principal)
        except ProblemError as error:
            error.headers.update(headers)
            raise
        return Response(content=b"", status_code=204, headers=headers)


def _raw_path(request: Request[Any, Any, Any]) -> str:
    """The path as the client encoded it. The decoded path would turn an id's escaped ``?`` or
    ``#`` (``%3F``, ``%23``) into a query string or a fragment upstream: another request."""
    raw = request.scope.get("raw_path")
    return raw.decode("latin-1") if isinstance(raw, bytes) and raw else str(request.url.path)


def _respond(kept: KeptResponse, admitted: Admitted, *, replayed: bool) -> Response[bytes]:
    headers = admitted.rate.headers()
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        content=kept.body,
        status_code=kept.status,
        media_type=kept.content_type or JSON_MEDIA_TYPE,
        headers=headers,
    )
