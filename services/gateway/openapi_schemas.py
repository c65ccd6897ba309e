"""The ``components.schemas`` of the public OpenAPI document: the bodies, curated for clients.

The msgspec Structs that validate the bodies (``shared.ledger_api``, ``shared.session_api``,
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

The ledger's bodies are imported from ``shared/`` (``shared.ledger_api``), never from the ledger
service: services import no other service (ADR 0004, checked by import-linter in ./scripts/test).

Invariant: nothing here loosens a request constraint msgspec produced, so the document never
promises to accept a body the services refuse.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shared import ledger_api as ledger
from shared.errors import ErrorCode, ErrorItem, Problem
from shared.session_api import LoginRequest, SessionCreated

REF = "#/components/schemas/{name}"

MAX_BATCH_ITEMS = ledger.MAX_BATCH_ITEMS
"""Most transfers in one batch: ``maxItems`` here, 413 ``batch_too_large`` above it."""

PAGE_LIMIT_MAX = 1000
"""Largest ``limit`` of a list endpoint (docs/api.md section 2; the ledger's ``MAX_LIMIT``)."""

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
    "answers 200 with the account, another body 409 `id_conflict`. `overdraft_limit` (default 0) lets the "
    "side a flag limits go that far past the other.",
    "AccountFlags": "Limits the ledger enforces atomically with every transfer touching the account.",
    "Account": "An account with its counters and derived balances (integer minor units), its lifecycle "
    "`status`, its `overdraft_limit` and its `version` (0 at creation, +1 with every change to its counters, "
    "status, limit or metadata).",
    "Balances": "Derived from the counters. For a credit-normal account: `posted = credits_posted - "
    "debits_posted`, `pending = (credits_posted + credits_pending) - (debits_posted + debits_pending)`, "
    "`available = credits_posted - debits_posted - debits_pending`; a debit-normal account mirrors this.",
    "TransferCreate": "Body of `POST /v1/transfers` and one item of a batch. `id` is yours and makes the call "
    "idempotent: the same request again answers 200 with the transfer as it is now, another request with the "
    "same `id` 409 `id_conflict`. `timeout_seconds` is only allowed with `pending: true`.",
    "Transfer": "A transfer. `posted_amount` is `amount` once posted in one phase, the posted part of a posted "
    "two-phase transfer, and 0 otherwise; `expires_at` is null unless pending with a timeout. A reversal has "
    "`reverses` set to the transfer it reverses; `reversed_amount` is how much of `posted_amount` reversals "
    "have taken back so far.",
    "BatchCreate": f"Body of `POST /v1/transfers/batch`: 1 to {MAX_BATCH_ITEMS} transfers, evaluated in "
    "order as if sent one by one. `atomic: true` applies all or none.",
    "BatchData": "An atomic batch applied: every transfer, in request order.",
    "BatchResults": "A non-atomic batch: one result per item, in request order.",
    "BatchItemResult": "One item of a non-atomic batch: `status` is the HTTP status it alone would have had, "
    "with `transfer` on success or `error` otherwise.",
    "ItemError": "Why one item of a non-atomic batch failed.",
    "PendingPost": "Optional body of `POST /v1/transfers/{transfer_id}/post`; `amount` defaults to the whole "
    "pending amount.",
    "BalanceAt": "The four counters and the three balances of an account as of `at` (inclusive; a reservation "
    "counts from when it was made until it was posted, voided or expired); zeros before the account existed.",
    "AccountPage": "One page of accounts, oldest first. Pass `next_cursor` as `cursor` for the next page; "
    "null when this is the last.",
    "TransferPage": "One page of transfers, in the order the ledger applied them. Pass `next_cursor` as "
    "`cursor` for the next page; null when this is the last.",
    "TransactionCreate": f"Body of `POST /v1/transactions`: {ledger.MIN_ENTRIES} to {ledger.MAX_ENTRIES} "
    "entries; for each currency the debits sum to the credits (else 422 `unbalanced`). All or nothing. `id` "
    "is yours and makes the call idempotent (transaction ids are a namespace of their own).",
    "Entry": "One leg of a transaction: `amount` moved on `account_id`, on its `direction` side, in the "
    "account's own currency.",
    "Transaction": "A multi-leg transaction. `status` is as for transfers; `reversed_by` names the "
    "transaction that reversed it (at most one), `reverses` the one it reverses.",
    "TransactionPage": "One page of transactions, in the order the ledger applied them (or the reverse with "
    "`order=desc`). Pass `next_cursor` as `cursor` for the next page; null when this is the last.",
    "TransferReverse": "Body of `POST /v1/transfers/{transfer_id}/reverse`: `id` is the new (reversing) "
    "transfer's id; `amount` defaults to what is left to reverse.",
    "TransactionReverse": "Body of `POST /v1/transactions/{transaction_id}/reverse`: `id` is the new "
    "(reversing) transaction's id; a transaction is reversed whole.",
    "AccountPatch": "Body of `PATCH /v1/accounts/{account_id}`: replaces what is given (`metadata` whole); "
    "an empty object changes nothing. Lowering `overdraft_limit` below current use is allowed.",
}


