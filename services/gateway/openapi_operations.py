"""The public operations of the OpenAPI document, as data: names, tags, bodies, statuses, codes.

One :class:`Operation` per routed public method and path. ``operation_id`` is a public API of its
own (generated clients name their functions after it): never rename one. ``errors`` lists, per
status, the ``code`` values the operation can answer with (docs/api.md sections 3-6): the
operation-specific ones first, then the gateway's (auth, rate limit, Idempotency-Key, body limits).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.gateway.openapi_schemas import MAX_BATCH_ITEMS
from shared.errors import ErrorCode as E
from shared.web import MAX_BODY_BYTES

# One shared response per error status; its name is what readers of the document see.
ERROR_RESPONSES = {
    400: ("BadRequest", "The request is malformed: bad JSON, wrong types, unknown fields, out-of-range values."),
    401: ("Unauthorized", "No valid credential; the answer carries the `WWW-Authenticate: Bearer` challenge."),
    404: (
        "NotFound",
        "No such resource for this tenant (another tenant's ids answer exactly the same). Any "
        "path or method not in this document answers 404 `not_found`.",
    ),
    409: ("Conflict", "The id or the Idempotency-Key is taken by another request, or still in flight."),
    413: ("PayloadTooLarge", f"The body is over {MAX_BODY_BYTES} bytes, or the batch over {MAX_BATCH_ITEMS} items."),
    415: ("UnsupportedMediaType", "The body is not `application/json`."),
    422: (
        "UnprocessableContent",
        "A ledger rule or the Idempotency-Key refused a well-formed request; nothing was applied.",
    ),
    429: ("RateLimited", "Over the tenant's request rate: retry after `Retry-After` seconds."),
    503: ("Unavailable", "A dependency is down: retry after `Retry-After` seconds."),
}

_AUTH = {401: [E.UNAUTHORIZED], 429: [E.RATE_LIMITED], 503: [E.UNAVAILABLE]}
_READ = {**_AUTH, 400: [E.INVALID_REQUEST]}
_WRITE = {
    **_READ,
    409: [E.IDEMPOTENCY_KEY_IN_USE],
    413: [E.PAYLOAD_TOO_LARGE],
    415: [E.UNSUPPORTED_MEDIA_TYPE],
    422: [E.IDEMPOTENCY_KEY_REUSED],
}
_TRANSFER_RULES = [E.EXCEEDS_CREDITS, E.EXCEEDS_DEBITS, E.OVERFLOW]
_ACCOUNT_RULES = [E.ACCOUNT_FROZEN, E.ACCOUNT_CLOSED, E.VERSION_MISMATCH]
"""docs/api.md section 10: what every new movement is also checked against."""


def _with(base: dict[int, list[E]], extra: dict[int, list[E]]) -> dict[int, list[E]]:
    """``base`` plus ``extra``: the operation-specific codes first, the gateway's after them."""
    merged = {status: list(codes) for status, codes in extra.items()}
    for status, codes in base.items():
        merged.setdefault(status, []).extend(code for code in codes if code not in merged[status])
    return merged


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    ok: dict[int, tuple[str, str | None]]
    """Success status -> (description, schema name or None for no body)."""
    errors: dict[int, list[E]]
    body: str | None = None
    body_required: bool = True
    params: list[str] = field(default_factory=list)
    """Names in ``components.parameters``."""
    authenticated: bool = True
    description: str | None = None
    success_headers: tuple[str, ...] = ()
    """Names in ``components.headers`` that 2xx answers carry besides the ones every operation has."""

    @property
    def idempotent(self) -> bool:
        """Any authenticated POST may carry Idempotency-Key (docs/api.md section 6), and so may a PATCH
        (a retry of one carrying ``expected_versions`` would otherwise be 422 ``version_mismatch``)."""
        return self.authenticated and self.method in ("post", "patch")


