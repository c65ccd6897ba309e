"""The OpenAPI 3.1 document served at ``/schema/openapi.json``, built once at startup.

Bodies come from the msgspec Structs that validate them: the ledger's (``services.ledger.schemas``,
the single source of truth for accounts and transfers, including the batch limit) and the
gateway's own. Each operation lists every status and error ``code`` it can answer with
(public-api.md section 6), so generated clients and contract tests see the whole contract.
"""

from __future__ import annotations

from typing import Any

import msgspec

from services.ledger import schemas as ledger
from shared.errors import ErrorCode, Problem
from shared.session_api import LoginRequest, SessionCreated

REF = "#/components/schemas/{name}"

_AUTH_ERRORS = {401: ["unauthorized"], 429: ["rate_limited"], 503: ["unavailable"]}
_POST_ERRORS = {
    400: ["invalid_request"],
    409: ["idempotency_key_in_use"],
    413: ["payload_too_large"],
    415: ["unsupported_media_type"],
    422: ["idempotency_key_reused"],
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def _page(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {"type": "array", "items": _ref(item)},
            "next_cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
    }


def _merge(*groups: dict[int, list[str]]) -> dict[int, list[str]]:
    merged: dict[int, list[str]] = {}
    for group in groups:
        for status, codes in group.items():
            merged.setdefault(status, [])
            merged[status].extend(code for code in codes if code not in merged[status])
    return merged


def _operation(
    summary: str,
    ok: dict[int, tuple[str, dict[str, Any] | None]],
    errors: dict[int, list[str]],
    *,
    body: str | None = None,
    body_required: bool = True,
    params: list[dict[str, Any]] | None = None,
    authenticated: bool = True,
    idempotent_key: bool = False,
) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (description, schema) in ok.items():
        entry: dict[str, Any] = {"description": description}
        if schema is not None:
            entry["content"] = {"application/json": {"schema": schema}}
        responses[str(status)] = entry
    for status, codes in sorted(errors.items()):
        responses[str(status)] = {
            "description": "Error; `code` is one of: " + ", ".join(f"`{c}`" for c in codes),
            "content": {
                "application/problem+json": {
                    "schema": {"allOf": [_ref("Problem"), {"properties": {"code": {"enum": codes}}}]}
                }
            },
        }
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    parameters = list(params or [])
    if idempotent_key:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "1-255 printable ASCII characters. The first response is kept 24 h per tenant "
                "and replayed with `Idempotent-Replayed: true`.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
            }
        )
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": _ref(body)}}}
    if not authenticated:
        operation["security"] = []
    return operation


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


_LIST_PARAMS = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
]


