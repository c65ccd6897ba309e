"""HTTP plumbing shared by the three Litestar apps.

- :class:`RequestContextMiddleware` gives every request an id (echoed from ``X-Request-Id`` when
  safe, else generated), keeps the ``X-Amzn-Trace-Id`` header for logs and onward calls, and writes
  ``X-Request-Id`` on every response.
- :func:`exception_handlers` maps :class:`~shared.errors.ProblemError`, Litestar's own HTTP errors
  and anything unexpected to problem+json, so no path answers with another error format.
- :func:`decode_json` is the only way a request body becomes a msgspec Struct: media type, size,
  syntax and schema failures all become 4xx problems naming the offending field.
- :func:`json_response` encodes with msgspec straight to bytes (no serialisation layer in between).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response, get
from litestar.exceptions import HTTPException, InternalServerException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import PROBLEM_MEDIA_TYPE, ErrorCode, ErrorItem, ProblemError, encode_problem
from shared.internal_token import internal_tokens
from shared.logging import request_id_var, trace_header_var
from shared.metrics import current_metrics

T = TypeVar("T")

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024
"""Largest request body accepted (docs/api.md section 2); above it 413 ``payload_too_large``."""

JSON_MEDIA_TYPE = "application/json"

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_SAFE_TRACE_HEADER = re.compile(r"^[A-Za-z0-9=;:.\-]{1,256}$")
_FIELD_PATH = re.compile(r"at `\$(?P<path>[^`]*)`")

error_code_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("error_code", default=None)
"""The ``code`` of the problem this request answered with, for the request metrics."""


class RequestContextMiddleware:
    """Pure ASGI middleware: sets the request/trace context variables and echoes X-Request-Id."""

    def __init__(self, app: ASGIApp, slo_route: tuple[str, str] | None = None) -> None:
        self.app = app
        self.slo_route = slo_route
        """(method, path) whose latency is also sampled apart (``TransferLatency``): the gateway's
        latency SLO (stacks/slo.py); None in the services the SLO does not read."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        trace_header = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _SAFE_REQUEST_ID.fullmatch(candidate):
                    request_id = candidate
            elif name == b"x-amzn-trace-id":
                candidate = value.decode("latin-1")
                if _SAFE_TRACE_HEADER.fullmatch(candidate):
                    trace_header = candidate
        if not request_id:
            request_id = uuid.uuid4().hex
        request_id_token = request_id_var.set(request_id)
        trace_token = trace_header_var.set(trace_header)
        code_token = error_code_var.set(None)
        header_value = request_id.encode()
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", header_value))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            metrics = current_metrics()
            if metrics is not None and not scope["path"].startswith("/health/"):
                transfer = self.slo_route is not None and (scope.get("method"), scope["path"]) == self.slo_route
                metrics.request(status, (time.perf_counter() - started) * 1000, error_code_var.get(), transfer)
            request_id_var.reset(request_id_token)
            trace_header_var.reset(trace_token)
            error_code_var.reset(code_token)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    """A JSON response encoded by msgspec (Structs, dicts and lists alike)."""
    return Response(content=msgspec.json.encode(body), status_code=status, media_type=JSON_MEDIA_TYPE, headers=headers)


def problem_response(error: ProblemError) -> Response[bytes]:
    error_code_var.set(error.code.value)
    return Response(
        content=encode_problem(error, request_id_var.get()),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=error.headers or None,
    )


def _from_problem_error(_: Request, exc: ProblemError) -> Response[bytes]:
    return problem_response(exc)


_HTTP_STATUS_CODES = {
    400: ErrorCode.INVALID_REQUEST,
    404: ErrorCode.NOT_FOUND,
    # A known path with another method is a resource that does not exist, as Stripe answers it:
    # the contract's table has no 405, and clients branch on its codes only.
    405: ErrorCode.NOT_FOUND,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


def _from_http_exception(_: Request, exc: HTTPException) -> Response[bytes]:
    code = _HTTP_STATUS_CODES.get(exc.status_code)
    if code is None:
        if exc.status_code >= 500:
            log.error("framework error", exc_info=exc)
            return problem_response(ProblemError(ErrorCode.INTERNAL_ERROR, "internal error"))
        code = ErrorCode.INVALID_REQUEST
    detail = {
        ErrorCode.NOT_FOUND: "no such resource" if exc.status_code == 404 else "no such resource for this method",
        ErrorCode.PAYLOAD_TOO_LARGE: f"request body exceeds {MAX_BODY_BYTES} bytes",
    }.get(code, "the request could not be understood")
    return problem_response(ProblemError(code, detail))


_INPUT_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})
"""SQLSTATE classes a request's own values can cause: 22 data exception (a value out of range, a
character the database cannot store), 23 integrity constraint violation (CHECK, NOT NULL, UNIQUE),
54 program limit exceeded (a value too large to index)."""


def _from_unexpected(_: Request, exc: Exception) -> Response[bytes]:
    return problem_response(unexpected_problem(exc))


