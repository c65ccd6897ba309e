"""HTTP handlers of the ledger's internal API: decode, call the domain, encode. Nothing else.

The paths, bodies and errors are those of the public API (docs/api.md sections 4 and 5); the
gateway forwards to them after authenticating the caller, passing the tenant in ``X-Tenant-Id``
together with the internal credential (``X-Internal-Token``), which :func:`tenant_of` checks.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import msgspec
from litestar import Request, Response, get, post

from services.ledger import account_store, reads
from services.ledger.db import connection
from services.ledger.operations import CreateTransfer, Outcome, WriteRequest
from services.ledger.present import (
    account_from_row,
    decode_cursor,
    encode_cursor,
    outcome_problem,
    transfer_of,
)
from services.ledger.runtime import LedgerRuntime
from shared.errors import ErrorCode, ErrorItem, ProblemError
from shared.http import INTERNAL_TOKEN_HEADER, KEY_HEADER, key_id_header, require_internal_token
from shared.ledger_api import (
    MAX_BATCH_ITEMS,
    AccountCreate,
    BatchCreate,
    BatchData,
    BatchItemResult,
    BatchResults,
    ItemError,
)
from shared.ledger_query_api import TransferPage
from shared.web import decode_json, json_response, problem_response, read_body

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_BATCH_FIELD = re.compile(r"^transfers\[(\d+)\]\.?(.*)$")
_LIMIT = re.compile(r"[0-9]{1,7}")


class BatchShape(msgspec.Struct, kw_only=True):
    """First pass over a batch body: counts items without validating them (413 before 400). The
    ledger's own decoding step, not a public body, so it is not in :mod:`shared.ledger_api`."""

    transfers: list[msgspec.Raw]


def _runtime(request: Request[Any, Any, Any]) -> LedgerRuntime:
    runtime: LedgerRuntime = request.app.state.ledger
    return runtime


def tenant_of(request: Request[Any, Any, Any]) -> uuid.UUID:
    """The calling tenant, trusted only with the internal credential; else 401 ``unauthorized``."""
    require_internal_token(request.headers.get(INTERNAL_TOKEN_HEADER), _runtime(request).internal_token)
    try:
        return uuid.UUID(request.headers.get("x-tenant-id", ""))
    except ValueError:
        raise ProblemError(ErrorCode.UNAUTHORIZED, "missing or invalid tenant") from None


