"""The OpenAPI 3.1 document served at ``/schema/openapi.json``, built once at startup.

The document is a first-class artifact: teams generate their clients from it, so

- every operation (listed as data in :mod:`.openapi_operations`) has a stable ``operationId``
  (client code is written against these names: never rename one) and one tag (``Sessions``,
  ``Accounts``, ``Transfers``), which name and group the generated functions;
- every error is the one ``Problem`` schema, answered through shared ``components.responses``
  (one per status) referenced with ``$ref``. Each operation lists only the statuses it can answer;
  its reference's ``description`` and the operation's ``x-problem-codes`` name the ``code`` values
  it can carry there (docs/api.md section 6), while the code enum itself is documented once
  (``ErrorCode``, see :mod:`services.gateway.openapi_schemas`);
- parameters, headers and examples (from the README walkthrough, :mod:`.openapi_examples`) are
  shared components too, and every limit is stated (``maxItems``, ``limit``, key lengths).

Invariant: exactly the routed public operations are documented (tests/gateway/test_openapi.py
compares them with ``routes.PROXIED``), and a stock generator (openapi-python-client) turns the
document into a typed client without a warning.
"""

from __future__ import annotations

from typing import Any

from services.gateway import openapi_examples as examples
from services.gateway import openapi_examples_part2 as examples2
from services.gateway.openapi_feed_schemas import EVENTS_MAX_WAIT_SECONDS, feed_schemas
from services.gateway.openapi_operations import ERROR_RESPONSES, OPERATIONS, TAGS, Operation
from services.gateway.openapi_operations_part2 import AWAITING_LEDGER, OPERATIONS_PART2, TAGS_PART2
from services.gateway.openapi_schemas import PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, PUBLIC_CODES, component_schemas, ref
from shared.web import MAX_BODY_BYTES


def _parameters() -> dict[str, Any]:
    def path(name: str, what: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": f"The {what}'s id.",
            "schema": {"type": "string", "format": "uuid"},
        }

    def query(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"name": name, "in": "query", "description": description, "schema": schema, **extra}

    timestamp = {"type": "string", "format": "date-time"}
    parameters = {
        "account_id": path("account_id", "account"),
        "transfer_id": path("transfer_id", "transfer"),
        "transaction_id": path("transaction_id", "transaction"),
        "endpoint_id": path("endpoint_id", "webhook endpoint"),
        "account_id_filter": query(
            "account_id", "Only those touching this account.", {"type": "string", "format": "uuid"}
        ),
        "transfer_status": query("status", "Only those with this status.", ref("TransferStatus")),
        "account_status": query("status", "Only accounts with this status.", ref("AccountStatus")),
        "created_from": query("created_from", "Only those created at or after this instant.", dict(timestamp)),
        "created_to": query("created_to", "Only those created before this instant.", dict(timestamp)),
        "metadata": query(
            "metadata",
            "Only those whose metadata has every given key with the given value: `metadata[KEY]=VALUE`.",
            ref("Metadata"),
            style="deepObject",
            explode=True,
        ),
        "order": query(
            "order",
            "`asc` (the default: the order the ledger applied them) or `desc`.",
            {**ref("ListOrder"), "default": "asc"},
        ),
        "entries_from": query("from", "Only entries at or after this instant.", dict(timestamp)),
        "entries_to": query("to", "Only entries before this instant.", dict(timestamp)),
        "statement_from": query(
            "from", "Start of the period (inclusive); without it, the account's start.", dict(timestamp)
        ),
        "statement_to": query("to", "End of the period (exclusive); without it, now.", dict(timestamp)),
        "after": query(
            "after",
            "Only events with a greater `seq` (0, the default: from the first).",
            {"type": "integer", "format": "int64", "minimum": 0, "default": 0},
        ),
        "wait": query(
            "wait",
            f"Seconds to wait for an event when there is none yet (0 to {EVENTS_MAX_WAIT_SECONDS}).",
            {"type": "integer", "minimum": 0, "maximum": EVENTS_MAX_WAIT_SECONDS, "default": 0},
        ),
        "currency": {
            "name": "currency",
            "in": "query",
            "description": "Only accounts in this currency.",
            "schema": ref("Currency"),
        },
        "limit": {
            "name": "limit",
            "in": "query",
            "description": "Page size.",
            "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_LIMIT_MAX, "default": PAGE_LIMIT_DEFAULT},
        },
        "cursor": {
            "name": "cursor",
            "in": "query",
            "description": "`next_cursor` of the previous page.",
            "schema": {"type": "string"},
        },
        "at": {
            "name": "at",
            "in": "query",
            "required": True,
            "description": "The instant (inclusive), RFC 3339 with a time zone; a posting counts from when it "
            "took effect (a two-phase transfer's `updated_at`).",
            "schema": {"type": "string", "format": "date-time"},
        },
        "Idempotency-Key": {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "1-255 printable ASCII characters. The first response is kept 24 h per tenant and "
            "replayed, with `Idempotent-Replayed: true`, to a repeat of the same request; the same key with "
            "another request answers 422 `idempotency_key_reused`.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
        },
    }
    for name, value in {**examples.PARAMETERS, **examples2.PARAMETERS}.items():
        parameters[name]["example"] = value
    for parameter in parameters.values():
        # Generators document an argument from its schema's description, not the parameter's.
        if "$ref" not in parameter["schema"]:
            parameter["schema"]["description"] = parameter["description"]
    return parameters


