"""Raw ASGI plumbing for the few hot routes that skip Litestar's request and response objects.

The transfer routes run thousands of times a second; Litestar's ``Request``/``Response`` layers
cost more than the work itself there (docs/performance.md). Those routes are mounted as
``@asgi`` handlers inside each service's Litestar app (routing, middleware, exception handlers and
lifespan stay Litestar's) and use these helpers to read the body and answer.

Semantics kept identical to :func:`shared.web.read_body` and :func:`shared.web.problem_response`:
a body over :data:`shared.web.MAX_BODY_BYTES` is 413 ``payload_too_large`` (checked against
``Content-Length`` first, then while reading), a client that disconnects mid-body is 400, and a
problem answer records its code for the request metrics.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar.types import Receive, Scope, Send

from shared.errors import PROBLEM_MEDIA_TYPE, ErrorCode, ProblemError, encode_problem
from shared.logging import request_id_var
from shared.web import JSON_MEDIA_TYPE, MAX_BODY_BYTES, error_code_var

_TOO_LARGE = f"request body exceeds {MAX_BODY_BYTES} bytes"


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes), decoded as latin-1."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_body(scope: Scope, receive: Receive) -> bytes:
    """The whole request body, at most :data:`MAX_BODY_BYTES` (else 413)."""
    length = header(scope, b"content-length")
    if length is not None and length.isascii() and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise ProblemError(ErrorCode.PAYLOAD_TOO_LARGE, _TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ProblemError(ErrorCode.INVALID_REQUEST, "the request body was not received in full")
        chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
        if chunk:
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise ProblemError(ErrorCode.PAYLOAD_TOO_LARGE, _TOO_LARGE)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str = JSON_MEDIA_TYPE,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    """Send a complete response in two ASGI messages."""
    raw = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
    ]
    raw.extend((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers)
    start: Any = {"type": "http.response.start", "status": status, "headers": raw}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)


def problem_body(error: ProblemError, request_id: str | None = None) -> bytes:
    """The problem+json bytes of ``error`` for the current request (or ``request_id``), recording
    its code for the request metrics exactly as :func:`shared.web.problem_response` does."""
    error_code_var.set(error.code.value)
    return encode_problem(error, request_id if request_id is not None else request_id_var.get())


async def respond_problem(send: Send, error: ProblemError, extra_headers: Iterable[tuple[str, str]] = ()) -> None:
    headers = [*error.headers.items(), *extra_headers]
    await respond(send, error.status, problem_body(error), PROBLEM_MEDIA_TYPE, headers)
