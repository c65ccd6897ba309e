"""The OpenAPI 3.1 document: valid, and describing every public endpoint, body and error code."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from services.gateway.routes import PROXIED
from services.ledger.schemas import MAX_BATCH_ITEMS
from tests.support.api import Api

SPEC_CODES = {
    "invalid_request", "invalid_api_key", "unauthorized", "account_not_found", "transfer_not_found", "not_found",
    "id_conflict", "idempotency_key_in_use", "batch_too_large", "payload_too_large", "unsupported_media_type",
    "same_account", "currency_mismatch", "exceeds_credits", "exceeds_debits", "overflow", "transfer_not_pending",
    "pending_expired", "amount_exceeds_pending", "batch_failed", "idempotency_key_reused", "rate_limited",
    "unavailable",
}


async def test_document_is_valid_and_complete(api: Api) -> None:
    reply = await api.call("GET", "/schema/openapi.json")
    assert reply.status == 200
    document = reply.json
    assert document["openapi"].startswith("3.1")
    validate(document)

    routed = {(re.sub(r":str}", "}", path), method.lower()) for path, methods in PROXIED for method in methods}
    routed |= {("/v1/sessions", "post"), ("/v1/sessions/current", "delete")}
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == routed

    mentioned: set[str] = set()
    for item in document["paths"].values():
        for operation in item.values():
            for response in operation["responses"].values():
                for media in response.get("content", {}).values():
                    for part in media["schema"].get("allOf", []):
                        mentioned |= set(part.get("properties", {}).get("code", {}).get("enum", []))
    for response in document["components"]["responses"].values():
        for media in response["content"].values():
            for part in media["schema"]["allOf"]:
                mentioned |= set(part.get("properties", {}).get("code", {}).get("enum", []))
    assert mentioned == SPEC_CODES

    schemas = document["components"]["schemas"]
    assert schemas["BatchCreate"]["properties"]["transfers"]["maxItems"] == MAX_BATCH_ITEMS
    assert schemas["TransferCreate"]["properties"]["amount"]["maximum"] == 2**63 - 1
    assert schemas["AccountCreate"].get("additionalProperties") is False
    post = document["paths"]["/v1/transfers"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/TransferCreate")
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
