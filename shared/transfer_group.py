"""The coalesced transfer-write call between the gateway and the ledger: one contract, both sides.

Under load the gateway sends concurrent single transfer writes (create, post, void), from any
tenants, as ONE ``POST /internal/transfer-groups`` instead of one call each (ADR 0006). The body
is MessagePack, because each item carries its client's body bytes untouched (even malformed JSON
must reach the ledger's decoder, to be answered exactly as a lone call would be).

Contract:

- request: a list of :class:`GroupItem`, in the order the gateway received the requests; the
  ledger applies them one at a time in that order (docs/api.md section 5 semantics);
- response: 200 with one :class:`GroupResult` per item, in the same order, carrying the exact
  status, media type and body the lone call would have answered (problem bodies name the item's
  own request id), plus ``Retry-After`` for a 503;
- the call as a whole fails (non-200, or no answer) only for an outage or a bad internal
  credential; the gateway then answers every item as it would a lone call that failed so.

Items are independent: one item's error never changes another's result.
"""

from __future__ import annotations

import msgspec

GROUP_PATH = "/internal/transfer-groups"
MEDIA_TYPE = "application/msgpack"


class GroupItem(msgspec.Struct, array_like=True, frozen=True):
    kind: int
    """0 create (``POST /v1/transfers``), 1 post, 2 void (``POST /v1/transfers/{id}/post|void``)."""
    tenant_id: str
    """The authenticated tenant (the gateway's word, trusted with the internal credential)."""
    target: str
    """The transfer id from the path, as the client sent it (post, void); empty for create."""
    content_type: str
    """The client's ``Content-Type`` header ('' when absent)."""
    body: bytes
    """The client's body, unparsed."""
    request_id: str
    """The client request's id (``X-Request-Id``), named in a problem body."""
    key_id: str = ""
    """The API key the request was authenticated with (attribution); '' when unknown."""


class GroupResult(msgspec.Struct, array_like=True, frozen=True):
    status: int
    content_type: str
    body: bytes
    retry_after: str = ""
    """``Retry-After`` of a 503 ('' otherwise)."""


ITEMS = msgspec.msgpack.Decoder(list[GroupItem])
RESULTS = msgspec.msgpack.Decoder(list[GroupResult])
ENCODER = msgspec.msgpack.Encoder()
