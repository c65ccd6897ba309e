"""The ledger's public request and response bodies (docs/api.md sections 4, 5 and 8 to 10), as
msgspec Structs, with their limits and the one balance rule (:func:`balances_of`).

They live in ``shared/`` because two services need them: the ledger decodes and encodes with them,
and the gateway's OpenAPI document is built from them, so the document cannot drift from what the
ledger accepts (ADR 0004; import-linter forbids one service to import another). The read side's
bodies are :mod:`shared.ledger_query_api`, the event feed's and webhooks' :mod:`shared.event_api`.
Shapes only the ledger uses (a batch's first decoding pass, its page of an account's transfers)
stay in the ledger.

Validation lives in the types: decoding a body with :func:`shared.web.decode_json` either yields a
value that satisfies every section-2 convention or raises a 400 naming the field. Amounts are
Python ints end to end; no float ever holds money. This module imports nothing from a service.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

MAX_AMOUNT = 2**63 - 1
"""Largest amount and largest value of any counter (PostgreSQL bigint)."""

MAX_BATCH_ITEMS = 8_000
"""Most transfers in one ``POST /v1/transfers/batch``; above it 413 ``batch_too_large``."""

MAX_TIMEOUT_SECONDS = 31_536_000
"""Longest reservation of a two-phase transfer (365 days)."""


def whole_value(pattern: str) -> str:
    """``pattern`` (``^...$``) made to match only whole values under Python's ``re.search``, which
    msgspec applies: there ``$`` also matches just before a final newline, so ``"USD\\n"`` passed the
    schema and failed the database's CHECK (a 5xx). The look-ahead refuses that newline. In ECMA-262,
    the regex dialect of the OpenAPI document, ``$`` matches only at the very end, so the look-ahead
    changes nothing there: the document's pattern still means exactly the contract's."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ValueError(f"pattern must be anchored with ^ and $: {pattern!r}")
    return pattern[:-1] + "(?!\\n)$"


Amount = Annotated[int, Meta(ge=1, le=MAX_AMOUNT, description="Integer minor units, 1 to 2^63-1.")]
CURRENCY_PATTERN = r"^[A-Z][A-Z0-9]{2,11}$"
"""The contract's currency pattern (ECMA-262 semantics); match it with ``fullmatch`` in Python."""
Currency = Annotated[str, Meta(pattern=whole_value(CURRENCY_PATTERN), description="ISO 4217 or custom code.")]
# PostgreSQL cannot store U+0000 in text or jsonb: refuse it here (400) rather than fail the write.
MetadataKey = Annotated[str, Meta(min_length=1, max_length=64, pattern=whole_value("^[^\x00]*$"))]
MetadataValue = Annotated[str, Meta(max_length=512, pattern=whole_value("^[^\x00]*$"))]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Meta(max_length=16)]
TimeoutSeconds = Annotated[int, Meta(ge=0, le=MAX_TIMEOUT_SECONDS)]
NormalBalance = Literal["credit", "debit"]
TransferStatus = Literal["posted", "pending", "voided", "expired"]
AccountStatus = Literal["open", "frozen", "closed"]
Direction = Literal["debit", "credit"]
OverdraftLimit = Annotated[
    int, Meta(ge=0, le=MAX_AMOUNT, description="How far the limited side may go past the other, 0 to 2^63-1.")
]
Version = Annotated[int, Meta(ge=0, le=MAX_AMOUNT)]
MAX_EXPECTED_VERSIONS = 100
ExpectedVersions = Annotated[
    dict[uuid.UUID, Version],
    Meta(
        max_length=MAX_EXPECTED_VERSIONS,
        description="Optimistic concurrency: account id -> the version the item requires when it is applied. "
        "Only accounts the item moves may be named.",
    ),
]
MIN_ENTRIES = 2
MAX_ENTRIES = 100
"""Entries of one transaction (docs/api.md section 8)."""


class AccountFlags(Struct, forbid_unknown_fields=True, kw_only=True):
    debits_must_not_exceed_credits: bool = False
    """Debits (posted + pending) may never exceed posted credits on this account."""
    credits_must_not_exceed_debits: bool = False
    """Credits (posted + pending) may never exceed posted debits on this account."""


