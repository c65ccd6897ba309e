"""Internal HTTP API of the session service; every route requires the internal credential.

- ``POST /internal/sessions``            {api_key} -> 201 {token, expires_at, tenant_id} | 401 invalid_api_key
- ``POST /internal/sessions/introspect`` {token}   -> 200 {tenant_id, key_id, expires_at_epoch}
  | 401 unauthorized
- ``POST /internal/sessions/revoke``     {token}   -> 204
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from services.session.service import SessionService
from shared.http import INTERNAL_TOKEN_HEADER, require_internal_token
from shared.session_api import Introspection, LoginRequest, SessionCreated, TokenRequest
from shared.web import decode_json, json_response, read_body


def internal_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    require_internal_token(
        connection.headers.get(INTERNAL_TOKEN_HEADER), connection.app.state.settings.process.internal_token
    )


def _service(request: Request[Any, Any, Any]) -> SessionService:
    service: SessionService = request.app.state.service
    return service


@post("/sessions", status_code=201)
async def login(request: Request[Any, Any, Any]) -> Response[bytes]:
    body = decode_json(await read_body(request), request.headers.get("content-type"), LoginRequest)
    assert body is not None
    session = await _service(request).login(body.api_key)
    return json_response(
        SessionCreated(token=session.token, expires_at=session.expires_at, tenant_id=session.tenant_id), 201
    )


@post("/sessions/introspect", status_code=200)
async def introspect(request: Request[Any, Any, Any]) -> Response[bytes]:
    body = decode_json(await read_body(request), request.headers.get("content-type"), TokenRequest)
    assert body is not None
    active = await _service(request).introspect(body.token)
    return json_response(Introspection(active.tenant_id, active.key_id, active.expires_at_epoch))


@post("/sessions/revoke", status_code=204)
async def revoke(request: Request[Any, Any, Any]) -> None:
    body = decode_json(await read_body(request), request.headers.get("content-type"), TokenRequest)
    assert body is not None
    await _service(request).revoke(body.token)


def internal_router() -> Router:
    return Router(path="/internal", route_handlers=[login, introspect, revoke], guards=[internal_only])
