"""``/v1/webhook-endpoints``: register, list, read, delete and re-enable endpoints; read deliveries.

Every handler checks the internal credential and takes the tenant from the gateway
(:func:`~services.ledger.routes.tenant_of`); another tenant's endpoint is 404
``webhook_endpoint_not_found``, like an unknown one. Bad input is 400 ``invalid_request`` naming the
field, with nothing stored: an unknown event type (``event_types[i]``), a URL that is not an
absolute http(s) URL, or that resolves to a non-public address (``url``, see :mod:`.url_safety`).
The secret is returned by the creation only. Lists are cursor pages (``limit`` 1-1000, default 100,
cursors sealed per tenant and list as in :mod:`services.ledger.present`).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar import Request, Response, delete, get, post

from services.ledger import reads
from services.ledger.db import connection
from services.ledger.present import MAX_POSITION, decode_cursor, encode_cursor
from services.ledger.routes import tenant_of
from services.ledger.runtime import LedgerRuntime
from services.ledger.webhooks import signing, store
from services.ledger.webhooks.url_safety import check_url
from shared.errors import ErrorCode, ErrorItem, ProblemError
from shared.event_api import (
    EVENT_TYPES,
    WILDCARDS,
    CreatedEndpoint,
    Delivery,
    DeliveryPage,
    Endpoint,
    EndpointCreate,
    EndpointPage,
)
from shared.timefmt import rfc3339
from shared.web import decode_json, json_response, read_body

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_LIMIT = re.compile(r"[0-9]{1,7}")
_MISSING = re.compile(r"missing required field `(\w+)`")
_SUBSCRIBABLE = frozenset(EVENT_TYPES) | frozenset(WILDCARDS)


def _runtime(request: Request[Any, Any, Any]) -> LedgerRuntime:
    runtime: LedgerRuntime = request.app.state.ledger
    return runtime


def _limit(request: Request[Any, Any, Any]) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ProblemError(ErrorCode.INVALID_REQUEST, f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
    return int(raw)


def _endpoint_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ProblemError(ErrorCode.INVALID_REQUEST, "endpoint_id must be a UUID", field="endpoint_id") from None


def _not_found() -> ProblemError:
    return ProblemError(ErrorCode.WEBHOOK_ENDPOINT_NOT_FOUND, "no such webhook endpoint")


def _event_types(requested: list[str]) -> list[str]:
    """The requested types in order without repeats; 400 naming each one that does not exist."""
    errors = [
        ErrorItem(
            code=ErrorCode.INVALID_REQUEST.value,
            detail=f"unknown event type {value!r}; one of {', '.join(EVENT_TYPES)} or {', '.join(WILDCARDS)}",
            field=f"event_types[{index}]",
        )
        for index, value in enumerate(requested)
        if value not in _SUBSCRIBABLE
    ]
    if errors:
        raise ProblemError(ErrorCode.INVALID_REQUEST, errors[0].detail, errors=errors)
    return list(dict.fromkeys(requested))


def _decode_create(raw: bytes, content_type: str | None) -> EndpointCreate:
    try:
        body = decode_json(raw, content_type, EndpointCreate)
    except ProblemError as exc:
        # msgspec names no path for a missing field; name it, as for every other bad field.
        missing = _MISSING.search(exc.detail)
        if missing and exc.errors and exc.errors[0].field is None:
            exc.errors[0].field = missing.group(1)
        raise
    assert body is not None
    return body


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(**store.endpoint_fields(row))


@post("/v1/webhook-endpoints")
async def create_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    tenant = tenant_of(request)
    body = _decode_create(await read_body(request), request.headers.get("content-type"))
    event_types = _event_types(body.event_types)
    config = _runtime(request).webhooks.config
    await check_url(body.url, require_https=config.require_https, allow_private=config.allow_private_urls)
    async with connection(_runtime(request).pool) as conn:
        row = await store.create_endpoint(conn, tenant, body.url, event_types, signing.new_secret())
    fields = store.endpoint_fields(row)
    del fields["status"]
    return json_response(CreatedEndpoint(secret=row["secret"], **fields), 201)


@get("/v1/webhook-endpoints")
async def list_endpoints(request: Request[Any, Any, Any]) -> Response[bytes]:
    tenant = tenant_of(request)
    limit = _limit(request)
    secret = await reads.cursor_secret(_runtime(request).pool)
    after = decode_cursor("webhook-endpoints", request.query_params.get("cursor"), tenant, secret)
    async with connection(_runtime(request).pool) as conn:
        rows = await store.list_endpoints(conn, tenant, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor("webhook-endpoints", rows[-1]["pk"], tenant, secret) if more else None
    return json_response(EndpointPage(data=[_endpoint(r) for r in rows], next_cursor=next_cursor))


@get("/v1/webhook-endpoints/{endpoint_id:str}")
async def get_endpoint(request: Request[Any, Any, Any], endpoint_id: str) -> Response[bytes]:
    tenant = tenant_of(request)
    key = _endpoint_id(endpoint_id)
    async with connection(_runtime(request).pool) as conn:
        row = await store.get_endpoint(conn, tenant, key)
    if row is None:
        raise _not_found()
    return json_response(_endpoint(row))


@delete("/v1/webhook-endpoints/{endpoint_id:str}", status_code=204)
async def delete_endpoint(request: Request[Any, Any, Any], endpoint_id: str) -> None:
    tenant = tenant_of(request)
    key = _endpoint_id(endpoint_id)
    async with connection(_runtime(request).pool) as conn:
        if not await store.delete_endpoint(conn, tenant, key):
            raise _not_found()


@post("/v1/webhook-endpoints/{endpoint_id:str}/enable")
async def enable_endpoint(request: Request[Any, Any, Any], endpoint_id: str) -> Response[bytes]:
    tenant = tenant_of(request)
    key = _endpoint_id(endpoint_id)
    async with connection(_runtime(request).pool) as conn:
        row = await store.enable_endpoint(conn, tenant, key)
    if row is None:
        raise _not_found()
    return json_response(_endpoint(row))


@get("/v1/webhook-endpoints/{endpoint_id:str}/deliveries")
async def list_deliveries(request: Request[Any, Any, Any], endpoint_id: str) -> Response[bytes]:
    """Attempts, oldest first (``order=desc``: newest first)."""
    tenant = tenant_of(request)
    key = _endpoint_id(endpoint_id)
    limit = _limit(request)
    order = request.query_params.get("order", "asc")
    if order not in {"asc", "desc"}:
        raise ProblemError(ErrorCode.INVALID_REQUEST, "order must be asc or desc", field="order")
    kind = f"webhook-deliveries:{key}:{order}"
    secret = await reads.cursor_secret(_runtime(request).pool)
    position = decode_cursor(kind, request.query_params.get("cursor"), tenant, secret)
    if position < 0 and order == "desc":
        position = MAX_POSITION
    async with connection(_runtime(request).pool) as conn:
        if await store.get_endpoint(conn, tenant, key) is None:
            raise _not_found()
        rows = await store.list_deliveries(conn, tenant, key, position, limit + 1, order == "desc")
    more = len(rows) > limit
    rows = rows[:limit]
    data = [
        Delivery(
            event_seq=r["event_seq"],
            event_type=r["event_type"],
            attempt=r["attempt"],
            status=r["status"],
            response_code=r["response_code"],
            error=r["error"],
            duration_ms=r["duration_ms"],
            attempted_at=rfc3339(r["attempted_at"]),
        )
        for r in rows
    ]
    next_cursor = encode_cursor(kind, rows[-1]["pk"], tenant, secret) if more else None
    return json_response(DeliveryPage(data=data, next_cursor=next_cursor))


ROUTES = [create_endpoint, list_endpoints, get_endpoint, delete_endpoint, enable_endpoint, list_deliveries]
