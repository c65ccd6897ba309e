"""The OpenAPI 3.1 document served at ``/schema/openapi.json``, built once at startup.

The document is a first-class artifact: teams generate their clients from it, so

- every operation (listed as data in :mod:`.openapi_operations`) has a stable ``operationId``
  (client code is written against these names: never rename one) and one tag (``Sessions``,
  ``Accounts``, ``Transfers``), which name and group the generated functions;
- every error is the one ``Problem`` schema, answered through shared ``components.responses``
  (one per status) referenced with ``$ref``. Each operation lists only the statuses it can answer;
  its reference's ``description`` and the operation's ``x-problem-codes`` name the ``code`` values
  it can carry there (public-api.md section 6), while the code enum itself is documented once
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
from services.gateway.openapi_operations import ERROR_RESPONSES, OPERATIONS, TAGS, Operation
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

    parameters = {
        "account_id": path("account_id", "account"),
        "transfer_id": path("transfer_id", "transfer"),
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
    for name, value in examples.PARAMETERS.items():
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
            entry["content"] = {"application/json": _media(schema, examples.RESPONSES)}
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
            "content": {"application/json": _media(op.body, examples.REQUESTS)},
        }
    operation["responses"] = responses
    operation["x-problem-codes"] = {
        str(status): [code.value for code in codes] for status, codes in sorted(op.errors.items())
    }
    if not op.authenticated:
        operation["security"] = []
    return operation


_DESCRIPTION = f"""Double-entry accounts and transfers for fintech teams.

- JSON bodies (`Content-Type: application/json`, at most {MAX_BODY_BYTES} bytes); unknown fields are refused.
- Amounts are integers in minor units (10000 = $100.00), 1 to 2^63-1; no float ever holds money.
- Ids are UUIDs, per tenant; another tenant's ids answer exactly as ids that do not exist (404).
- Timestamps are RFC 3339 UTC with microseconds and `Z`.
- Lists take `limit` (1-{PAGE_LIMIT_MAX}, default {PAGE_LIMIT_DEFAULT}) and an opaque `cursor`.
- Every error is `application/problem+json` (`Problem`) with a stable `code` (`ErrorCode`); clients branch
  on `code`, never on `detail`. Any path or method not listed here answers 404 `not_found`.
- Log in with `createSession` and send `Authorization: Bearer <token>` on every other call. Any
  authenticated POST may carry `Idempotency-Key`.
- Every response carries `X-Request-Id`; every authenticated one, and every login, `RateLimit-Limit`,
  `RateLimit-Remaining` and `RateLimit-Reset`; 429 and 503 carry `Retry-After`, 401 `WWW-Authenticate`.
"""


def build_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Ledger platform public API", "version": "1.0.0", "description": _DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": component_schemas(),
            "responses": {name: _error_response(status) for status, (name, _) in ERROR_RESPONSES.items()},
            "parameters": _parameters(),
            "headers": _HEADERS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token from `createSession`."}
            },
        },
    }