_TIMESTAMPS = {
    "SessionCreated": ["expires_at"],
    "Account": ["created_at"],
    "Transfer": ["created_at", "updated_at"],
    "Transaction": ["created_at", "updated_at"],
    "BalanceAt": ["at"],
}

_COUNTERS = {
    "Account": ["debits_posted", "credits_posted", "debits_pending", "credits_pending", "overdraft_limit", "version"],
    "Transfer": ["posted_amount", "reversed_amount"],
    "BalanceAt": ["debits_posted", "credits_posted", "debits_pending", "credits_pending"],
}

_ALWAYS_SENT = {
    "Account": ["status", "overdraft_limit", "version"],
    "Transfer": ["reverses", "reversed_amount"],
    "Transaction": ["reverses"],
}
"""Response fields the Structs give a default (so msgspec calls them optional) but always encode."""


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


def _lifecycle_components(schemas: dict[str, Any]) -> None:
    """The shared shapes of docs/api.md sections 8-10, one component each (see module docstring)."""
    schemas["AccountStatus"] = {
        "type": "string",
        "enum": ["open", "frozen", "closed"],
        "description": "`frozen` takes no new transfer or transaction entry (pending ones may still be posted, "
        "voided or expire); `closed` is final and takes no movement at all.",
    }
    schemas["Direction"] = {"type": "string", "enum": ["debit", "credit"], "description": "The side an entry moves."}
    versions = dict(schemas["TransferCreate"]["properties"]["expected_versions"])
    versions.pop("default", None)
    # msgspec checks the keys are UUIDs but cannot say so in the schema: stated here, never looser.
    versions["propertyNames"] = {"type": "string", "format": "uuid"}
    versions["description"] = (
        "Optimistic concurrency: account id -> the `version` the account must have when this is applied, "
        "else 422 `version_mismatch` (its `detail` gives the current version). Only accounts this moves."
    )
    schemas["ExpectedVersions"] = versions


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
        ledger.TransactionCreate,
        ledger.Transaction,
        ledger.TransferReverse,
        ledger.TransactionReverse,
        ledger.AccountPatch,
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
    schemas["TransactionPage"] = _page("Transaction")
    _lifecycle_components(schemas)

    for name in ["AccountCreate", "Account", "TransferCreate", "Transfer", "Entry"]:
        _share(schemas, name, "currency", "Currency")
    for name in ["AccountCreate", "Account", "TransferCreate", "Transfer", "TransactionCreate", "Transaction"]:
        _share(schemas, name, "metadata", "Metadata")
    for name in ["TransferReverse", "TransactionReverse", "AccountPatch"]:
        _share(schemas, name, "metadata", "Metadata")
    for name in ["TransferCreate", "TransactionCreate", "TransferReverse", "AccountPatch"]:
        _share(schemas, name, "expected_versions", "ExpectedVersions")
    for name in ["AccountCreate", "Account"]:
        _share(schemas, name, "normal_balance", "NormalBalance")
    _share(schemas, "Transfer", "status", "TransferStatus")
    _share(schemas, "Transaction", "status", "TransferStatus")
    _share(schemas, "Account", "status", "AccountStatus")
    _share(schemas, "Entry", "direction", "Direction")
    for name in ["Problem", "ErrorItem", "ItemError"]:
        _share(schemas, name, "code", "ErrorCode")

    for name, fields in _TIMESTAMPS.items():
        for field in fields:
            schemas[name]["properties"][field] = dict(_TIMESTAMP)
    for name in ["Transfer", "Transaction"]:
        schemas[name]["properties"]["expires_at"] = {"anyOf": [dict(_TIMESTAMP), {"type": "null"}]}
    for name, fields in _ALWAYS_SENT.items():
        schemas[name]["required"] = [*schemas[name]["required"], *fields]
    for name, fields in _COUNTERS.items():
        for field in fields:
            schemas[name]["properties"][field] = dict(_COUNTER)
    schemas["Transfer"]["properties"]["amount"] = {**_COUNTER, "minimum": 1}
    schemas["Entry"]["properties"]["amount"] = {**_COUNTER, "minimum": 1}
    for field in ["posted", "pending", "available"]:
        schemas["Balances"]["properties"][field] = dict(_INT64)
    # docs/api.md section 11: all four counters and all three balances (ledger_query_api.BalancesAt).
    balance_at = schemas["BalanceAt"]
    balance_at["properties"]["balances"] = ref("Balances")
    balance_at["required"] = [*balance_at["required"], "debits_pending", "credits_pending"]
    del schemas["PostedBalance"]
    amounts = [schemas[name]["properties"]["amount"] for name in ["TransferCreate", "PendingPost", "TransferReverse"]]
    for amount in amounts:
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
    transaction = schemas["Transaction"]["properties"]
    transaction["entries"].update(minItems=ledger.MIN_ENTRIES, maxItems=ledger.MAX_ENTRIES)
    transaction["reversed_by"]["maxItems"] = 1  # reversed whole, once: a second reversal is 422
    schemas["Problem"]["properties"]["status"] = {"type": "integer", "minimum": 400, "maximum": 599}

    for name, description in _DESCRIPTIONS.items():
        schemas[name]["description"] = description
    return dict(sorted(schemas.items()))
