"""The one error type of the platform and its problem+json form.

Every failure a client can see is a :class:`ProblemError` carrying one stable :class:`ErrorCode`
(docs/api.md section 6). Services raise it; :mod:`shared.web` turns it into an
``application/problem+json`` response. Clients branch on ``code``, never on ``detail``.

Every 401 carries ``WWW-Authenticate`` (RFC 9110 section 11.6.1 requires a challenge): the API's
one scheme, ``Bearer`` (RFC 6750), whatever raised it.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

PROBLEM_MEDIA_TYPE = "application/problem+json"

BEARER_CHALLENGE = 'Bearer realm="ledger"'
"""The ``WWW-Authenticate`` challenge of every 401."""


class ErrorCode(StrEnum):
    """Every error code of the public contract, with the HTTP status it is answered with."""

    INVALID_REQUEST = "invalid_request"
    INVALID_API_KEY = "invalid_api_key"
    UNAUTHORIZED = "unauthorized"
    ACCOUNT_NOT_FOUND = "account_not_found"
    TRANSFER_NOT_FOUND = "transfer_not_found"
    TRANSACTION_NOT_FOUND = "transaction_not_found"
    WEBHOOK_ENDPOINT_NOT_FOUND = "webhook_endpoint_not_found"
    NOT_FOUND = "not_found"
    ID_CONFLICT = "id_conflict"
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"
    BATCH_TOO_LARGE = "batch_too_large"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    SAME_ACCOUNT = "same_account"
    CURRENCY_MISMATCH = "currency_mismatch"
    EXCEEDS_CREDITS = "exceeds_credits"
    EXCEEDS_DEBITS = "exceeds_debits"
    OVERFLOW = "overflow"
    TRANSFER_NOT_PENDING = "transfer_not_pending"
    PENDING_EXPIRED = "pending_expired"
    AMOUNT_EXCEEDS_PENDING = "amount_exceeds_pending"
    UNBALANCED = "unbalanced"
    AMOUNT_EXCEEDS_REVERSIBLE = "amount_exceeds_reversible"
    TRANSFER_NOT_POSTED = "transfer_not_posted"
    ACCOUNT_FROZEN = "account_frozen"
    ACCOUNT_CLOSED = "account_closed"
    ACCOUNT_NOT_EMPTY = "account_not_empty"
    VERSION_MISMATCH = "version_mismatch"
    BATCH_FAILED = "batch_failed"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    INTERNAL_ERROR = "internal_error"

    @property
    def status(self) -> int:
        return _STATUS[self]

    @property
    def summary(self) -> str:
        """The problem's ``title``: a short, fixed description of the code."""
        return _TITLES[self]


_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.INVALID_API_KEY: 401,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.ACCOUNT_NOT_FOUND: 404,
    ErrorCode.TRANSFER_NOT_FOUND: 404,
    ErrorCode.TRANSACTION_NOT_FOUND: 404,
    ErrorCode.WEBHOOK_ENDPOINT_NOT_FOUND: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.ID_CONFLICT: 409,
    ErrorCode.IDEMPOTENCY_KEY_IN_USE: 409,
    ErrorCode.BATCH_TOO_LARGE: 413,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.SAME_ACCOUNT: 422,
    ErrorCode.CURRENCY_MISMATCH: 422,
    ErrorCode.EXCEEDS_CREDITS: 422,
    ErrorCode.EXCEEDS_DEBITS: 422,
    ErrorCode.OVERFLOW: 422,
    ErrorCode.TRANSFER_NOT_PENDING: 422,
    ErrorCode.PENDING_EXPIRED: 422,
    ErrorCode.AMOUNT_EXCEEDS_PENDING: 422,
    ErrorCode.UNBALANCED: 422,
    ErrorCode.AMOUNT_EXCEEDS_REVERSIBLE: 422,
    ErrorCode.TRANSFER_NOT_POSTED: 422,
    ErrorCode.ACCOUNT_FROZEN: 422,
    ErrorCode.ACCOUNT_CLOSED: 422,
    ErrorCode.ACCOUNT_NOT_EMPTY: 422,
    ErrorCode.VERSION_MISMATCH: 422,
    ErrorCode.BATCH_FAILED: 422,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL_ERROR: 500,
}

