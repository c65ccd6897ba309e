"""Request and response bodies of the webhook endpoints, and the event types they can subscribe to.

The gateway's OpenAPI document describes these Structs; the event types are those of the journal
(migration 0013's CHECK on ``events.type``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, get_args

from msgspec import Meta, Struct

from services.ledger.state import EventType

EVENT_TYPES: tuple[str, ...] = get_args(EventType)
"""Every event type of the journal."""

WILDCARDS = ("*", *sorted({t.split(".", 1)[0] + ".*" for t in EVENT_TYPES}))
"""``*``: every type; ``account.*``, ``transaction.*``, ``transfer.*``: every type with that prefix."""

MAX_URL_LENGTH = 2048
MAX_EVENT_TYPES = 16
"""More filters than there are distinct ones (14) is surely a mistake."""


class EndpointCreate(Struct, forbid_unknown_fields=True):
    url: Annotated[str, Meta(min_length=1, max_length=MAX_URL_LENGTH)]
    event_types: Annotated[list[str], Meta(min_length=1, max_length=MAX_EVENT_TYPES)]


class Endpoint(Struct):
    """An endpoint as listed and read: never its secret."""

    id: uuid.UUID
    url: str
    event_types: list[str]
    status: Literal["enabled", "failing"]
    created_at: str


class CreatedEndpoint(Struct):
    """The answer to a creation (exactly the fields docs/api.md section 12 names): the only time the secret
    is shown. A new endpoint is ``enabled``."""

    id: uuid.UUID
    url: str
    event_types: list[str]
    secret: str
    created_at: str


class EndpointPage(Struct):
    data: list[Endpoint]
    next_cursor: str | None


class Delivery(Struct):
    """One delivery attempt: which event, how it went, how long it took."""

    event_seq: int
    event_type: str
    attempt: int
    status: Literal["succeeded", "failed"]
    response_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: str


class DeliveryPage(Struct):
    data: list[Delivery]
    next_cursor: str | None