def unexpected_problem(exc: Exception) -> ProblemError:
    """The problem to answer for an exception no code path turned into one (logged here)."""
    if isinstance(exc, ConnectionError | TimeoutError):
        log.warning("dependency unreachable", exc_info=exc)
        return ProblemError(ErrorCode.UNAVAILABLE, "a dependency is unavailable", headers={"Retry-After": "1"})
    sqlstate = getattr(exc, "sqlstate", None)  # asyncpg's errors, without importing asyncpg here
    if isinstance(sqlstate, str) and sqlstate[:2] in _INPUT_SQLSTATE_CLASSES:
        # Validation refuses such values first; this backstop keeps a gap there a 400 rather than a
        # 5xx. Logged as an error (the gap is a bug) without the exception text, whose detail
        # quotes the whole failing row: amounts, metadata.
        log.error(
            "request refused by a database constraint",
            extra={
                "sqlstate": sqlstate,
                "constraint": getattr(exc, "constraint_name", None),
                "table": getattr(exc, "table_name", None),
            },
        )
        return ProblemError(ErrorCode.INVALID_REQUEST, "a value of the request cannot be stored")
    log.error("unhandled error", exc_info=exc)
    return ProblemError(ErrorCode.INTERNAL_ERROR, "internal error")


def exception_handlers() -> dict[Any, Callable[..., Response[bytes]]]:
    return {
        ProblemError: _from_problem_error,
        HTTPException: _from_http_exception,
        Exception: _from_unexpected,
    }


def _field_of(message: str) -> str | None:
    match = _FIELD_PATH.search(message)
    if match is None:
        return None
    path = match.group("path")
    return path[1:] if path.startswith(".") else (path or None)


def validation_problem(message: str, index: int | None = None) -> ProblemError:
    field = _field_of(message)
    item = ErrorItem(code=ErrorCode.INVALID_REQUEST.value, detail=message, index=index, field=field)
    return ProblemError(ErrorCode.INVALID_REQUEST, message, errors=[item])


def check_json_media_type(content_type: str | None) -> None:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        raise ProblemError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "request body must be application/json")


def decode_json(body: bytes, content_type: str | None, type_: type[T], *, allow_empty: bool = False) -> T | None:
    """Decode a request body into ``type_`` or raise a 4xx ProblemError.

    ``allow_empty`` admits an absent body (returns None) whatever the media type, for the
    ``post``/``void`` actions whose body is optional.
    """
    if allow_empty and not body.strip():
        return None
    check_json_media_type(content_type)
    try:
        value = msgspec.json.decode(body, type=type_, strict=True)
    except msgspec.ValidationError as exc:
        raise validation_problem(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ProblemError(ErrorCode.INVALID_REQUEST, f"malformed JSON: {exc}") from None
    except RecursionError:
        # msgspec recurses per nesting level where a type leaves the depth open (msgspec.Raw, Any).
        raise ProblemError(ErrorCode.INVALID_REQUEST, "JSON nested too deeply") from None
    _reject_duplicate_keys(body)
    return value


class _DuplicateKey(ValueError):
    pass


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _DuplicateKey(duplicate)
    return obj


def _reject_duplicate_keys(body: bytes) -> None:
    """400 for an object with a repeated key: ``{"amount": 1, "amount": 100}`` is ambiguous, and
    parsers disagree on which value wins, so money requests must not depend on it.

    msgspec keeps the last value silently, so a second, stdlib parse with a pairs hook checks it.
    It runs only after msgspec accepted the body, whose types bound the nesting depth.
    """
    try:
        json.loads(body, object_pairs_hook=_unique_object)
    except _DuplicateKey as exc:
        raise ProblemError(
            ErrorCode.INVALID_REQUEST, f"duplicate key {str(exc)!r} in a JSON object", field=str(exc)
        ) from None


async def read_body(request: Request[Any, Any, Any]) -> bytes:
    """The request body, with the size limit turned into 413 ``payload_too_large``."""
    try:
        return await request.body()
    except InternalServerException:
        # Litestar's "client disconnected prematurely": the client (or the read deadline of
        # shared.read_timeout) closed the connection mid-body. Its fault, not ours: 400, unsent.
        raise ProblemError(ErrorCode.INVALID_REQUEST, "the request body was not received in full") from None
    except HTTPException as exc:
        if exc.status_code == 413:
            raise ProblemError(ErrorCode.PAYLOAD_TOO_LARGE, f"request body exceeds {MAX_BODY_BYTES} bytes") from None
        raise


def health_routes(ready: Callable[[], Awaitable[str | None]]) -> list[Any]:
    """``/health/live`` and ``/health/ready``; ``ready`` returns None when ready, else the reason."""

    @get("/health/live", include_in_schema=False, sync_to_thread=False)
    def live() -> Response[bytes]:
        internal_tokens().keep_fresh()  # polled from the task's start: the token refresher runs (ADR 0107)
        return json_response({"status": "live"})

    @get("/health/ready", include_in_schema=False)
    async def ready_route() -> Response[bytes]:
        internal_tokens().keep_fresh()
        reason = await ready()
        if reason is None:
            return json_response({"status": "ready"})
        return problem_response(
            ProblemError(ErrorCode.UNAVAILABLE, f"not ready: {reason}", headers={"Retry-After": "1"})
        )

    return [live, ready_route]
