"""The ledger's endpoints for transactions, reversals and account lifecycle (docs/api.md sections 8-10).

Each decodes its body (400 for bad input, nothing written), queues ONE write request on the group
committer (so it is applied in order with the transfers around it, under the same row locks) and
answers the committed outcome. The rules are in :mod:`.rules`, :mod:`.transaction_rules` and
:mod:`.account_rules`; nothing here decides anything.

- ``POST /v1/transactions``, ``GET /v1/transactions/{id}``, ``POST /v1/transactions/{id}/post``,
  ``.../void``, ``.../reverse``;
- ``POST /v1/transfers/{id}/reverse``;
- ``POST /v1/accounts/{id}/freeze``, ``.../unfreeze``, ``.../close``; ``PATCH /v1/accounts/{id}``.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, get, patch, post

from services.ledger import reads
from services.ledger.db import connection
from services.ledger.operations import (
    ChangeAccount,
    CreateTransaction,
    Operation,
    Outcome,
    ResolveTransaction,
    ReverseTransaction,
    ReverseTransfer,
    WriteRequest,
)
from services.ledger.present import account_of, outcome_problem, transaction_of, transfer_of
from services.ledger.routes import tenant_of
from services.ledger.runtime import LedgerRuntime
from shared.errors import ErrorCode, ProblemError
from shared.http import KEY_HEADER, key_id_header
from shared.ledger_api import AccountPatch, EmptyBody, TransactionCreate, TransactionReverse, TransferReverse
from shared.web import decode_json, json_response, problem_response, read_body


def _id(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ProblemError(ErrorCode.INVALID_REQUEST, f"{name} must be a UUID", field=name) from None


def _key_id(request: Request[Any, Any, Any]) -> str | None:
    return key_id_header(request.headers.get(KEY_HEADER))


async def _body(request: Request[Any, Any, Any], kind: type[Any], allow_empty: bool = False) -> Any:
    return decode_json(await read_body(request), request.headers.get("content-type"), kind, allow_empty=allow_empty)


async def _apply(request: Request[Any, Any, Any], operation: Operation) -> Response[bytes]:
    runtime: LedgerRuntime = request.app.state.ledger
    outcome: Outcome = (await runtime.committer.submit(WriteRequest([operation])))[0]
    if outcome.code is not None:
        return problem_response(outcome_problem(outcome))
    if outcome.transaction is not None:
        return json_response(transaction_of(outcome.transaction), outcome.status)
    if outcome.transfer is not None:
        return json_response(transfer_of(outcome.transfer), outcome.status)
    assert outcome.account is not None
    return json_response(account_of(outcome.account), outcome.status)


# -- transactions ----------------------------------------------------------------------------------


@post("/v1/transactions")
async def create_transaction(request: Request[Any, Any, Any]) -> Response[bytes]:
    tenant = tenant_of(request)
    body: TransactionCreate = await _body(request, TransactionCreate)
    return await _apply(request, CreateTransaction(tenant, body, _key_id(request)))


@get("/v1/transactions/{transaction_id:str}")
async def get_transaction(request: Request[Any, Any, Any], transaction_id: str) -> Response[bytes]:
    tenant = tenant_of(request)
    key = _id(transaction_id, "transaction_id")
    runtime: LedgerRuntime = request.app.state.ledger
    async with connection(runtime.pool) as conn:
        found = await reads.get_transaction(conn, tenant, key)
    if found is None:
        raise ProblemError(ErrorCode.TRANSACTION_NOT_FOUND, "no such transaction")
    return json_response(transaction_of(*found))


async def _resolve_transaction(request: Request[Any, Any, Any], transaction_id: str, post: bool) -> Response[bytes]:
    tenant = tenant_of(request)
    key = _id(transaction_id, "transaction_id")
    await _body(request, EmptyBody, allow_empty=True)  # whole amounts only: no body fields at all
    return await _apply(request, ResolveTransaction(tenant, key, post, _key_id(request)))


@post("/v1/transactions/{transaction_id:str}/post")
async def post_transaction(request: Request[Any, Any, Any], transaction_id: str) -> Response[bytes]:
    return await _resolve_transaction(request, transaction_id, True)


@post("/v1/transactions/{transaction_id:str}/void")
async def void_transaction(request: Request[Any, Any, Any], transaction_id: str) -> Response[bytes]:
    return await _resolve_transaction(request, transaction_id, False)


@post("/v1/transactions/{transaction_id:str}/reverse")
async def reverse_transaction(request: Request[Any, Any, Any], transaction_id: str) -> Response[bytes]:
    tenant = tenant_of(request)
    key = _id(transaction_id, "transaction_id")
    body: TransactionReverse = await _body(request, TransactionReverse)
    return await _apply(request, ReverseTransaction(tenant, key, body, _key_id(request)))


# -- reversals of transfers ------------------------------------------------------------------------


@post("/v1/transfers/{transfer_id:str}/reverse")
async def reverse_transfer(request: Request[Any, Any, Any], transfer_id: str) -> Response[bytes]:
    tenant = tenant_of(request)
    key = _id(transfer_id, "transfer_id")
    body: TransferReverse = await _body(request, TransferReverse)
    return await _apply(request, ReverseTransfer(tenant, key, body, _key_id(request)))


# -- account lifecycle -----------------------------------------------------------------------------


async def _change(request: Request[Any, Any, Any], account_id: str, action: str) -> Response[bytes]:
    tenant = tenant_of(request)
    key = _id(account_id, "account_id")
    await _body(request, EmptyBody, allow_empty=True)
    return await _apply(request, ChangeAccount(tenant, key, action, None, _key_id(request)))


@post("/v1/accounts/{account_id:str}/freeze")
async def freeze_account(request: Request[Any, Any, Any], account_id: str) -> Response[bytes]:
    return await _change(request, account_id, "freeze")


@post("/v1/accounts/{account_id:str}/unfreeze")
async def unfreeze_account(request: Request[Any, Any, Any], account_id: str) -> Response[bytes]:
    return await _change(request, account_id, "unfreeze")


@post("/v1/accounts/{account_id:str}/close")
async def close_account(request: Request[Any, Any, Any], account_id: str) -> Response[bytes]:
    return await _change(request, account_id, "close")


@patch("/v1/accounts/{account_id:str}")
async def update_account(request: Request[Any, Any, Any], account_id: str) -> Response[bytes]:
    tenant = tenant_of(request)
    key = _id(account_id, "account_id")
    body: AccountPatch = await _body(request, AccountPatch)
    if not body.expected_versions.keys() <= {key}:
        raise ProblemError(
            ErrorCode.INVALID_REQUEST, "expected_versions may only name this account", field="expected_versions"
        )
    return await _apply(request, ChangeAccount(tenant, key, "update", body, _key_id(request)))


ROUTES = [
    create_transaction,
    get_transaction,
    post_transaction,
    void_transaction,
    reverse_transaction,
    reverse_transfer,
    freeze_account,
    unfreeze_account,
    close_account,
    update_account,
]