def build_document() -> dict[str, Any]:
    structs = [
        LoginRequest,
        SessionCreated,
        Problem,
        ledger.AccountCreate,
        ledger.Account,
        ledger.TransferCreate,
        ledger.Transfer,
        ledger.BatchCreate,
        ledger.BatchData,
        ledger.BatchResults,
        ledger.PendingPost,
        ledger.BalanceAt,
    ]
    _, components = msgspec.json.schema_components(structs, ref_template=REF)
    components["BatchCreate"]["properties"]["transfers"].update(minItems=1, maxItems=ledger.MAX_BATCH_ITEMS)
    components["Problem"]["properties"]["code"]["enum"] = [
        code.value for code in ErrorCode if code.status < 500 or code is ErrorCode.UNAVAILABLE
    ]
    components["AccountPage"] = _page("Account")
    components["TransferPage"] = _page("Transfer")

    auth = _AUTH_ERRORS
    write = _merge(auth, _POST_ERRORS)
    account = ("The account", _ref("Account"))
    transfer = ("The transfer", _ref("Transfer"))
    paths: dict[str, Any] = {
        "/v1/sessions": {
            "post": _operation(
                "Log in with an API key",
                {201: ("A session", _ref("SessionCreated"))},
                {
                    400: ["invalid_request"],
                    401: ["invalid_api_key"],
                    413: ["payload_too_large"],
                    415: ["unsupported_media_type"],
                    503: ["unavailable"],
                },
                body="LoginRequest",
                authenticated=False,
            )
        },
        "/v1/sessions/current": {
            "delete": _operation(
                "Revoke the caller's token (every gateway refuses it within one second)", {204: ("Revoked", None)}, auth
            )
        },
        "/v1/accounts": {
            "post": _operation(
                "Open an account",
                {201: account, 200: ("Same id, same body: the existing account", _ref("Account"))},
                _merge(write, {409: ["id_conflict"]}),
                body="AccountCreate",
                idempotent_key=True,
            ),
            "get": _operation(
                "List the tenant's accounts, oldest first",
                {200: ("A page", _ref("AccountPage"))},
                _merge(auth, {400: ["invalid_request"]}),
                params=[{"name": "currency", "in": "query", "schema": {"type": "string"}}, *_LIST_PARAMS],
            ),
        },
        "/v1/accounts/{account_id}": {
            "get": _operation(
                "Get an account",
                {200: account},
                _merge(auth, {400: ["invalid_request"], 404: ["account_not_found"]}),
                params=[_path_param("account_id")],
            )
        },
        "/v1/accounts/{account_id}/transfers": {
            "get": _operation(
                "Transfers touching an account, in applied order",
                {200: ("A page", _ref("TransferPage"))},
                _merge(auth, {400: ["invalid_request"], 404: ["account_not_found"]}),
                params=[_path_param("account_id"), *_LIST_PARAMS],
            )
        },
        "/v1/accounts/{account_id}/balances": {
            "get": _operation(
                "Posted balance at an instant",
                {200: ("Balance", _ref("BalanceAt"))},
                _merge(auth, {400: ["invalid_request"], 404: ["account_not_found"]}),
                params=[
                    _path_param("account_id"),
                    {
                        "name": "at",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "format": "date-time"},
                    },
                ],
            )
        },
        "/v1/transfers": {
            "post": _operation(
                "Create a transfer",
                {201: transfer, 200: ("Same id, same request: the transfer as it is now", _ref("Transfer"))},
                _merge(
                    write,
                    {
                        404: ["account_not_found"],
                        409: ["id_conflict"],
                        422: ["same_account", "currency_mismatch", "exceeds_credits", "exceeds_debits", "overflow"],
                    },
                ),
                body="TransferCreate",
                idempotent_key=True,
            )
        },
        "/v1/transfers/batch": {
            "post": _operation(
                f"Create up to {ledger.MAX_BATCH_ITEMS} transfers, atomically or one by one",
                {
                    201: ("atomic: every transfer, in request order", _ref("BatchData")),
                    200: ("non-atomic: one result per item", _ref("BatchResults")),
                },
                _merge(write, {413: ["batch_too_large"], 422: ["batch_failed"]}),
                body="BatchCreate",
                idempotent_key=True,
            )
        },
        "/v1/transfers/{transfer_id}": {
            "get": _operation(
                "Get a transfer",
                {200: transfer},
                _merge(auth, {400: ["invalid_request"], 404: ["transfer_not_found"]}),
                params=[_path_param("transfer_id")],
            )
        },
        "/v1/transfers/{transfer_id}/post": {
            "post": _operation(
                "Post a pending transfer (all of it, or `amount`)",
                {200: transfer},
                _merge(
                    write,
                    {
                        404: ["transfer_not_found"],
                        422: [
                            "transfer_not_pending",
                            "pending_expired",
                            "amount_exceeds_pending",
                            "exceeds_credits",
                            "exceeds_debits",
                            "overflow",
                        ],
                    },
                ),
                body="PendingPost",
                body_required=False,
                params=[_path_param("transfer_id")],
                idempotent_key=True,
            )
        },
        "/v1/transfers/{transfer_id}/void": {
            "post": _operation(
                "Void a pending transfer",
                {200: transfer},
                _merge(write, {404: ["transfer_not_found"], 422: ["transfer_not_pending", "pending_expired"]}),
                params=[_path_param("transfer_id")],
                idempotent_key=True,
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ledger platform public API",
            "version": "1.0.0",
            "description": "Double-entry accounts and transfers. Amounts are integer minor units. "
            "Every error is application/problem+json with a stable `code`. Every "
            "authenticated response carries RateLimit-Limit, RateLimit-Remaining and "
            "RateLimit-Reset; 429 and 503 carry Retry-After.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {
                "NotFound": {
                    "description": "Any path not listed in this document answers 404 with `code` `not_found` "
                    "(internal endpoints of the services are never reachable here).",
                    "content": {
                        "application/problem+json": {
                            "schema": {"allOf": [_ref("Problem"), {"properties": {"code": {"enum": ["not_found"]}}}]}
                        }
                    },
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token from POST /v1/sessions."}
            },
        },
    }
