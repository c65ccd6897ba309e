"""HTTP handlers of docs/api.md section 11 ("Finding things"): parse the query string, call
:mod:`services.ledger.queries` / :mod:`services.ledger.entry_queries`, encode. Nothing else.
``ROUTES`` holds the Litestar handlers; ``GET /v1/transfers`` is :func:`list_transfers_asgi`, called
by the raw ASGI handler that owns that path.

Conventions are those of :mod:`services.ledger.routes`: the tenant comes from the gateway
(:func:`~services.ledger.routes.tenant_of`), ``limit`` is 1-1000 (default 100), cursors are sealed
per tenant (:func:`~services.ledger.present.encode_cursor`). A cursor is also bound to its list and
to the exact filter set it was made for (their digest is part of the sealed kind), so a cursor used
with another list, tenant or filter set is a 400 ``invalid_request`` with ``errors[].field``
``cursor``, like a malformed one. Every malformed parameter is a 400 naming it; a single-valued
parameter given twice is malformed too. Unknown parameters are ignored, as elsewhere.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.types import Receive, Scope, Send

from services.ledger import entry_queries, queries, reads
from services.ledger.db import connection
from services.ledger.present import decode_cursor, encode_cursor
from services.ledger.routes import tenant_of
from services.ledger.runtime import LedgerRuntime
from shared.asgi import respond, respond_problem
from shared.errors import ErrorCode, ProblemError
from shared.ledger_api import CURRENCY_PATTERN
from shared.ledger_query_api import AccountPage, EntryPage, TransactionPage, TransferPage
from shared.web import json_response

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_METADATA_FILTERS = 16
_LIMIT = re.compile(r"[0-9]{1,7}")
_CURRENCY = re.compile(CURRENCY_PATTERN)
_METADATA = re.compile(r"metadata\[(.*)\]", re.DOTALL)
_MOVEMENT_STATUSES = ("posted", "pending", "voided", "expired")
_ACCOUNT_STATUSES = ("open", "frozen", "closed")


def _runtime(request: Request[Any, Any, Any]) -> LedgerRuntime:
    runtime: LedgerRuntime = request.app.state.ledger
    return runtime


def _bad(name: str, detail: str) -> ProblemError:
    return ProblemError(ErrorCode.INVALID_REQUEST, detail, field=name)


def _param(request: Request[Any, Any, Any], name: str) -> str | None:
    values = request.query_params.getall(name, [])
    if len(values) > 1:
        raise _bad(name, f"{name} may be given only once")
    return values[0] if values else None


def _limit(request: Request[Any, Any, Any]) -> int:
    raw = _param(request, "limit")
    if raw is None:
        return DEFAULT_LIMIT
    # ASCII digits only (str.isdigit() admits other scripts' digits), as in routes.py.
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise _bad("limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _uuid(value: str | None, name: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _bad(name, f"{name} must be a UUID") from None


def _instant(request: Request[Any, Any, Any], name: str) -> datetime | None:
    """An RFC 3339 timestamp with a time zone, in UTC; None when absent."""
    raw = _param(request, name)
    if raw is None:
        return None
    try:
        moment = msgspec.convert(raw, datetime)
        # An offset can push year 1 or 9999 out of datetime's range once in UTC.
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)
    except (msgspec.ValidationError, OverflowError):
        pass
    raise _bad(name, f"{name} must be an RFC 3339 timestamp with a time zone")


def _choice(request: Request[Any, Any, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = _param(request, name)
    if value is not None and value not in allowed:
        raise _bad(name, f"{name} must be one of {', '.join(allowed)}")
    return value


def _metadata(request: Request[Any, Any, Any]) -> tuple[tuple[str, str], ...]:
    """``metadata[KEY]=VALUE`` pairs, sorted; the same limits as stored metadata (docs/api.md section 2)."""
    pairs: set[tuple[str, str]] = set()
    for name, value in request.query_params.multi_items():
        if not name.startswith("metadata"):
            continue
        match = _METADATA.fullmatch(name)
        if match is None:
            raise _bad(name, "metadata filters are written metadata[KEY]=VALUE")
        key = match.group(1)
        if not 1 <= len(key) <= 64 or len(value) > 512 or "\x00" in key or "\x00" in value:
            raise _bad(name, "a metadata key has 1-64 characters and a value at most 512, neither NUL")
        pairs.add((key, value))
    if len(pairs) > MAX_METADATA_FILTERS:
        raise _bad("metadata", f"at most {MAX_METADATA_FILTERS} metadata filters")
    return tuple(sorted(pairs))


def _range(request: Request[Any, Any, Any], start: str, end: str) -> tuple[datetime | None, datetime | None]:
    low, high = _instant(request, start), _instant(request, end)
    if low is not None and high is not None and high < low:
        raise _bad(end, f"{end} must not be before {start}")
    return low, high


def _movement_filters(request: Request[Any, Any, Any]) -> queries.Filters:
    created_from, created_to = _range(request, "created_from", "created_to")
    return queries.Filters(
        account_id=_uuid(_param(request, "account_id"), "account_id"),
        status=_choice(request, "status", _MOVEMENT_STATUSES),
        created_from=created_from,
        created_to=created_to,
        metadata=_metadata(request),
        descending=_choice(request, "order", ("asc", "desc")) == "desc",
    )


class _Cursor:
    """Opens and seals the cursors of one list and filter set for the calling tenant."""

    def __init__(self, tenant: uuid.UUID, secret: bytes, kind: str) -> None:
        self.tenant, self.secret, self.kind = tenant, secret, kind

    @classmethod
    async def of(cls, request: Request[Any, Any, Any], tenant: uuid.UUID, kind: str) -> _Cursor:
        return cls(tenant, await reads.cursor_secret(_runtime(request).pool), kind)

    def open(self, request: Request[Any, Any, Any]) -> int | None:
        position = decode_cursor(self.kind, _param(request, "cursor"), self.tenant, self.secret)
        return None if position < 0 else position

    def seal(self, position: int | None) -> str | None:
        return None if position is None else encode_cursor(self.kind, position, self.tenant, self.secret)


async def _transfers_page(request: Request[Any, Any, Any]) -> TransferPage:
    tenant = tenant_of(request)
    filters, limit = _movement_filters(request), _limit(request)
    cursor = await _Cursor.of(request, tenant, f"transfers:{filters.fingerprint()}")
    after = cursor.open(request)
    async with connection(_runtime(request).pool) as conn:
        data, position = await queries.list_transfers(conn, tenant, filters, after, limit)
    return TransferPage(data=data, next_cursor=cursor.seal(position))


async def list_transfers_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """``GET /v1/transfers``. Not a route of its own: the raw ASGI handler of ``POST /v1/transfers``
    (:func:`services.ledger.transfer_writes.create_transfer`, the hottest route) owns the path, and
    Litestar gives an ASGI handler's path to no other handler, so it calls this for a GET."""
    try:
        page = await _transfers_page(Request(scope, receive))
    except ProblemError as error:
        await respond_problem(send, error)
        return
    await respond(send, 200, msgspec.json.encode(page))


