"""The ``components.schemas`` of the public OpenAPI document: the bodies, curated for clients.

The msgspec Structs that validate the bodies (``services.ledger.schemas``, ``shared.session_api``,
``shared.errors``) stay the single source of truth for fields, types and request constraints; this
module only refines what msgspec cannot say, so that a stock generator (openapi-python-client)
emits one small, typed model set:

- every repeated shape is one named component referenced with ``$ref`` (``Metadata``,
  ``NormalBalance``, ``TransferStatus``, ``Currency``, ``ErrorCode``), never an inline copy that a
  generator would turn into one model per use;
- ``ErrorCode`` is the one enum of problem codes, documented once with its status and meaning, and
  every ``code`` (the problem's, a batch item's, a field error's) refers to it;
- limits are stated: ``maxItems`` on every array, int64 ranges on amounts and counters,
  ``date-time`` on timestamps;
- descriptions are written for the public (the Structs' docstrings mention internal endpoints).

This is the only module of the document that imports the ledger's (a pure data module: Structs and
constants, ADR 0025); the others take the batch limit from here.

Invariant: nothing here loosens a request constraint msgspec produced, so the document never
promises to accept a body the services refuse.
"""

from __future__ import annotations

from typing import Any

import msgspec

from services.ledger import schemas as ledger
from shared.errors import ErrorCode, ErrorItem, Problem
from shared.session_api import LoginRequest, SessionCreated

REF = "#/components/schemas/{name}"

MAX_BATCH_ITEMS = ledger.MAX_BATCH_ITEMS
"""Most transfers in one batch: ``maxItems`` here, 413 ``batch_too_large`` above it."""

PAGE_LIMIT_MAX = 1000
"""Largest ``limit`` of a list endpoint (public-api.md section 2; the ledger's ``MAX_LIMIT``)."""

PAGE_LIMIT_DEFAULT = 100

PUBLIC_CODES = [code for code in ErrorCode if code.status < 500 or code is ErrorCode.UNAVAILABLE]
"""The codes a client can see: a 500 ``internal_error`` is a bug, never part of the contract."""

_INT64 = {"type": "integer", "format": "int64"}
_COUNTER = {**_INT64, "minimum": 0, "maximum": ledger.MAX_AMOUNT}
_TIMESTAMP = {"type": "string", "format": "date-time", "description": "RFC 3339 UTC, microseconds, `Z`."}

_DESCRIPTIONS = {
    "LoginRequest": "Body of `POST /v1/sessions`.",
    "SessionCreated": "A session: a bearer token for every other `/v1` call, valid until `expires_at`.",
    "Problem": "Every error, as `application/problem+json` (RFC 9457). Clients branch on `code`, never on "
    "`detail`; `errors` lists the offending fields or batch items where that helps.",
    "ErrorItem": "One failing field (`field`) or batch item (`index`, from 0), with its own `code`.",
    "AccountCreate": "Body of `POST /v1/accounts`. With `id`, repeating the call is harmless: the same body "
    "answers 200 with the account, another body 409 `id_conflict`.",
    "AccountFlags": "Limits the ledger enforces atomically with every transfer touching the account.",
    "Account": "An account with its counters and derived balances (integer minor units).",
    "Balances": "Derived from the counters. For a credit-normal account: `posted = credits_posted - "
    "debits_posted`, `pending = (credits_posted + credits_pending) - (debits_posted + debits_pending)`, "
    "`available = credits_posted - debits_posted - debits_pending`; a debit-normal account mirrors this.",
    "TransferCreate": "Body of `POST /v1/transfers` and one item of a batch. `id` is yours and makes the call "
    "idempotent: the same request again answers 200 with the transfer as it is now, another request with the "
    "same `id` 409 `id_conflict`. `timeout_seconds` is only allowed with `pending: true`.",
    "Transfer": "A transfer. `posted_amount` is `amount` once posted in one phase, the posted part of a posted "
    "two-phase transfer, and 0 otherwise; `expires_at` is null unless pending with a timeout.",
    "BatchCreate": f"Body of `POST /v1/transfers/batch`: 1 to {MAX_BATCH_ITEMS} transfers, evaluated in "
    "order as if sent one by one. `atomic: true` applies all or none.",
    "BatchData": "An atomic batch applied: every transfer, in request order.",
    "BatchResults": "A non-atomic batch: one result per item, in request order.",
    "BatchItemResult": "One item of a non-atomic batch: `status` is the HTTP status it alone would have had, "
    "with `transfer` on success or `error` otherwise.",
    "ItemError": "Why one item of a non-atomic batch failed.",
    "PendingPost": "Optional body of `POST /v1/transfers/{transfer_id}/post`; `amount` defaults to the whole "
    "pending amount.",
    "PostedBalance": "The posted balance at the instant asked for.",
    "BalanceAt": "The posted counters and balance of an account as of `at` (inclusive); zeros before the "
    "account existed.",
    "AccountPage": "One page of accounts, oldest first. Pass `next_cursor` as `cursor` for the next page; "
    "null when this is the last.",
    "TransferPage": "One page of transfers, in the order the ledger applied them. Pass `next_cursor` as "
    "`cursor` for the next page; null when this is the last.",
}

_TIMESTAMPS = {
    "SessionCreated": ["expires_at"],
    "Account": ["created_at"],
    "Transfer": ["created_at", "updated_at"],
    "BalanceAt": ["at"],
}

