"""The authenticated request pipeline: auth -> body checks -> admission -> ledger -> keep response.

Every proxied public route (:mod:`.routes`) is a raw ASGI handler that calls
:meth:`Pipeline.forward`; it reads top to bottom in the order a request meets it:

1. a method the path does not serve: 404 ``not_found`` (the contract has no 405);
2. bearer token -> tenant (:mod:`.auth`, from process memory on the hot path); 401 without a valid
   session;
3. body size (413), media type (415) and the Idempotency-Key header (400);
4. admission (:mod:`.admission`): the rate limit from this process's lease of the tenant's budget
   (no Redis round trip), or, with an Idempotency-Key, rate limit and key claim in one Redis round
   trip: 429, 409, 422 or a replay of the kept response;
5. the ledger call (:mod:`.upstream`): single transfer writes are coalesced with concurrent ones
   (:mod:`.coalescer`), everything else is forwarded as it came (a long-poll read with a timeout
   that covers its wait, ``routes.LONG_POLL_SECONDS``, within the caps of :mod:`.long_poll`); 503
   when the ledger cannot be reached;
6. the response kept for the key (or the claim released, for statuses that must not be kept).

Every response of an authenticated call carries the RateLimit headers.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import msgspec
from litestar.types import Receive, Scope, Send

from services.gateway.admission import Admission, Admitted
from services.gateway.auth import Authenticator, Principal
from services.gateway.idempotency import KeptResponse, fingerprint, keep, validate_key
from services.gateway.login import address_of
from services.gateway.refusals import RefusalLimiter
from services.gateway.upstream import LedgerClient
from shared.asgi import header, read_body, respond, respond_problem
from shared.errors import ErrorCode, ProblemError
from shared.logging import caller_var, request_id_var
from shared.transfer_group import GroupItem
from shared.web import JSON_MEDIA_TYPE, check_json_media_type

# Actions whose body is optional or absent (docs/api.md section 2 for post/void; the account
# lifecycle and webhook re-enable take none): an empty body needs no Content-Type there.
_EMPTY_BODY_PATHS = ("/post", "/void", "/freeze", "/unfreeze", "/close", "/enable")
_WITH_BODY = frozenset({"POST", "PATCH"})
"""Methods whose body is read and forwarded, and which may carry an Idempotency-Key: a PATCH
(``PATCH /v1/accounts/{id}``) is not idempotent once it carries ``expected_versions`` (a retry after
a lost answer would be 422 ``version_mismatch``), so the key makes its retry safe as for a POST.
GET and DELETE bodies are never read; DELETE needs no key (repeating it answers 404)."""
_TRANSFERS = "/v1/transfers"
_BATCH = "/v1/transfers/batch"


class _BatchItems(msgspec.Struct):
    transfers: list[msgspec.Raw]


_COUNT_ITEMS = msgspec.json.Decoder(_BatchItems)


def _batch_items(body: bytes) -> int:
    """A batch costs its item count of the tenant's rate budget (at least 1). Counted without
    validating the items: a body that is not a batch costs 1, and the ledger answers it 400."""
    try:
        return max(1, len(_COUNT_ITEMS.decode(body).transfers))
    except (msgspec.MsgspecError, RecursionError):
        return 1


class Pipeline:
    def __init__(
        self,
        auth: Authenticator,
        admission: Admission,
        ledger: LedgerClient,
        refusals: RefusalLimiter,
        trusted_hops: int,
        long_poll: Mapping[str, LedgerClient] | None = None,
    ) -> None:
        self.auth = auth
        self.admission = admission
        self.ledger = ledger
        self.long_poll: Mapping[str, LedgerClient] = long_poll or {}
        """Per long-poll path (``routes.LONG_POLL_SECONDS``), a ledger client whose timeout covers the
        wait (a :class:`.long_poll.LongPolls`: capped waits, over a pool of their own)."""
        self.refusals = refusals
        self.trusted_hops = trusted_hops

    async def authenticate(self, scope: Scope) -> Principal:
        """The caller, or 401; 429 once the client's address caused too many refusals (it then
        costs neither the session service nor Redis: :mod:`.refusals`)."""
        # The address is only needed while some address is blocked, or once a token is refused:
        # not parsed on the hot path of a good request.
        blocked = self.refusals.blocked(address_of(scope, self.trusted_hops)) if self.refusals.any_blocked else None
        try:
            principal = await self.auth.authenticate(header(scope, b"authorization"), unresolved=blocked)
            caller_var.set((principal.tenant_id, principal.key_id))
            return principal
        except ProblemError as error:
            if error.code is not ErrorCode.UNAUTHORIZED:
                raise
            limited = blocked or await self.refusals.refused(address_of(scope, self.trusted_hops))
            if limited is not None:
                raise limited from None
            raise

    async def forward(self, scope: Scope, receive: Receive, send: Send, methods: Collection[str]) -> None:
        """Serve one proxied public request as a raw ASGI app."""
        try:
            status, body, content_type, headers = await self.handle(scope, receive, methods)
        except ProblemError as error:
            await respond_problem(send, error)
            return
        await respond(send, status, body, content_type, headers.items())

    async def handle(
        self, scope: Scope, receive: Receive, methods: Collection[str]
    ) -> tuple[int, bytes, str, dict[str, str]]:
        """The whole pipeline of the module docstring: (status, body, media type, headers), or a
        ProblemError to answer."""
        if scope.get("method") not in methods:
            raise ProblemError(ErrorCode.NOT_FOUND, "no such resource for this method")
        principal = await self.authenticate(scope)
        return await self._forward(scope, receive, principal)

    async def _forward(
        self, scope: Scope, receive: Receive, principal: Principal
    ) -> tuple[int, bytes, str, dict[str, str]]:
        method = str(scope.get("method", ""))
        path: str = scope["path"]
        content_type = header(scope, b"content-type")
        try:
            body = await read_body(scope, receive) if method in _WITH_BODY else b""
            if body.strip() or (method in _WITH_BODY and not path.endswith(_EMPTY_BODY_PATHS)):
                check_json_media_type(content_type)
            key = validate_key(header(scope, b"idempotency-key")) if method in _WITH_BODY else None
        except ProblemError as error:
            error.headers.update((await self.admission.admit(principal.tenant_id)).rate.headers())
            raise
        fp = fingerprint(method, path, body) if key is not None else ""
        tokens = _batch_items(body) if method == "POST" and path == _BATCH else 1
        admitted = await self.admission.admit(principal.tenant_id, key, fp, tokens)
        if admitted.replay is not None:
            return _answer(admitted.replay, admitted, replayed=True)
        query = scope.get("query_string", b"").decode("latin-1")
        try:
            item = coalescable_write(method, path, principal, content_type, body)
            if item is not None:
                upstream = await self.ledger.write(item, method, _raw_path(scope), query)
            else:
                # The media type goes along even with an empty body, so that the ledger answers
                # an empty application/json body 400 (malformed JSON) rather than 415.
                # GET /v1/events?wait= may be held by the ledger up to its wait: a longer timeout.
                ledger = self.long_poll.get(path, self.ledger) if method == "GET" else self.ledger
                upstream = await ledger.forward(
                    method, _raw_path(scope), query, body, content_type, principal.tenant_id, principal.key_id
                )
        except ProblemError as error:
            if admitted.claim is not None:
                await self.admission.complete(admitted.claim, None)
            error.headers.update(admitted.rate.headers())
            raise
        kept = KeptResponse(upstream.status, upstream.content_type, upstream.body)
        if admitted.claim is not None:
            await self.admission.complete(admitted.claim, kept if keep(upstream.status) else None)
        status, content, media_type, headers = _answer(kept, admitted, replayed=False)
        if upstream.retry_after is not None and upstream.status >= 500:
            headers["Retry-After"] = upstream.retry_after
        return status, content, media_type, headers

    async def revoke_current(self, scope: Scope, send: Send) -> None:
        """``DELETE /v1/sessions/current``: end the caller's own session."""
        try:
            principal = await self.authenticate(scope)
            headers = (await self.admission.admit(principal.tenant_id)).rate.headers()
            try:
                await self.auth.revoke(principal)
            except ProblemError as error:
                error.headers.update(headers)
                raise
        except ProblemError as error:
            await respond_problem(send, error)
            return
        raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        start: Any = {"type": "http.response.start", "status": 204, "headers": raw}
        end: Any = {"type": "http.response.body", "body": b""}
        await send(start)
        await send(end)