_TITLES: dict[ErrorCode, str] = {
    ErrorCode.INVALID_REQUEST: "Invalid request",
    ErrorCode.INVALID_API_KEY: "Invalid API key",
    ErrorCode.UNAUTHORIZED: "Unauthorized",
    ErrorCode.ACCOUNT_NOT_FOUND: "Account not found",
    ErrorCode.TRANSFER_NOT_FOUND: "Transfer not found",
    ErrorCode.TRANSACTION_NOT_FOUND: "Transaction not found",
    ErrorCode.WEBHOOK_ENDPOINT_NOT_FOUND: "Webhook endpoint not found",
    ErrorCode.NOT_FOUND: "Not found",
    ErrorCode.ID_CONFLICT: "Id already used with a different request",
    ErrorCode.IDEMPOTENCY_KEY_IN_USE: "Idempotency-Key in use",
    ErrorCode.BATCH_TOO_LARGE: "Batch too large",
    ErrorCode.PAYLOAD_TOO_LARGE: "Payload too large",
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "Unsupported media type",
    ErrorCode.SAME_ACCOUNT: "Debit and credit account are the same",
    ErrorCode.CURRENCY_MISMATCH: "Currency mismatch",
    ErrorCode.EXCEEDS_CREDITS: "Debits would exceed credits",
    ErrorCode.EXCEEDS_DEBITS: "Credits would exceed debits",
    ErrorCode.OVERFLOW: "Counter overflow",
    ErrorCode.TRANSFER_NOT_PENDING: "Transfer is not pending",
    ErrorCode.PENDING_EXPIRED: "Pending transfer expired",
    ErrorCode.AMOUNT_EXCEEDS_PENDING: "Amount exceeds the pending amount",
    ErrorCode.UNBALANCED: "Debits and credits differ",
    ErrorCode.AMOUNT_EXCEEDS_REVERSIBLE: "Amount exceeds what is left to reverse",
    ErrorCode.TRANSFER_NOT_POSTED: "Transfer is not posted",
    ErrorCode.ACCOUNT_FROZEN: "Account frozen",
    ErrorCode.ACCOUNT_CLOSED: "Account closed",
    ErrorCode.ACCOUNT_NOT_EMPTY: "Account not empty",
    ErrorCode.VERSION_MISMATCH: "Version mismatch",
    ErrorCode.BATCH_FAILED: "Batch failed",
    ErrorCode.IDEMPOTENCY_KEY_REUSED: "Idempotency-Key reused with another request",
    ErrorCode.RATE_LIMITED: "Rate limited",
    ErrorCode.UNAVAILABLE: "Service unavailable",
    ErrorCode.INTERNAL_ERROR: "Internal error",
}


class ErrorItem(msgspec.Struct, omit_defaults=True):
    """One entry of ``errors``: a field or batch item that failed, with its own code."""

    code: str
    detail: str
    index: int | None = None
    field: str | None = None


class Problem(msgspec.Struct):
    """The problem+json body (RFC 9457) with the platform's ``code`` and ``request_id``."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str
    errors: list[ErrorItem] | msgspec.UnsetType = msgspec.UNSET


class ProblemError(Exception):
    """A failure to report to the client as problem+json. The only error type services raise."""

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        *,
        errors: list[ErrorItem] | None = None,
        headers: dict[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.field = field
        if code.status == 401:
            self.headers.setdefault("WWW-Authenticate", BEARER_CHALLENGE)

    @property
    def status(self) -> int:
        return self.code.status

    def to_problem(self, request_id: str) -> Problem:
        errors = self.errors
        if errors is None and self.field is not None:
            errors = [ErrorItem(code=self.code.value, detail=self.detail, field=self.field)]
        return Problem(
            type=f"https://docs.ledger.example/errors/{self.code.value}",
            title=self.code.summary,
            status=self.status,
            detail=self.detail,
            code=self.code.value,
            request_id=request_id,
            errors=errors if errors is not None else msgspec.UNSET,
        )


def unavailable(detail: str, retry_after: int = 1) -> ProblemError:
    """A 503 for a dependency that is really down; clients retry after ``retry_after`` seconds."""
    return ProblemError(ErrorCode.UNAVAILABLE, detail, headers={"Retry-After": str(retry_after)})


def encode_problem(error: ProblemError, request_id: str) -> bytes:
    return msgspec.json.encode(error.to_problem(request_id))
