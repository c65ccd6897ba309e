"""The ``components.schemas`` of docs/api.md sections 11 and 12: entries, statements, events, webhooks.

Written here as JSON Schema, with the ledger's limits and names imported from its public bodies
(``shared.ledger_query_api``, ``shared.event_api``), so that the components
have the names and shapes the document uses elsewhere (one named component per shape, every array
bounded, int64 ranges, ``date-time`` timestamps). The services' answers are checked against them
(tests/gateway/test_new_routes.py, tests/adversarial).
"""

from __future__ import annotations

from typing import Any

from services.gateway.openapi_schemas import PAGE_LIMIT_MAX, ref
from shared.event_api import EVENT_TYPES, MAX_EVENT_TYPES, MAX_URL_LENGTH, WILDCARDS

EVENTS_MAX_WAIT_SECONDS = 30
"""Longest ``wait`` of ``GET /v1/events`` (docs/api.md section 12)."""

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
        "items": ref("EventTypeFilter"),
        "minItems": 1,
        "maxItems": MAX_EVENT_TYPES,
        "description": "The event types delivered: a type (`transfer.posted`), every type of a resource "
        "(`transfer.*`) or every type (`*`). An unknown type is 400.",
    }


def feed_schemas() -> dict[str, Any]:
    """The components of sections 11 and 12, by name."""
    endpoint: dict[str, Any] = {
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
        "EventType": {"type": "string", "enum": list(EVENT_TYPES), "description": "What changed."},
        "EventTypeFilter": {
            "type": "string",
            "enum": [*EVENT_TYPES, *WILDCARDS],
            "description": "An event type, every type of a resource (`transfer.*`) or every type (`*`).",
        },
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
                {
                    "url": {**endpoint["url"], "minLength": 1, "pattern": "^https?://"},
                    "event_types": _event_types(),
                },
            ),
            "additionalProperties": False,
        },
        "WebhookEndpoint": _object("A webhook endpoint. Its secret is shown only when it is created.", endpoint),
        "WebhookEndpointCreated": _object(
            "A webhook endpoint, created (`enabled`), with the secret that signs its deliveries (Standard "
            "Webhooks: `webhook-signature` is `v1,` + base64 HMAC-SHA256 of `webhook-id.webhook-timestamp.body`). "
            "Shown only here.",
            {**{k: v for k, v in endpoint.items() if k != "status"}, "secret": {"type": "string", "minLength": 1}},
        ),
        "WebhookEndpointPage": _list("WebhookEndpoint", "One page of the tenant's webhook endpoints."),
        "WebhookDelivery": _object(
            "One delivery attempt of one event to an endpoint: `response_code` is null when no answer came "
            "(`error` says why).",
            {
                "event_seq": dict(_SEQ),
                "event_type": ref("EventType"),
                "attempt": {**_INT64, "minimum": 1},
                "status": {"type": "string", "enum": ["succeeded", "failed"]},
                "response_code": {"anyOf": [{"type": "integer", "minimum": 100, "maximum": 599}, {"type": "null"}]},
                "error": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "duration_ms": {**_INT64, "minimum": 0},
                "attempted_at": dict(_TIMESTAMP),
            },
        ),
        "WebhookDeliveryPage": _list(
            "WebhookDelivery", "One page of an endpoint's delivery attempts, oldest first (`order=desc`: newest first)."
        ),
    }
