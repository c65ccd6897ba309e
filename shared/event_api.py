"""The event types of the ledger's journal, and the public bodies of the webhook endpoints
(docs/api.md section 12).

:data:`EventType` is the one list of event types: the ledger's write path emits them
(``services/ledger/state.py``), its journal stores them (migration 0013's CHECK on ``events.type``
says the same), webhook filters name them, and the gateway's OpenAPI document enumerates them. In
``shared/`` because the ledger and the gateway both need them (ADR 0004).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, get_args

from msgspec import Meta, Struct

EventType = Literal[
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
"""What changed: ``<resource>.<change>``, one per event."""

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