OPERATIONS = [
    Operation(
        "post",
        "/v1/sessions",
        "createSession",
        "Sessions",
        "Log in with an API key",
        {201: ("A session", "SessionCreated")},
        {
            400: [E.INVALID_REQUEST],
            401: [E.INVALID_API_KEY],
            413: [E.PAYLOAD_TOO_LARGE],
            415: [E.UNSUPPORTED_MEDIA_TYPE],
            429: [E.RATE_LIMITED],
            503: [E.UNAVAILABLE],
        },
        body="LoginRequest",
        authenticated=False,
        success_headers=("Cache-Control",),
        description="Logins are limited per API key and per client address, and live sessions per key: "
        "past a limit, 429 `rate_limited` with `Retry-After` (log out to free a session). The token is "
        "never to be cached: the 201 carries `Cache-Control: no-store`.",
    ),
    Operation(
        "delete",
        "/v1/sessions/current",
        "deleteCurrentSession",
        "Sessions",
        "Log out",
        {204: ("Revoked", None)},
        _AUTH,
        description="Revokes the caller's token: every gateway instance refuses it within one second.",
    ),
    Operation(
        "post",
        "/v1/accounts",
        "createAccount",
        "Accounts",
        "Open an account",
        {201: ("The account", "Account"), 200: ("Same id, same body: the existing account", "Account")},
        _with(_WRITE, {409: [E.ID_CONFLICT]}),
        body="AccountCreate",
    ),
    Operation(
        "get",
        "/v1/accounts",
        "listAccounts",
        "Accounts",
        "List the tenant's accounts, oldest first",
        {200: ("A page of accounts", "AccountPage")},
        _READ,
        params=["currency", "account_status", "metadata", "limit", "cursor"],
    ),
    Operation(
        "get",
        "/v1/accounts/{account_id}",
        "getAccount",
        "Accounts",
        "Get an account",
        {200: ("The account", "Account")},
        _with(_READ, {404: [E.ACCOUNT_NOT_FOUND]}),
        params=["account_id"],
    ),
    Operation(
        "get",
        "/v1/accounts/{account_id}/transfers",
        "listAccountTransfers",
        "Accounts",
        "List the transfers touching an account, in applied order",
        {200: ("A page of transfers", "TransferPage")},
        _with(_READ, {404: [E.ACCOUNT_NOT_FOUND]}),
        params=["account_id", "limit", "cursor"],
    ),
    Operation(
        "get",
        "/v1/accounts/{account_id}/balances",
        "getAccountBalances",
        "Accounts",
        "Get an account's counters and balances at an instant",
        {200: ("The counters and balances as of `at`", "BalanceAt")},
        _with(_READ, {404: [E.ACCOUNT_NOT_FOUND]}),
        params=["account_id", "at"],
    ),
    Operation(
        "post",
        "/v1/transfers",
        "createTransfer",
        "Transfers",
        "Create a transfer",
        {201: ("The transfer", "Transfer"), 200: ("Same id, same request: the transfer as it is now", "Transfer")},
        _with(
            _WRITE,
            {
                404: [E.ACCOUNT_NOT_FOUND],
                409: [E.ID_CONFLICT],
                422: [E.SAME_ACCOUNT, E.CURRENCY_MISMATCH, *_TRANSFER_RULES, *_ACCOUNT_RULES],
            },
        ),
        body="TransferCreate",
        description="Rules are checked atomically with the write, in this order (the first that fails "
        "answers): validation, id replay or `id_conflict`, `same_account`, `account_not_found` (debit "
        "account first), `currency_mismatch`, `exceeds_credits`, `exceeds_debits`, `overflow`. A refused "
        "transfer is not stored: retrying it evaluates it afresh. A frozen or closed account takes no new "
        "transfer (`account_frozen`, `account_closed`); `expected_versions` makes it conditional "
        "(`version_mismatch`).",
    ),
    Operation(
        "post",
        "/v1/transfers/batch",
        "createTransferBatch",
        "Transfers",
        f"Create up to {MAX_BATCH_ITEMS} transfers, atomically or one by one",
        {
            201: ("atomic: every transfer, in request order", "BatchData"),
            200: ("non-atomic: one result per item, in request order", "BatchResults"),
        },
        _with(_WRITE, {413: [E.BATCH_TOO_LARGE], 422: [E.BATCH_FAILED]}),
        body="BatchCreate",
        description="An item failing validation makes the whole request 400 with `errors[].index`. "
        "Atomic: any item failing a rule answers 422 `batch_failed` listing every failing item, and "
        f"nothing is applied. Over {MAX_BATCH_ITEMS} items: 413 `batch_too_large`.",
    ),
    Operation(
        "get",
        "/v1/transfers/{transfer_id}",
        "getTransfer",
        "Transfers",
        "Get a transfer",
        {200: ("The transfer", "Transfer")},
        _with(_READ, {404: [E.TRANSFER_NOT_FOUND]}),
        params=["transfer_id"],
    ),
    Operation(
        "post",
        "/v1/transfers/{transfer_id}/post",
        "postPendingTransfer",
        "Transfers",
        "Post a pending transfer (all of it, or `amount`)",
        {200: ("The transfer, now posted", "Transfer")},
        _with(
            _WRITE,
            {
                404: [E.TRANSFER_NOT_FOUND],
                422: [E.TRANSFER_NOT_PENDING, E.PENDING_EXPIRED, E.AMOUNT_EXCEEDS_PENDING, *_TRANSFER_RULES],
            },
        ),
        body="PendingPost",
        body_required=False,
        params=["transfer_id"],
    ),
    Operation(
        "post",
        "/v1/transfers/{transfer_id}/void",
        "voidPendingTransfer",
        "Transfers",
        "Void a pending transfer",
        {200: ("The transfer, now voided", "Transfer")},
        _with(_WRITE, {404: [E.TRANSFER_NOT_FOUND], 422: [E.TRANSFER_NOT_PENDING, E.PENDING_EXPIRED]}),
        params=["transfer_id"],
    ),
]

TAGS = [
    {"name": "Sessions", "description": "Log in with an API key for a bearer token; log out."},
    {"name": "Accounts", "description": "Open accounts, read their balances and history."},
    {"name": "Transfers", "description": "Move money: single, batched and two-phase transfers."},
]
