"""The OpenAPI 3.1 document: valid, complete, shaped for generated clients, with valid examples.

Complete: every routed public operation and every error code of the contract. Shaped: a stable
``operationId`` and a tag on every operation, every error answered through a shared response that
references the one ``Problem`` schema, every array bounded. Examples: every request, response and
parameter example validates against its schema, so the walkthrough they tell is a true one.
(tests/gateway/test_openapi_client.py proves a stock generator makes a working client from it.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate

from services.gateway.openapi import build_document
from services.gateway.openapi_operations_part2 import AWAITING_LEDGER
from services.gateway.routes import PROXIED
from services.ledger.routes import MAX_LIMIT
from shared.errors import ErrorCode
from shared.ledger_api import MAX_BATCH_ITEMS
from tests.support.api import Api

SPEC_CODES = {
    "invalid_request",
    "invalid_api_key",
    "unauthorized",
    "account_not_found",
    "transfer_not_found",
    "not_found",
    "id_conflict",
    "idempotency_key_in_use",
    "batch_too_large",
    "payload_too_large",
    "unsupported_media_type",
    "same_account",
    "currency_mismatch",
    "exceeds_credits",
    "exceeds_debits",
    "overflow",
    "transfer_not_pending",
    "pending_expired",
    "amount_exceeds_pending",
    # docs/api.md sections 8-12
    "transaction_not_found",
    "webhook_endpoint_not_found",
    "unbalanced",
    "amount_exceeds_reversible",
    "transfer_not_posted",
    "account_frozen",
    "account_closed",
    "account_not_empty",
    "version_mismatch",
    "batch_failed",
    "idempotency_key_reused",
    "rate_limited",
    "unavailable",
}

# Clients' code is written against these names: changing one breaks every generated client.
OPERATION_IDS = {
    ("/v1/sessions", "post"): "createSession",
    ("/v1/sessions/current", "delete"): "deleteCurrentSession",
    ("/v1/accounts", "post"): "createAccount",
    ("/v1/accounts", "get"): "listAccounts",
    ("/v1/accounts/{account_id}", "get"): "getAccount",
    ("/v1/accounts/{account_id}/transfers", "get"): "listAccountTransfers",
    ("/v1/accounts/{account_id}/balances", "get"): "getAccountBalances",
    ("/v1/transfers", "post"): "createTransfer",
    ("/v1/transfers/batch", "post"): "createTransferBatch",
    ("/v1/transfers/{transfer_id}", "get"): "getTransfer",
    ("/v1/transfers/{transfer_id}/post", "post"): "postPendingTransfer",
    ("/v1/transfers/{transfer_id}/void", "post"): "voidPendingTransfer",
    # docs/api.md sections 8-12
    ("/v1/transactions", "post"): "createTransaction",
    ("/v1/transactions", "get"): "listTransactions",
    ("/v1/transactions/{transaction_id}", "get"): "getTransaction",
    ("/v1/transactions/{transaction_id}/post", "post"): "postPendingTransaction",
    ("/v1/transactions/{transaction_id}/void", "post"): "voidPendingTransaction",
    ("/v1/transactions/{transaction_id}/reverse", "post"): "reverseTransaction",
    ("/v1/transfers", "get"): "listTransfers",
    ("/v1/transfers/{transfer_id}/reverse", "post"): "reverseTransfer",
    ("/v1/accounts/{account_id}", "patch"): "updateAccount",
    ("/v1/accounts/{account_id}/freeze", "post"): "freezeAccount",
    ("/v1/accounts/{account_id}/unfreeze", "post"): "unfreezeAccount",
    ("/v1/accounts/{account_id}/close", "post"): "closeAccount",
    ("/v1/accounts/{account_id}/entries", "get"): "listAccountEntries",
    ("/v1/accounts/{account_id}/statement", "get"): "getAccountStatement",
    ("/v1/events", "get"): "listEvents",
    ("/v1/webhook-endpoints", "post"): "createWebhookEndpoint",
    ("/v1/webhook-endpoints", "get"): "listWebhookEndpoints",
    ("/v1/webhook-endpoints/{endpoint_id}", "get"): "getWebhookEndpoint",
    ("/v1/webhook-endpoints/{endpoint_id}", "delete"): "deleteWebhookEndpoint",
    ("/v1/webhook-endpoints/{endpoint_id}/enable", "post"): "enableWebhookEndpoint",
    ("/v1/webhook-endpoints/{endpoint_id}/deliveries", "get"): "listWebhookDeliveries",
}


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every (sub)schema object under ``node``."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


async def test_served_document_is_valid_and_complete(api: Api) -> None:
    reply = await api.call("GET", "/schema/openapi.json")
    assert reply.status == 200
    served = reply.json
    assert served == build_document()
    assert served["openapi"].startswith("3.1")
    validate(served)

    routed = {(re.sub(r":str}", "}", path), method.lower()) for path, methods in PROXIED for method in methods}
    routed |= {("/v1/sessions", "post"), ("/v1/sessions/current", "delete")}
    awaiting = {key for key, operation_id in OPERATION_IDS.items() if operation_id in AWAITING_LEDGER}
    assert {(path, method) for path, method, _ in _operations(served)} == routed - awaiting
    # The whole document, with the operations routed ahead of the ledger, is valid and complete too.
    document = build_document(awaiting=True)
    validate(document)
    documented = {(path, method) for path, method, _ in _operations(document)}
    assert documented == routed

    schemas = document["components"]["schemas"]
    assert set(schemas["ErrorCode"]["enum"]) == SPEC_CODES
    answered = {"not_found"}  # unknown paths and methods, which no operation lists
    for _, _, operation in _operations(document):
        for status, codes in operation["x-problem-codes"].items():
            assert {ErrorCode(code).status for code in codes} == {int(status)}, (operation["operationId"], status)
            assert operation["responses"][status]["$ref"].startswith("#/components/responses/")
            answered |= set(codes)
    assert answered == SPEC_CODES


def test_operations_are_named_tagged_and_share_one_problem() -> None:
    document = build_document(awaiting=True)
    tags = {tag["name"] for tag in document["tags"]}
    assert {"Sessions", "Accounts", "Transfers"} <= tags
    ids = {(path, method): operation["operationId"] for path, method, operation in _operations(document)}
    assert ids.items() >= OPERATION_IDS.items()
    assert len(set(ids.values())) == len(ids)
    for _, _, operation in _operations(document):
        assert re.fullmatch(r"[a-z][A-Za-z]+", operation["operationId"])
        assert len(operation["tags"]) == 1 and operation["tags"][0] in tags
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                # Shared, referenced: a generator makes one Problem, not one model per operation and status.
                assert set(response) == {"$ref", "description"}, (operation["operationId"], status)
            for media in response.get("content", {}).values():
                assert set(media["schema"]) == {"$ref"}
        for media in operation.get("requestBody", {}).get("content", {}).values():
            assert set(media["schema"]) == {"$ref"}
    for response in document["components"]["responses"].values():
        assert response["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
        assert "X-Request-Id" in response["headers"]
    problem = document["components"]["schemas"]["Problem"]
    assert problem["properties"]["code"] == {"$ref": "#/components/schemas/ErrorCode"}
    # The enum is documented once: no other schema repeats its values.
    enums = [schema["enum"] for schema in _schemas(document["components"]["schemas"]) if "enum" in schema]
    assert sum(1 for enum in enums if "invalid_request" in enum) == 1


def test_limits_are_stated() -> None:
    document = build_document(awaiting=True)
    schemas = document["components"]["schemas"]
    assert schemas["BatchCreate"]["properties"]["transfers"]["maxItems"] == MAX_BATCH_ITEMS
    assert schemas["TransferCreate"]["properties"]["amount"]["maximum"] == 2**63 - 1
    assert schemas["AccountCreate"].get("additionalProperties") is False
    assert schemas["Metadata"]["maxProperties"] == 16
    for schema in _schemas(schemas):
        if schema.get("type") == "array":
            assert "maxItems" in schema, schema
    parameters = document["components"]["parameters"]
    assert parameters["limit"]["schema"]["maximum"] == MAX_LIMIT
    assert parameters["Idempotency-Key"]["schema"]["maxLength"] == 255
    post = document["paths"]["/v1/transfers"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/TransferCreate")
    assert {"$ref": "#/components/parameters/Idempotency-Key"} in post["parameters"]
    entries = schemas["TransactionCreate"]["properties"]["entries"]
    assert (entries["minItems"], entries["maxItems"]) == (2, 100)
    assert schemas["TransactionCreate"].get("additionalProperties") is False
    assert schemas["AccountPatch"]["properties"]["overdraft_limit"]["maximum"] == 2**63 - 1
    assert schemas["ExpectedVersions"]["additionalProperties"]["maximum"] == 2**63 - 1
    assert parameters["wait"]["schema"]["maximum"] == 30
    for path, method in [
        ("/v1/transactions", "post"),
        ("/v1/transfers/{transfer_id}/reverse", "post"),
        ("/v1/transactions/{transaction_id}/reverse", "post"),
        ("/v1/accounts/{account_id}", "patch"),
    ]:
        assert {"$ref": "#/components/parameters/Idempotency-Key"} in document["paths"][path][method]["parameters"]
    delete = document["paths"]["/v1/webhook-endpoints/{endpoint_id}"]["delete"]
    assert {"$ref": "#/components/parameters/Idempotency-Key"} not in delete["parameters"]


def test_every_example_validates_against_its_schema() -> None:
    document = build_document(awaiting=True)
    components = document["components"]

    def check(where: str, schema: dict[str, Any], value: Any) -> None:
        # The schema is validated inside a root holding the components, so "#/components/..." resolves.
        validator = Draft202012Validator({**schema, "components": components}, format_checker=FormatChecker())
        errors = [error.message for error in validator.iter_errors(value)]
        assert not errors, (where, errors)

    checked = 0
    medias: list[tuple[str, dict[str, Any]]] = []
    for path, method, operation in _operations(document):
        for name, media in operation.get("requestBody", {}).get("content", {}).items():
            medias.append((f"{method} {path} body {name}", media))
        for status, response in operation["responses"].items():
            for name, media in _resolve(document, response).get("content", {}).items():
                medias.append((f"{method} {path} {status} {name}", media))
    for where, media in medias:
        for key, named in media.get("examples", {}).items():
            check(f"{where} {key}", media["schema"], named["value"])
            checked += 1
    for name, parameter in components["parameters"].items():
        if "example" in parameter:
            check(f"parameter {name}", parameter["schema"], parameter["example"])
            checked += 1
    assert checked >= 70
    # The walkthrough's refusal is there, as the services answer it.
    refusal = components["responses"]["UnprocessableContent"]["content"]["application/problem+json"]["examples"]
    assert refusal["problem"]["value"]["code"] == "exceeds_credits"