def _header(description: str, schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


# Each header is referenced only where the contract promises it, so ``required`` is stated here.
_HEADERS = {
    "X-Request-Id": _header(
        "Echoed from the request, else generated; quote it when reporting a problem.", {"type": "string"}
    ),
    "RateLimit-Limit": _header("The tenant's burst size.", {"type": "integer", "minimum": 0}),
    "RateLimit-Remaining": _header("Requests left in the burst.", {"type": "integer", "minimum": 0}),
    "RateLimit-Reset": _header("Seconds until the burst is full again.", {"type": "integer", "minimum": 0}),
    "Retry-After": _header("Seconds to wait before retrying.", {"type": "integer", "minimum": 0}),
    "WWW-Authenticate": _header("The challenge of every 401: the `Bearer` scheme.", {"type": "string"}),
    "Cache-Control": _header("`no-store`: the body holds a credential.", {"type": "string", "const": "no-store"}),
    "Idempotent-Replayed": _header(
        "`true` on a response replayed for a repeated Idempotency-Key.",
        {"type": "string", "enum": ["true"]},
        required=False,
    ),
}


def _error_response(status: int) -> dict[str, Any]:
    codes = [code.value for code in PUBLIC_CODES if code.status == status]
    _, description = ERROR_RESPONSES[status]
    headers = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
    if status in (429, 503):
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    if status == 401:
        headers["WWW-Authenticate"] = {"$ref": "#/components/headers/WWW-Authenticate"}
    return {
        "description": f"{description} `code`: " + ", ".join(f"`{code}`" for code in codes) + ".",
        "headers": headers,
        "content": {
            "application/problem+json": {"schema": ref("Problem"), "examples": {"problem": examples.PROBLEMS[status]}}
        },
    }


def _merged(*sources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Named examples per schema, from the walkthrough's first part and then its second."""
    merged: dict[str, dict[str, Any]] = {}
    for source in sources:
        for schema, named in source.items():
            merged[schema] = {**merged.get(schema, {}), **named}
    return merged


_REQUESTS = _merged(examples.REQUESTS, examples2.REQUESTS)
_RESPONSES = _merged(examples.RESPONSES, examples2.RESPONSES)


def _media(schema: str, named: dict[str, dict[str, Any]]) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": ref(schema)}
    if schema in named:
        media["examples"] = named[schema]
    return media


def _operation(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (description, schema) in sorted(op.ok.items()):
        # Every success is counted against a limit (the tenant's, or the login limits) and says so.
        names = ["X-Request-Id", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", *op.success_headers]
        headers = {name: {"$ref": f"#/components/headers/{name}"} for name in names}
        if op.idempotent:
            headers["Idempotent-Replayed"] = {"$ref": "#/components/headers/Idempotent-Replayed"}
        entry: dict[str, Any] = {"description": description, "headers": headers}
        if schema is not None:
            entry["content"] = {"application/json": _media(schema, _RESPONSES)}
        responses[str(status)] = entry
    for status, codes in sorted(op.errors.items()):
        name, _ = ERROR_RESPONSES[status]
        responses[str(status)] = {
            "$ref": f"#/components/responses/{name}",
            "description": "`code`: " + ", ".join(f"`{code.value}`" for code in codes) + ".",
        }
    operation: dict[str, Any] = {"operationId": op.operation_id, "tags": [op.tag], "summary": op.summary}
    if op.description:
        operation["description"] = op.description
    params = [*op.params, *(["Idempotency-Key"] if op.idempotent else [])]
    if params:
        operation["parameters"] = [{"$ref": f"#/components/parameters/{name}"} for name in params]
    if op.body is not None:
        operation["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": _media(op.body, _REQUESTS)},
        }
    operation["responses"] = responses
    operation["x-problem-codes"] = {
        str(status): [code.value for code in codes] for status, codes in sorted(op.errors.items())
    }
    if not op.authenticated:
        operation["security"] = []
    return operation


_DESCRIPTION = f"""Double-entry accounts, transfers and multi-leg transactions for fintech teams.

- JSON bodies (`Content-Type: application/json`, at most {MAX_BODY_BYTES} bytes); unknown fields are refused.
- Amounts are integers in minor units (10000 = $100.00), 1 to 2^63-1; no float ever holds money.
- Ids are UUIDs, per tenant; another tenant's ids answer exactly as ids that do not exist (404).
- Timestamps are RFC 3339 UTC with microseconds and `Z`.
- Lists take `limit` (1-{PAGE_LIMIT_MAX}, default {PAGE_LIMIT_DEFAULT}) and an opaque `cursor`.
- Every error is `application/problem+json` (`Problem`) with a stable `code` (`ErrorCode`); clients branch
  on `code`, never on `detail`. Any path or method not listed here answers 404 `not_found`.
- Log in with `createSession` and send `Authorization: Bearer <token>` on every other call. Any
  authenticated POST or PATCH may carry `Idempotency-Key`.
- Every response carries `X-Request-Id`; every authenticated one, and every login, `RateLimit-Limit`,
  `RateLimit-Remaining` and `RateLimit-Reset`; 429 and 503 carry `Retry-After`, 401 `WWW-Authenticate`.
"""


def build_document(*, awaiting: bool = False) -> dict[str, Any]:
    """The served document; ``awaiting=True`` adds the operations routed but not yet served by the
    ledger (``openapi_operations_part2.AWAITING_LEDGER``), for the tests that check them ahead."""
    paths: dict[str, Any] = {}
    tags: set[str] = set()
    for op in [*OPERATIONS, *OPERATIONS_PART2]:
        if awaiting or op.operation_id not in AWAITING_LEDGER:
            paths.setdefault(op.path, {})[op.method] = _operation(op)
            tags.add(op.tag)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Ledger platform public API", "version": "1.0.0", "description": _DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [tag for tag in [*TAGS, *TAGS_PART2] if tag["name"] in tags],
        "paths": paths,
        "components": {
            "schemas": dict(sorted({**component_schemas(), **feed_schemas()}.items())),
            "responses": {name: _error_response(status) for status, (name, _) in ERROR_RESPONSES.items()},
            "parameters": _parameters(),
            "headers": _HEADERS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token from `createSession`."}
            },
        },
    }