@get("/v1/transactions")
async def list_transactions(request: Request[Any, Any, Any]) -> Response[bytes]:
    tenant = tenant_of(request)
    filters, limit = _movement_filters(request), _limit(request)
    cursor = await _Cursor.of(request, tenant, f"transactions:{filters.fingerprint()}")
    after = cursor.open(request)
    async with connection(_runtime(request).pool) as conn:
        data, position = await queries.list_transactions(conn, tenant, filters, after, limit)
    return json_response(TransactionPage(data=data, next_cursor=cursor.seal(position)))


@get("/v1/accounts")
async def list_accounts(request: Request[Any, Any, Any]) -> Response[bytes]:
    tenant = tenant_of(request)
    limit = _limit(request)
    currency = _param(request, "currency")
    if currency is not None and not _CURRENCY.fullmatch(currency):
        raise _bad("currency", "currency must match ^[A-Z][A-Z0-9]{2,11}$")
    filters = queries.Filters(
        status=_choice(request, "status", _ACCOUNT_STATUSES), metadata=_metadata(request), currency=currency
    )
    # Without filters the kind is routes.py's "a", so cursors issued before these filters existed
    # still open.
    unfiltered = filters == queries.Filters()
    cursor = await _Cursor.of(request, tenant, "a" if unfiltered else f"accounts:{filters.fingerprint()}")
    after = cursor.open(request)
    async with connection(_runtime(request).pool) as conn:
        data, position = await queries.list_accounts(conn, tenant, filters, after, limit)
    return json_response(AccountPage(data=data, next_cursor=cursor.seal(position)))


def _account_id(account_id: str) -> uuid.UUID:
    key = _uuid(account_id, "account_id")
    assert key is not None
    return key


def _no_account() -> ProblemError:
    return ProblemError(ErrorCode.ACCOUNT_NOT_FOUND, "no such account")


@get("/v1/accounts/{account_id:str}/entries")
async def account_entries(request: Request[Any, Any, Any], account_id: str) -> Response[bytes]:
    tenant = tenant_of(request)
    key = _account_id(account_id)
    start, end = _range(request, "from", "to")
    limit = _limit(request)
    filters = queries.Filters(account_id=key, created_from=start, created_to=end)
    cursor = await _Cursor.of(request, tenant, f"entries:{filters.fingerprint()}")
    after = cursor.open(request)
    async with connection(_runtime(request).pool) as conn:
        found = await entry_queries.account_entries(conn, tenant, key, start, end, after, limit)
    if found is None:
        raise _no_account()
    data, position = found
    return json_response(EntryPage(data=data, next_cursor=cursor.seal(position)))


@get("/v1/accounts/{account_id:str}/statement")
async def account_statement(request: Request[Any, Any, Any], account_id: str) -> Response[bytes]:
    tenant = tenant_of(request)
    key = _account_id(account_id)
    start, end = _range(request, "from", "to")
    async with connection(_runtime(request).pool) as conn:
        found = await entry_queries.statement(conn, tenant, key, start, end)
    if found is None:
        raise _no_account()
    return json_response(found)


@get("/v1/accounts/{account_id:str}/balances")
async def account_balances_at(request: Request[Any, Any, Any], account_id: str) -> Response[bytes]:
    tenant = tenant_of(request)
    key = _account_id(account_id)
    at = _instant(request, "at")
    if at is None:
        raise _bad("at", "at must be an RFC 3339 timestamp with a time zone")
    async with connection(_runtime(request).pool) as conn:
        found = await entry_queries.balances_at(conn, tenant, key, at)
    if found is None:
        raise _no_account()
    return json_response(found)


ROUTES = [
    list_transactions,
    list_accounts,
    account_entries,
    account_statement,
    account_balances_at,
]