class AccountCreate(Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of ``POST /v1/accounts``. ``id`` is optional; when given, the call is idempotent on it."""

    id: uuid.UUID | None = None
    currency: Currency
    normal_balance: NormalBalance = "credit"
    flags: AccountFlags = msgspec.field(default_factory=AccountFlags)
    metadata: Metadata = msgspec.field(default_factory=dict)
    overdraft_limit: OverdraftLimit = 0


class AccountPatch(Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of ``PATCH /v1/accounts/{id}``: replaces what is given; an empty body changes nothing."""

    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET
    overdraft_limit: OverdraftLimit | msgspec.UnsetType = msgspec.UNSET
    expected_versions: ExpectedVersions = msgspec.field(default_factory=dict)


class TransferCreate(Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of ``POST /v1/transfers`` and one item of a batch. ``id`` is the idempotency key."""

    id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: Amount
    currency: Currency
    pending: bool = False
    timeout_seconds: TimeoutSeconds = 0
    metadata: Metadata = msgspec.field(default_factory=dict)
    expected_versions: ExpectedVersions = msgspec.field(default_factory=dict)
    """Not part of the request compared on replay: it is a condition on applying it, not the transfer."""

    def __post_init__(self) -> None:
        if self.timeout_seconds and not self.pending:
            # msgspec reports this as a validation error at `$.timeout_seconds`'s parent object.
            raise ValueError("timeout_seconds is only allowed with pending: true")
        if not self.expected_versions.keys() <= {self.debit_account_id, self.credit_account_id}:
            raise ValueError("expected_versions may only name the transfer's two accounts")


class TransferReverse(Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of ``POST /v1/transfers/{id}/reverse``: ``id`` is the new (reversing) transfer's id."""

    id: uuid.UUID
    amount: Amount | None = None
    """Default: what is left to reverse of the original's ``posted_amount``."""
    metadata: Metadata = msgspec.field(default_factory=dict)
    expected_versions: ExpectedVersions = msgspec.field(default_factory=dict)


class Entry(Struct, forbid_unknown_fields=True, kw_only=True):
    """One leg of a transaction."""

    account_id: uuid.UUID
    direction: Direction
    amount: Amount
    currency: Currency


class TransactionCreate(Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of ``POST /v1/transactions``. ``id`` is the idempotency key (a namespace of its own)."""

    id: uuid.UUID
    entries: Annotated[list[Entry], Meta(min_length=MIN_ENTRIES, max_length=MAX_ENTRIES)]
    pending: bool = False
    timeout_seconds: TimeoutSeconds = 0
    metadata: Metadata = msgspec.field(default_factory=dict)
    expected_versions: ExpectedVersions = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.timeout_seconds and not self.pending:
            raise ValueError("timeout_seconds is only allowed with pending: true")
        if not self.expected_versions.keys() <= {e.account_id for e in self.entries}:
            raise ValueError("expected_versions may only name accounts of the entries")


class TransactionReverse(Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of ``POST /v1/transactions/{id}/reverse``: the reversing transaction's id."""

    id: uuid.UUID
    metadata: Metadata = msgspec.field(default_factory=dict)


class BatchCreate(Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of ``POST /v1/transfers/batch``."""

    transfers: Annotated[list[TransferCreate], Meta(min_length=1)]
    atomic: bool = False


class PendingPost(Struct, forbid_unknown_fields=True, kw_only=True):
    """Optional body of ``POST /v1/transfers/{id}/post``; ``amount`` defaults to the full amount."""

    amount: Amount | None = None


class EmptyBody(Struct, forbid_unknown_fields=True):
    """The optional body of ``POST /v1/transfers/{id}/void``: an empty object at most."""


class Balances(Struct):
    posted: int
    pending: int
    available: int


class Account(Struct):
    id: uuid.UUID
    currency: str
    normal_balance: NormalBalance
    flags: AccountFlags
    metadata: dict[str, str]
    created_at: str
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    balances: Balances
    status: AccountStatus = "open"
    overdraft_limit: int = 0
    version: int = 0
    """+1 with every change to the account's counters, status, limit or metadata (one per operation)."""
    created_by_key_id: str | None = None
    """Attribution: the id of the API key whose session opened the account (never the secret)."""


class Transfer(Struct):
    id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: int
    currency: str
    status: TransferStatus
    posted_amount: int
    expires_at: str | None
    metadata: dict[str, str]
    created_at: str
    updated_at: str
    reverses: uuid.UUID | None = None
    """The transfer this one reverses (null for an ordinary transfer)."""
    reversed_amount: int = 0
    """How much of ``posted_amount`` reversals have taken back so far."""
    created_by_key_id: str | None = None
    """Attribution: the id of the API key whose session created the transfer."""
    resolved_by_key_id: str | None = None
    """Attribution: the id of the API key whose session posted or voided it (null while pending and
    after an expiry, which nobody requested)."""


class Transaction(Struct):
    id: uuid.UUID
    entries: list[Entry]
    status: TransferStatus
    metadata: dict[str, str]
    expires_at: str | None
    created_at: str
    updated_at: str
    reversed_by: list[uuid.UUID]
    reverses: uuid.UUID | None = None
    created_by_key_id: str | None = None
    resolved_by_key_id: str | None = None


class PostedBalance(Struct):
    posted: int


class BalanceAt(Struct):
    account_id: uuid.UUID
    at: str
    debits_posted: int
    credits_posted: int
    balances: PostedBalance


class BatchData(Struct):
    data: list[Transfer]


class ItemError(Struct):
    code: str
    detail: str


class BatchItemResult(Struct, omit_defaults=True):
    index: int
    status: int
    transfer: Transfer | None = None
    error: ItemError | None = None


class BatchResults(Struct):
    results: list[BatchItemResult]


def balances_of(
    normal_balance: str,
    debits_posted: int,
    credits_posted: int,
    debits_pending: int,
    credits_pending: int,
    overdraft_limit: int = 0,
) -> Balances:
    """The derived balances of section 4; a debit-normal account mirrors a credit-normal one.
    ``available`` includes the overdraft limit (docs/api.md section 10)."""
    if normal_balance == "debit":
        debits_posted, credits_posted = credits_posted, debits_posted
        debits_pending, credits_pending = credits_pending, debits_pending
    return Balances(
        posted=credits_posted - debits_posted,
        pending=(credits_posted + credits_pending) - (debits_posted + debits_pending),
        available=credits_posted - debits_posted - debits_pending + overdraft_limit,
    )