def coalescable_write(
    method: str, path: str, principal: Principal, content_type: str | None, body: bytes
) -> GroupItem | None:
    """The coalescable form of a single transfer write (create, post, void); None for the rest: a
    batch, a reversal (``/v1/transfers/{id}/reverse``) and everything under ``/v1/transactions`` or
    ``/v1/accounts`` go alone (the group protocol carries only these three kinds)."""
    if method != "POST" or not path.startswith(_TRANSFERS):
        return None
    if path == _TRANSFERS:
        kind, target = 0, ""
    else:
        parts = path[len(_TRANSFERS) + 1 :].split("/")
        if len(parts) != 2 or parts[1] not in ("post", "void") or not parts[0]:
            return None  # /v1/transfers/batch and anything else go as they came
        kind, target = (1 if parts[1] == "post" else 2), parts[0]
    return GroupItem(
        kind, principal.tenant_id, target, content_type or "", body, request_id_var.get(), principal.key_id
    )


def _raw_path(scope: Scope) -> str:
    """The path as the client encoded it. The decoded path would turn an id's escaped ``?`` or
    ``#`` (``%3F``, ``%23``) into a query string or a fragment upstream: another request."""
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if isinstance(raw, bytes) and raw else str(scope["path"])


def _answer(kept: KeptResponse, admitted: Admitted, *, replayed: bool) -> tuple[int, bytes, str, dict[str, str]]:
    headers = admitted.rate.headers()
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return kept.status, kept.body, kept.content_type or JSON_MEDIA_TYPE, headers
