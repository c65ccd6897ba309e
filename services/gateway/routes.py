"""The public routes. Handlers only hand the request to the pipeline (or the session service).

Exactly the public paths of docs/api.md are routed; anything else is 404 ``not_found`` (so no
internal endpoint of any service is reachable through the gateway), a known path with another
method 404 ``not_found`` too (the contract has no 405).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, asgi, get, post, route
from litestar.handlers import BaseRouteHandler
from litestar.types import Receive, Scope, Send

from services.gateway.login import open_session
from services.gateway.openapi_feed_schemas import EVENTS_MAX_WAIT_SECONDS
from services.gateway.proxy import Pipeline
from shared.asgi import respond_problem
from shared.errors import ErrorCode, ProblemError

PROXIED: list[tuple[str, list[Any]]] = [
    ("/v1/accounts", ["GET", "POST"]),
    ("/v1/accounts/{account_id:str}", ["GET", "PATCH"]),
    ("/v1/accounts/{account_id:str}/transfers", ["GET"]),
    ("/v1/accounts/{account_id:str}/balances", ["GET"]),
    ("/v1/transfers", ["GET", "POST"]),
    ("/v1/transfers/batch", ["POST"]),
    ("/v1/transfers/{transfer_id:str}", ["GET"]),
    ("/v1/transfers/{transfer_id:str}/post", ["POST"]),
    ("/v1/transfers/{transfer_id:str}/void", ["POST"]),
    # docs/api.md sections 8-10 (issue 11): transactions, reversals, account lifecycle.
    ("/v1/transactions", ["GET", "POST"]),
    ("/v1/transactions/{transaction_id:str}", ["GET"]),
    ("/v1/transactions/{transaction_id:str}/post", ["POST"]),
    ("/v1/transactions/{transaction_id:str}/void", ["POST"]),
    ("/v1/transactions/{transaction_id:str}/reverse", ["POST"]),
    ("/v1/transfers/{transfer_id:str}/reverse", ["POST"]),
    ("/v1/accounts/{account_id:str}/freeze", ["POST"]),
    ("/v1/accounts/{account_id:str}/unfreeze", ["POST"]),
    ("/v1/accounts/{account_id:str}/close", ["POST"]),
    # docs/api.md sections 11-12 (issue 12): queries, the event feed, webhook endpoints.
    ("/v1/accounts/{account_id:str}/entries", ["GET"]),
    ("/v1/accounts/{account_id:str}/statement", ["GET"]),
    ("/v1/events", ["GET"]),
    ("/v1/webhook-endpoints", ["GET", "POST"]),
    ("/v1/webhook-endpoints/{endpoint_id:str}", ["GET", "DELETE"]),
    ("/v1/webhook-endpoints/{endpoint_id:str}/enable", ["POST"]),
    ("/v1/webhook-endpoints/{endpoint_id:str}/deliveries", ["GET"]),
]

LONG_POLL_SECONDS: dict[str, float] = {"/v1/events": float(EVENTS_MAX_WAIT_SECONDS)}
"""Routes whose ledger answer may be held back on purpose (``GET /v1/events?wait=`` waits up to 30 s,
docs/api.md section 12): their forwarding timeout is this plus ``UPSTREAM_TIMEOUT_SECONDS``, so the
gateway never cuts a wait short and still bounds a ledger that hangs."""


def _pipeline(scope: Scope) -> Pipeline:
    pipeline: Pipeline = scope["litestar_app"].state.pipeline
    return pipeline


def _proxy_route(path: str, methods: list[Any], index: int) -> BaseRouteHandler:
    """Litestar routes, the pipeline does the rest. A path without parameters gets a raw ASGI
    handler (no Request/Response objects on the hot path; see shared/asgi.py); Litestar cannot
    route to those on paths with parameters, which keep a plain handler."""
    allowed = frozenset(methods)
    if "{" not in path:

        async def proxied_asgi(scope: Scope, receive: Receive, send: Send) -> None:
            await _pipeline(scope).forward(scope, receive, send, allowed)

        proxied_asgi.__name__ = f"proxied_{index}"
        return asgi(path, name=f"proxy-{index}", copy_scope=False)(proxied_asgi)

    async def proxied(request: Request[Any, Any, Any]) -> Response[bytes]:
        status, body, media_type, headers = await _pipeline(request.scope).handle(
            request.scope, request.receive, allowed
        )
        return Response(content=body, status_code=status, media_type=media_type, headers=headers)

    proxied.__name__ = f"proxied_{index}"
    # The status is the ledger's, set on the Response; the declared one only stops Litestar refusing a
    # body-returning handler for DELETE (whose default status, 204, allows no body).
    return route(path, http_method=methods, name=f"proxy-{index}", include_in_schema=False, status_code=200)(proxied)


@post("/v1/sessions", include_in_schema=False)
async def login(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await open_session(request)  # login limits, Cache-Control: no-store (login.py)


@asgi("/v1/sessions/current", copy_scope=False)
async def logout(scope: Scope, receive: Receive, send: Send) -> None:
    if scope.get("method") != "DELETE":
        await respond_problem(send, ProblemError(ErrorCode.NOT_FOUND, "no such resource for this method"))
        return
    await _pipeline(scope).revoke_current(scope, send)


@get("/schema/openapi.json", include_in_schema=False)
async def openapi_document(request: Request[Any, Any, Any]) -> Response[bytes]:
    document: bytes = request.app.state.openapi
    return Response(content=document, media_type="application/json")


def public_routes() -> list[BaseRouteHandler]:
    proxied = [_proxy_route(path, methods, i) for i, (path, methods) in enumerate(PROXIED)]
    return [login, logout, openapi_document, *proxied]
