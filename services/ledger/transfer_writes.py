"""The ledger's transfer-write endpoints: where a single create, post or void enters the ledger.

- ``POST /v1/transfers`` (lean: a raw ASGI handler, the hottest route of the service);
- ``POST /v1/transfers/{id}/post`` and ``.../void``;
- ``POST /internal/transfer-groups``: many of the above from the gateway's coalescer in one call
  (:mod:`shared.transfer_group`), applied one at a time in the order given.

All of them decode with :func:`.intake.prepare`, queue on the one :class:`.committer.GroupCommitter`
and answer with :func:`.intake.answer`, so a grouped item gets exactly a lone call's response.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from litestar import Request, Response, asgi, post
from litestar.types import Receive, Scope, Send

from services.ledger.intake import Kind, answer, prepare, refused
from services.ledger.operations import Outcome, WriteRequest
from services.ledger.query_routes import list_transfers_asgi
from services.ledger.runtime import LedgerRuntime
from shared import transfer_group
from shared.asgi import header, read_body, respond, respond_problem
from shared.errors import ErrorCode, ProblemError
from shared.http import INTERNAL_TOKEN_HEADER, KEY_HEADER, TENANT_HEADER, key_id_header, require_internal_token
from shared.logging import caller_var, request_id_var
from shared.transfer_group import GroupItem, GroupResult
from shared.web import read_body as read_request_body
from shared.web import unexpected_problem

log = logging.getLogger(__name__)

_INTERNAL_TOKEN = INTERNAL_TOKEN_HEADER.lower().encode()
_TENANT = TENANT_HEADER.lower().encode()
_KEY = KEY_HEADER.lower().encode()


def _runtime_of(scope: Scope) -> LedgerRuntime:
    runtime: LedgerRuntime = scope["litestar_app"].state.ledger
    return runtime


def _tenant(value: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(value or "")
    except ValueError:
        raise ProblemError(ErrorCode.UNAUTHORIZED, "missing or invalid tenant") from None


def _authorise(scope: Scope, runtime: LedgerRuntime) -> None:
    require_internal_token(header(scope, _INTERNAL_TOKEN), runtime.internal_token)
    tenant, key_id = header(scope, _TENANT), header(scope, _KEY)
    if tenant:
        caller_var.set((tenant, key_id or ""))


def _authorised_post(scope: Scope) -> LedgerRuntime:
    """The runtime, for a POST carrying the internal credential (another method: 404, no 405)."""
    if scope.get("method") != "POST":
        raise ProblemError(ErrorCode.NOT_FOUND, "no such resource for this method")
    runtime = _runtime_of(scope)
    _authorise(scope, runtime)
    return runtime


@asgi("/v1/transfers", copy_scope=False)
async def create_transfer(scope: Scope, receive: Receive, send: Send) -> None:
    if scope.get("method") == "GET":  # GET /v1/transfers: the filtered list (query_routes)
        await list_transfers_asgi(scope, receive, send)
        return
    try:
        runtime = _authorised_post(scope)
        tenant = _tenant(header(scope, _TENANT))
        key_id = key_id_header(header(scope, _KEY))
        body = await read_body(scope, receive)
        request = prepare(Kind.CREATE, tenant, "", body, header(scope, b"content-type"), key_id)
        outcomes = await runtime.committer.submit(request)
    except ProblemError as error:
        await respond_problem(send, error)
        return
    status, body, content_type = answer(outcomes[0])
    await respond(send, status, body, content_type)


async def _resolve(request: Request[Any, Any, Any], kind: Kind, transfer_id: str) -> Response[bytes]:
    runtime: LedgerRuntime = request.app.state.ledger
    _authorise(request.scope, runtime)
    tenant = _tenant(request.headers.get(TENANT_HEADER))
    body = await read_request_body(request)
    key_id = key_id_header(request.headers.get(KEY_HEADER))
    write = prepare(kind, tenant, transfer_id, body, request.headers.get("content-type"), key_id)
    outcomes = await runtime.committer.submit(write)
    status, content, content_type = answer(outcomes[0])
    return Response(content=content, status_code=status, media_type=content_type)


@post("/v1/transfers/{transfer_id:str}/post")
async def post_pending(request: Request[Any, Any, Any], transfer_id: str) -> Response[bytes]:
    return await _resolve(request, Kind.POST, transfer_id)


@post("/v1/transfers/{transfer_id:str}/void")
async def void_pending(request: Request[Any, Any, Any], transfer_id: str) -> Response[bytes]:
    return await _resolve(request, Kind.VOID, transfer_id)


@asgi(transfer_group.GROUP_PATH, copy_scope=False)
async def transfer_group_route(scope: Scope, receive: Receive, send: Send) -> None:
    try:
        runtime = _authorised_post(scope)
        raw = await read_body(scope, receive)
        try:
            items = transfer_group.ITEMS.decode(raw)
        except (ValueError, TypeError):
            raise ProblemError(ErrorCode.INVALID_REQUEST, "malformed transfer group") from None
    except ProblemError as error:
        await respond_problem(send, error)
        return
    results = await apply_group(runtime, items)
    await respond(send, 200, transfer_group.ENCODER.encode(results), transfer_group.MEDIA_TYPE)


async def apply_group(runtime: LedgerRuntime, items: list[GroupItem]) -> list[GroupResult]:
    """Each item's exact lone-call response; items are queued together, in order."""
    results: list[GroupResult | None] = [None] * len(items)
    accepted: list[tuple[int, WriteRequest]] = []
    for index, item in enumerate(items):
        request_id_var.set(item.request_id)  # problem bodies and log lines name the item's request
        caller_var.set((item.tenant_id, item.key_id))
        try:
            if item.kind not in (Kind.CREATE, Kind.POST, Kind.VOID):
                raise ProblemError(ErrorCode.INVALID_REQUEST, "unknown transfer write")
            tenant = _tenant(item.tenant_id)
            key_id = key_id_header(item.key_id)
            write = prepare(Kind(item.kind), tenant, item.target, item.body, item.content_type or None, key_id)
            accepted.append((index, write))
        except ProblemError as error:
            results[index] = _result(*refused(error, item.request_id), error)
    futures = runtime.committer.submit_many([request for _, request in accepted])
    for (index, _), future in zip(accepted, futures, strict=True):
        item = items[index]
        try:
            outcomes: list[Outcome] = await future
        except ProblemError as error:
            results[index] = _result(*refused(error, item.request_id), error)
            continue
        except Exception as exc:  # answered as the lone call would be; its neighbours are unaffected
            failure = unexpected_problem(exc)
            results[index] = _result(*refused(failure, item.request_id), failure)
            continue
        results[index] = _result(*answer(outcomes[0], item.request_id))
    return [result for result in results if result is not None]


def _result(status: int, body: bytes, content_type: str, error: ProblemError | None = None) -> GroupResult:
    retry_after = error.headers.get("Retry-After", "") if error is not None else ""
    return GroupResult(status, content_type, body, retry_after)


ROUTES = [create_transfer, post_pending, void_pending, transfer_group_route]