def _uuid_param(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ProblemError(ErrorCode.INVALID_REQUEST, f"{name} must be a UUID", field=name) from None


def _limit(request: Request[Any, Any, Any]) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    # ASCII digits only: str.isdigit() also admits superscripts and other scripts' digits, which
    # int() refuses (a 500) or reads.
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ProblemError(ErrorCode.INVALID_REQUEST, f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
    return int(raw)


def _outcome_response(outcome: Outcome) -> Response[bytes]:
    if outcome.code is not None:
        return problem_response(outcome_problem(outcome))
    assert outcome.transfer is not None
    return json_response(transfer_of(outcome.transfer), outcome.status)


# -- accounts ------------------------------------------------------------------------------------


@post("/v1/accounts")
async def create_account(request: Request[Any, Any, Any]) -> Response[bytes]:
    tenant = tenant_of(request)
    body = decode_json(await read_body(request), request.headers.get("content-type"), AccountCreate)
    assert body is not None
    async with connection(_runtime(request).pool) as conn:
        status, row = await account_store.create_account(
            conn, tenant, body, key_id_header(request.headers.get(KEY_HEADER))
        )
    return json_response(account_from_row(row), status)


@get("/v1/accounts/{account_id:str}")
async def get_account(request: Request[Any, Any, Any], account_id: str) -> Response[bytes]:
    tenant = tenant_of(request)
    key = _uuid_param(account_id, "account_id")
    async with connection(_runtime(request).pool) as conn:
        row = await reads.get_account(conn, tenant, key)
    if row is None:
        raise ProblemError(ErrorCode.ACCOUNT_NOT_FOUND, "no such account")
    return json_response(account_from_row(row))


@get("/v1/accounts/{account_id:str}/transfers")
async def account_transfers(request: Request[Any, Any, Any], account_id: str) -> Response[bytes]:
    tenant = tenant_of(request)
    key = _uuid_param(account_id, "account_id")
    limit = _limit(request)
    secret = await reads.cursor_secret(_runtime(request).pool)
    after = decode_cursor("h", request.query_params.get("cursor"), tenant, secret)
    async with connection(_runtime(request).pool) as conn:
        if await reads.account_normal_balance(conn, tenant, key) is None:
            raise ProblemError(ErrorCode.ACCOUNT_NOT_FOUND, "no such account")
        transfers, now = await reads.account_history(conn, tenant, key, after, limit + 1)
    more = len(transfers) > limit
    transfers = transfers[:limit]
    next_cursor = encode_cursor("h", transfers[-1].seq, tenant, secret) if more else None
    return json_response(TransferPage(data=[transfer_of(t, now) for t in transfers], next_cursor=next_cursor))


# -- transfers -----------------------------------------------------------------------------------


def _too_large(count: int) -> ProblemError:
    return ProblemError(
        ErrorCode.BATCH_TOO_LARGE,
        f"a batch holds at most {MAX_BATCH_ITEMS} transfers ({count} sent)",
        field="transfers",
    )


def _decode_batch(raw: bytes, content_type: str | None) -> BatchCreate:
    """One decode for a valid batch; only a refused one is counted again, so 413 wins over 400."""
    try:
        batch = decode_json(raw, content_type, BatchCreate)
    except ProblemError as problem:
        if problem.code is ErrorCode.INVALID_REQUEST:
            try:
                shape = msgspec.json.decode(raw, type=BatchShape)
            except (msgspec.MsgspecError, RecursionError):  # not a batch, or nested too deeply
                shape = None
            if shape is not None and len(shape.transfers) > MAX_BATCH_ITEMS:
                raise _too_large(len(shape.transfers)) from None
        for item in problem.errors or []:
            match = _BATCH_FIELD.match(item.field or "")
            if match:
                item.index, item.field = int(match.group(1)), match.group(2) or None
        raise
    assert batch is not None
    if len(batch.transfers) > MAX_BATCH_ITEMS:
        raise _too_large(len(batch.transfers))
    return batch


@post("/v1/transfers/batch")
async def create_batch(request: Request[Any, Any, Any]) -> Response[bytes]:
    tenant = tenant_of(request)
    batch = _decode_batch(await read_body(request), request.headers.get("content-type"))
    key_id = key_id_header(request.headers.get(KEY_HEADER))
    operations: list[Any] = [CreateTransfer(tenant, item, key_id) for item in batch.transfers]
    outcomes = await _runtime(request).committer.submit(WriteRequest(operations, atomic=batch.atomic))
    if batch.atomic:
        failed = [
            ErrorItem(index=i, code=o.code.value, detail=o.detail) for i, o in enumerate(outcomes) if o.code is not None
        ]
        if failed:
            raise ProblemError(
                ErrorCode.BATCH_FAILED,
                f"{len(failed)} of {len(outcomes)} transfers failed; none applied",
                errors=failed,
            )
        return json_response(BatchData(data=[transfer_of(o.transfer) for o in outcomes if o.transfer]), 201)
    results = [
        BatchItemResult(index=i, status=o.status, transfer=transfer_of(o.transfer))
        if o.transfer is not None
        else BatchItemResult(index=i, status=o.status, error=ItemError(code=str(o.code), detail=o.detail))
        for i, o in enumerate(outcomes)
    ]
    return json_response(BatchResults(results=results))


@get("/v1/transfers/{transfer_id:str}")
async def get_transfer(request: Request[Any, Any, Any], transfer_id: str) -> Response[bytes]:
    tenant = tenant_of(request)
    key = _uuid_param(transfer_id, "transfer_id")
    async with connection(_runtime(request).pool) as conn:
        found = await reads.get_transfer(conn, tenant, key)
    if found is None:
        raise ProblemError(ErrorCode.TRANSFER_NOT_FOUND, "no such transfer")
    return json_response(transfer_of(*found))


ROUTES = [
    create_account,
    get_account,
    account_transfers,
    create_batch,
    get_transfer,
]