_COUNTERS = {
    "Account": ["debits_posted", "credits_posted", "debits_pending", "credits_pending"],
    "Transfer": ["posted_amount"],
    "BalanceAt": ["debits_posted", "credits_posted"],
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def _page(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {"type": "array", "items": ref(item), "maxItems": PAGE_LIMIT_MAX},
            "next_cursor": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "Opaque."},
        },
    }


def _error_code() -> dict[str, Any]:
    rows = "\n".join(f"| `{code.value}` | {code.status} | {code.summary} |" for code in PUBLIC_CODES)
    return {
        "type": "string",
        "enum": [code.value for code in PUBLIC_CODES],
        "description": "The stable error code; clients branch on it, never on `detail`.\n\n"
        "| code | status | meaning |\n| --- | --- | --- |\n" + rows,
    }


def _metadata(request_metadata: dict[str, Any]) -> dict[str, Any]:
    shared = {key: value for key, value in request_metadata.items() if key != "default"}
    shared["description"] = "Your own string labels: at most 16 keys of 1-64 characters, values of at most 512."
    return shared


def _share(schemas: dict[str, Any], schema: str, field: str, component: str) -> None:
    """Point ``schema.field`` at a shared component (nullable stays nullable, a default stays)."""
    prop = schemas[schema]["properties"][field]
    default = {"default": prop["default"]} if "default" in prop else {}
    if "anyOf" in prop:
        schemas[schema]["properties"][field] = {"anyOf": [ref(component), {"type": "null"}], **default}
    else:
        schemas[schema]["properties"][field] = {**ref(component), **default}


def component_schemas() -> dict[str, Any]:
    structs = [
        LoginRequest,
        SessionCreated,
        Problem,
        ErrorItem,
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
    _, schemas = msgspec.json.schema_components(structs, ref_template=REF)
    schemas["Metadata"] = _metadata(schemas["AccountCreate"]["properties"]["metadata"])
    schemas["Currency"] = {
        "type": "string",
        # msgspec's pattern, so the document refuses exactly what the services refuse.
        "pattern": schemas["AccountCreate"]["properties"]["currency"]["pattern"],
        "description": "ISO 4217 code or a custom asset code.",
        "examples": ["USD"],
    }
    schemas["NormalBalance"] = {
        "type": "string",
        "enum": ["credit", "debit"],
        "description": "The side that increases the balance: `credit` (the default; e.g. a customer wallet) "
        "or `debit` (e.g. a funding or bank account).",
    }
    schemas["TransferStatus"] = {
        "type": "string",
        "enum": ["posted", "pending", "voided", "expired"],
        "description": "`pending` reserves the amount until posted, voided or expired (past `expires_at`).",
    }
    schemas["ErrorCode"] = _error_code()
    schemas["AccountPage"] = _page("Account")
    schemas["TransferPage"] = _page("Transfer")

    for name in ["AccountCreate", "Account", "TransferCreate", "Transfer"]:
        _share(schemas, name, "metadata", "Metadata")
        _share(schemas, name, "currency", "Currency")
    for name in ["AccountCreate", "Account"]:
        _share(schemas, name, "normal_balance", "NormalBalance")
    _share(schemas, "Transfer", "status", "TransferStatus")
    for name in ["Problem", "ErrorItem", "ItemError"]:
        _share(schemas, name, "code", "ErrorCode")

    for name, fields in _TIMESTAMPS.items():
        for field in fields:
            schemas[name]["properties"][field] = dict(_TIMESTAMP)
    schemas["Transfer"]["properties"]["expires_at"] = {"anyOf": [dict(_TIMESTAMP), {"type": "null"}]}
    for name, fields in _COUNTERS.items():
        for field in fields:
            schemas[name]["properties"][field] = dict(_COUNTER)
    schemas["Transfer"]["properties"]["amount"] = {**_COUNTER, "minimum": 1}
    for field in ["posted", "pending", "available"]:
        schemas["Balances"]["properties"][field] = dict(_INT64)
    schemas["PostedBalance"]["properties"]["posted"] = dict(_INT64)
    for amount in [schemas["TransferCreate"]["properties"]["amount"], schemas["PendingPost"]["properties"]["amount"]]:
        for option in amount.get("anyOf", [amount]):
            if option.get("type") == "integer":
                option["format"] = "int64"

    # Fields the services omit rather than send as null: documented as plain optional fields.
    schemas["ErrorItem"]["properties"]["index"] = {"type": "integer", "minimum": 0, "description": "Batch item."}
    schemas["ErrorItem"]["properties"]["field"] = {"type": "string", "description": "Offending field."}
    result = schemas["BatchItemResult"]["properties"]
    result["transfer"], result["error"] = ref("Transfer"), ref("ItemError")
    result["index"] = {"type": "integer", "minimum": 0}
    result["status"] = {"type": "integer", "minimum": 200, "maximum": 599}

    batch = MAX_BATCH_ITEMS
    schemas["BatchCreate"]["properties"]["transfers"].update(minItems=1, maxItems=batch)
    schemas["BatchData"]["properties"]["data"]["maxItems"] = batch
    schemas["BatchResults"]["properties"]["results"]["maxItems"] = batch
    schemas["Problem"]["properties"]["errors"]["maxItems"] = batch
    schemas["Problem"]["properties"]["status"] = {"type": "integer", "minimum": 400, "maximum": 599}

    for name, description in _DESCRIPTIONS.items():
        schemas[name]["description"] = description
    return dict(sorted(schemas.items()))
