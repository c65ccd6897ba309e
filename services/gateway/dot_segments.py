"""Refuses request paths with dot segments (``.`` or ``..``, however escaped) at the gateway.

The gateway forwards the path as the client encoded it (``proxy._raw_path``), and the HTTP client
removes dot segments when it builds the upstream URL (RFC 3986, section 5.2.4), unescaping
``%2E`` first: ``GET /v1/accounts/%2E%2E/transfers`` would be routed here as an account id and
reach the ledger as ``GET /v1/transfers``, another route than the one the gateway checked. No public
path has such a segment and no id is one, so they are refused outright: 400 ``invalid_request``.

Invariant: a request whose decoded path has a ``.`` or ``..`` segment never reaches a route
handler. The decoded path covers every spelling (``%2e``, ``.%2E``, ``..%2F``), since the server
unescapes the path once, exactly as the HTTP client does before normalising.
"""

from __future__ import annotations

from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

from shared.errors import PROBLEM_MEDIA_TYPE, ErrorCode, ProblemError, encode_problem
from shared.logging import request_id_var
from shared.web import error_code_var

_DOT_SEGMENTS = frozenset({".", ".."})


def has_dot_segment(path: str) -> bool:
    """True when ``path`` (decoded) has a ``.`` or ``..`` segment."""
    return "." in path and not _DOT_SEGMENTS.isdisjoint(path.split("/"))


class RefuseDotSegments:
    """Pure ASGI middleware; wrap it inside :class:`shared.web.RequestContextMiddleware`, so the
    refusal carries the request id like any other problem."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_dot_segment(scope["path"]):
            await self.app(scope, receive, send)
            return
        error = ProblemError(ErrorCode.INVALID_REQUEST, "the path must not have '.' or '..' segments")
        error_code_var.set(error.code.value)
        body = encode_problem(error, request_id_var.get())
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
        end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
        await send(start)
        await send(end)
