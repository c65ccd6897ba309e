"""The ``components.schemas`` of public-api-2.md sections 11 and 12: entries, statements, events, webhooks.

Unlike :mod:`.openapi_schemas`, these are written here as JSON Schema from the contract's text, not
derived from Structs: the ledger side of issue 12 defines its Structs separately. The same rules
apply (one named component per shape, every array bounded, int64 ranges, ``date-time`` timestamps),
and field names are the contract's wherever it names them. Where the contract does not name a
field (the webhook endpoint's state, a delivery attempt's fields), the names here are the
document's proposal; the services' answers are checked against them (tests/adversarial).
"""

from __future__ import annotations

from typing import Any

from services.gateway.openapi_schemas import PAGE_LIMIT_MAX, ref

EVENT_TYPES = [
    "account.created",
    "account.updated",
    "transfer.created",
    "transfer.posted",
    "transfer.voided",
    "transfer.expired",
    "transaction.created",
    "transaction.posted",
    "transaction.voided",
    "transaction.expired",
]
"""Every event type of public-api-2.md section 12."""

EVENT_TYPE_FILTER = r"^(\*|account\.(\*|created|updated)|(transfer|transaction)\.(\*|created|posted|voided|expired))$"
"""An ``event_types`` item: a type, ``<resource>.*`` or ``*``."""

MAX_EVENT_TYPE_FILTERS = 16
"""Most ``event_types`` items of one endpoint (every type and wildcard once)."""

MAX_URL_LENGTH = 2048

EVENTS_MAX_WAIT_SECONDS = 30
"""Longest ``wait`` of ``GET /v1/events`` (public-api-2.md section 12)."""

_HASH = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_TIMESTAMP = {"type": "string", "format": "date-time", "description": "RFC 3339 UTC, microseconds, `Z`."}
_INT64 = {"type": "integer", "format": "int64"}
_COUNT = {**_INT64, "minimum": 0, "maximum": 2**63 - 1}
_SEQ = {**_INT64, "minimum": 1, "maximum": 2**63 - 1}
_UUID = {"type": "string", "format": "uuid"}


def _object(description: str, properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


def _list(item: str, description: str, *, cursor: bool = True) -> dict[str, Any]:
    properties: dict[str, Any] = {"data": {"type": "array", "items": ref(item), "maxItems": PAGE_LIMIT_MAX}}
    if cursor:
        properties["next_cursor"] = {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "Opaque."}
    return _object(description, properties)


def _event_types() -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "string", "pattern": EVENT_TYPE_FILTER},
        "minItems": 1,
        "maxItems": MAX_EVENT_TYPE_FILTERS,
        "description": "The event types delivered: a type (`transfer.posted`), every type of a resource "
        "(`transfer.*`) or every type (`*`). An unknown type is 400.",
    }


def feed_schemas() -> dict[str, Any]:
    """The components of sections 11 and 12, by name."""
    endpoint = {
        "id": _UUID,
        "url": {"type": "string", "format": "uri", "maxLength": MAX_URL_LENGTH},
        "event_types": _event_types(),
        "status": ref("WebhookEndpointStatus"),
        "created_at": dict(_TIMESTAMP),
    }
    return {
        "ListOrder": {
            "type": "string",
            "enum": ["asc", "desc"],
            "description": "`asc`: the order the ledger applied them; `desc`: newest first.",
        },
        "WebhookEndpointStatus": {
            "type": "string",
            "enum": ["enabled", "failing"],
            "description": "`failing` once deliveries failed for 24 hours; `enableWebhookEndpoint` resumes them "
            "from where they stopped.",
        },
        "EntrySource": _object(
            "What made the change.",
            {"type": {"type": "string", "enum": ["transfer", "transaction"]}, "id": _UUID},
        ),
        "AccountEntry": _object(
            "One change to an account's counters, with the account's balances right after it (running balances).",
            {
                "seq": {**_SEQ, "description": "Increases strictly per account."},
                "at": dict(_TIMESTAMP),
                "source": ref("EntrySource"),
                "kind": {"type": "string", "enum": ["posted", "pending", "pending_posted", "pending_released"]},
                "direction": ref("Direction"),
                "amount": {**_COUNT, "minimum": 1},
                "balances": ref("Balances"),
            },
        ),
        "EntryPage": _list(
            "AccountEntry",
            "One page of an account's entries in applied order. Pass `next_cursor` as `cursor` for the next "
            "page; null when this is the last.",
        ),
        "Statement": _object(
            "An account's statement for the half-open interval [`from`, `to`): `opening` plus the period's "
            "totals is `closing`, always.",
            {
                "account_id": _UUID,
                "from": dict(_TIMESTAMP),
                "to": dict(_TIMESTAMP),
                "opening": ref("Balances"),
                "closing": ref("Balances"),
                "debits_posted": dict(_COUNT),
                "credits_posted": dict(_COUNT),
                "entries_count": dict(_COUNT),
            },
        ),
        "EventType": {"type": "string", "enum": EVENT_TYPES, "description": "What changed."},
        "Event": _object(
            "One committed change. `hash = SHA-256(prev_hash || canonical(event without hash))` in hex, where "
            "canonical is JSON with sorted keys, no whitespace, UTF-8; the first event's `prev_hash` is 64 zeros.",
            {
                "seq": {**_SEQ, "description": "Per tenant: starts at 1, no gaps, never reused, in commit order."},
                "type": ref("EventType"),
                "occurred_at": dict(_TIMESTAMP),
                "data": {"type": "object", "description": "The account, transfer or transaction after the change."},
                "prev_hash": dict(_HASH),
                "hash": dict(_HASH),
            },
        ),
        "EventPage": _list(
            "Event",
            "The tenant's events with `seq > after`, in commit order; empty when `wait` passed with none. Pass "
            "the last `seq` as `after` for the next call.",
            cursor=False,
        ),
        "WebhookEndpointCreate": {
            **_object(
                "Body of `POST /v1/webhook-endpoints`. The URL must be https in AWS; one resolving to a private, "
                "loopback or link-local address is 400 (unless the deployment allows it).",
                {"url": endpoint["url"], "event_types": _event_types()},
            ),
            "additionalProperties": False,
        },
        "WebhookEndpoint": _object(
            "A webhook endpoint. Its secret is shown only when it is created.", endpoint, ["id", "url", "event_types"]
        ),
        "WebhookEndpointCreated": _object(
            "A webhook endpoint, created, with the secret that signs its deliveries (Standard Webhooks: "
            "`webhook-signature` is `v1,` + base64 HMAC-SHA256 of `webhook-id.webhook-timestamp.body`). Shown "
            "only here.",
            {**endpoint, "secret": {"type": "string", "minLength": 1}},
            ["id", "url", "event_types", "secret", "created_at"],
        ),
        "WebhookEndpointPage": _list("WebhookEndpoint", "One page of the tenant's webhook endpoints."),
        "WebhookDelivery": _object(
            "One delivery attempt of one event to an endpoint.",
            {
                "event_seq": dict(_SEQ),
                "status": {"type": "string", "enum": ["succeeded", "failed"]},
                "response_code": {"anyOf": [{"type": "integer", "minimum": 100, "maximum": 599}, {"type": "null"}]},
                "duration_ms": {**_INT64, "minimum": 0},
                "attempted_at": dict(_TIMESTAMP),
            },
            ["event_seq", "status"],
        ),
        "WebhookDeliveryPage": _list("WebhookDelivery", "One page of an endpoint's delivery attempts, oldest first."),
    }
