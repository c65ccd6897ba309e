"""The public routes. Handlers only hand the request to the pipeline (or the session service).

Exactly the public paths of public-api.md are routed; anything else is 404 ``not_found`` (so no
internal endpoint of any service is reachable through the gateway), a known path with another
method 404 ``not_found`` too (the contract has no 405).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post, route
from litestar.handlers import HTTPRouteHandler

from services.gateway.proxy import Pipeline
from shared.http import ServiceClient, UpstreamUnavailable
from shared.session_api import LoginRequest, SessionCreated
from shared.web import decode_json, json_response, read_body

PROXIED: list[tuple[str, list[Any]]] = [
    ("/v1/accounts", ["GET", "POST"]),
    ("/v1/accounts/{account_id:str}", ["GET"]),
    ("/v1/accounts/{account_id:str}/transfers", ["GET"]),
    ("/v1/accounts/{account_id:str}/balances", ["GET"]),
    ("/v1/transfers", ["POST"]),
    ("/v1/transfers/batch", ["POST"]),
    ("/v1/transfers/{transfer_id:str}", ["GET"]),
    ("/v1/transfers/{transfer_id:str}/post", ["POST"]),
    ("/v1/transfers/{transfer_id:str}/void", ["POST"]),
]


def _pipeline(request: Request[Any, Any, Any]) -> Pipeline:
    pipeline: Pipeline = request.app.state.pipeline
    return pipeline


def _proxy_route(path: str, methods: list[Any], index: int) -> HTTPRouteHandler:
    async def proxied(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await _pipeline(request).forward(request)

    proxied.__name__ = f"proxied_{index}"
    return route(path, http_method=methods, name=f"proxy-{index}", include_in_schema=False)(proxied)


@post("/v1/sessions", include_in_schema=False)
async def login(request: Request[Any, Any, Any]) -> Response[bytes]:
    body = decode_json(await read_body(request), request.headers.get("content-type"), LoginRequest)
    assert body is not None
    sessions: ServiceClient = request.app.state.sessions
    try:
        created = await sessions.call("POST", "/internal/sessions", body, SessionCreated)
    except UpstreamUnavailable as exc:
        raise exc.to_problem() from exc
    return json_response(created, 201)


@route("/v1/sessions/current", http_method=["DELETE"], status_code=200, include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await _pipeline(request).revoke_current(request)


@get("/schema/openapi.json", include_in_schema=False)
async def openapi_document(request: Request[Any, Any, Any]) -> Response[bytes]:
    document: bytes = request.app.state.openapi
    return Response(content=document, media_type="application/json")


def public_routes() -> list[HTTPRouteHandler]:
    proxied = [_proxy_route(path, methods, i) for i, (path, methods) in enumerate(PROXIED)]
    return [login, logout, openapi_document, *proxied]
