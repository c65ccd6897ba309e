"""One transfer write (create, post, void) from raw request parts to its exact response bytes.

Both ways a transfer write reaches the ledger go through here, so they cannot drift apart:

- a lone request (``POST /v1/transfers``, ``.../{id}/post``, ``.../{id}/void``);
- an item of a coalesced group (``POST /internal/transfer-groups``, :mod:`.groups`), which the
  gateway sends instead of one call per transfer under load.

:func:`prepare` decodes and validates exactly as the lone route always did (media type, schema,
duplicate keys, the path's UUID) and raises :class:`~shared.errors.ProblemError` for bad input;
:func:`answer` turns the committed :class:`~services.ledger.operations.Outcome` into the status and
body the lone route answers. Only the request id inside a problem body differs per item, and it
is the item's own (the client's), so a grouped item's response is byte-for-byte a lone one's.
"""

from __future__ import annotations

import uuid
from enum import IntEnum

import msgspec

from services.ledger.operations import CreateTransfer, Outcome, PostPending, VoidPending, WriteRequest
from services.ledger.present import outcome_problem, transfer_of
from shared.asgi import problem_body
from shared.errors import PROBLEM_MEDIA_TYPE, ErrorCode, ProblemError
from shared.ledger_api import EmptyBody, PendingPost, TransferCreate
from shared.web import JSON_MEDIA_TYPE, decode_json


class Kind(IntEnum):
    """Which transfer write a request or group item is (its wire value in a group is the int)."""

    CREATE = 0
    POST = 1
    VOID = 2


def transfer_id_param(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ProblemError(ErrorCode.INVALID_REQUEST, "transfer_id must be a UUID", field="transfer_id") from None


def prepare(
    kind: Kind, tenant: uuid.UUID, target: str, body: bytes, content_type: str | None, key_id: str | None
) -> WriteRequest:
    """The write request for one transfer write, or a 4xx ProblemError for bad input.

    ``target`` is the transfer id from the path (post and void; ignored for create); ``key_id`` the
    API key the caller authenticated with, recorded with the write (attribution).
    """
    if kind is Kind.CREATE:
        created = decode_json(body, content_type, TransferCreate)
        assert created is not None
        return WriteRequest([CreateTransfer(tenant, created, key_id)])
    key = transfer_id_param(target)
    if kind is Kind.POST:
        post = decode_json(body, content_type, PendingPost, allow_empty=True)
        return WriteRequest([PostPending(tenant, key, post.amount if post is not None else None, key_id)])
    decode_json(body, content_type, EmptyBody, allow_empty=True)
    return WriteRequest([VoidPending(tenant, key, key_id)])


def answer(outcome: Outcome, request_id: str | None = None) -> tuple[int, bytes, str]:
    """(status, body, content type) of the response to one transfer write."""
    if outcome.code is not None:
        return outcome.status, problem_body(outcome_problem(outcome), request_id), PROBLEM_MEDIA_TYPE
    assert outcome.transfer is not None
    return outcome.status, msgspec.json.encode(transfer_of(outcome.transfer)), JSON_MEDIA_TYPE


def refused(error: ProblemError, request_id: str | None = None) -> tuple[int, bytes, str]:
    """(status, body, content type) of a write refused before the rules ran (bad input, outage)."""
    return error.status, problem_body(error, request_id), PROBLEM_MEDIA_TYPE
