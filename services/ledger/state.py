"""What one write transaction holds in memory, and the only way its counters change. No I/O here.

:class:`LedgerState` holds the accounts a write transaction locked and the transfers and
transactions it loaded. The rules (:mod:`.rules`, :mod:`.transaction_rules`, :mod:`.account_rules`)
read it and change it only through the primitives below, which keep these invariants:

- every change to an account's counters is :meth:`LedgerState.move`, which also appends the
  account's entry (``account_entries``: per-account ``seq`` 1, 2, 3..., the counters right after the
  change) and ratchets ``limit_allowance`` down;
- an account's ``version`` goes up by one per operation that changes it (:meth:`LedgerState.touch`),
  however many entries the operation writes on it;
- everything is recorded in an undo log, so an operation or an atomic request that fails leaves the
  state exactly as it found it (:meth:`checkpoint` / :meth:`rollback`).

Event numbers (``seq`` of transfers and transactions, ``event_seq`` of entries and changes) are
``block * EVENTS_PER_BLOCK + i``: the block is taken after the account locks, so per account they
follow the order in which the locks were granted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from shared.event_api import EventType
from shared.ledger_api import AccountStatus, Direction, TransferStatus
from shared.ledger_query_api import EntryKind, SourceType

EVENTS_PER_BLOCK = 1 << 20
"""Events one write transaction may number: a group of 8,000 transfers plus every due reservation on
its accounts stays far below it. (Migration 0001 first said 65536; 0003 records the widening.)"""

Key = tuple[uuid.UUID, uuid.UUID]
"""(tenant_id, id): ids are per tenant, so every lookup is by this pair."""

ChangeKind = Literal["created", "frozen", "unfrozen", "closed", "updated"]


@dataclass(slots=True)
class AccountState:
    pk: int
    tenant_id: uuid.UUID
    id: uuid.UUID
    currency: str
    normal_balance: str
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    status: AccountStatus = "open"
    overdraft_limit: int = 0
    limit_allowance: int = 0
    """How far past its limit the account may still be because a PATCH lowered the limit below what
    it used (migration 0011); only ever ratchets down."""
    version: int = 0
    last_entry_seq: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    created_by_key_id: str | None = None

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a write may change, to find what to persist."""
        return (
            self.debits_posted,
            self.credits_posted,
            self.debits_pending,
            self.credits_pending,
            self.version,
            self.last_entry_seq,
            self.limit_allowance,
            self.status,
            self.overdraft_limit,
            self.metadata,
        )

    def excess(self) -> int:
        """How far the account is past its limit flags without the overdraft limit (0 if not)."""
        over = 0
        if self.debits_must_not_exceed_credits:
            over = max(over, self.debits_posted + self.debits_pending - self.credits_posted)
        if self.credits_must_not_exceed_debits:
            over = max(over, self.credits_posted + self.credits_pending - self.debits_posted)
        return over


@dataclass(slots=True)
class TransferState:
    tenant_id: uuid.UUID
    id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: int
    currency: str
    pending: bool
    timeout_seconds: int
    status: TransferStatus
    posted_amount: int
    expires_at: datetime | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    seq: int
    resolved_seq: int | None = None
    created_by_key_id: str | None = None
    """The API key whose request created it (None: written before attribution, or by the admin tools)."""
    resolved_by_key_id: str | None = None
    """The API key whose request posted or voided it (None while pending, and after an expiry)."""
    reverses: uuid.UUID | None = None
    """The transfer this one reverses (a reversal is an ordinary posted transfer otherwise)."""
    reversed_amount: int = 0
    """The sum of the reversals of this transfer; never above ``posted_amount``."""
    is_new: bool = False
    """Created by this transaction: persisted by INSERT rather than UPDATE."""

    def copy(self) -> TransferState:
        """A copy, for what an operation answers (a later operation of its group may change this
        one). Written out because ``dataclasses.replace`` costs several times more on the hot path;
        tests/ledger/test_state_copy.py keeps it complete."""
        return TransferState(
            self.tenant_id,
            self.id,
            self.debit_account_id,
            self.credit_account_id,
            self.amount,
            self.currency,
            self.pending,
            self.timeout_seconds,
            self.status,
            self.posted_amount,
            self.expires_at,
            self.metadata,
            self.created_at,
            self.updated_at,
            self.seq,
            self.resolved_seq,
            self.created_by_key_id,
            self.resolved_by_key_id,
            self.reverses,
            self.reversed_amount,
            self.is_new,
        )


@dataclass(slots=True)
class Leg:
    """One entry of a transaction, as requested."""

    account_id: uuid.UUID
    direction: Direction
    amount: int
    currency: str


@dataclass(slots=True)
class TransactionState:
    tenant_id: uuid.UUID
    id: uuid.UUID
    legs: list[Leg]
    pending: bool
    timeout_seconds: int
    status: TransferStatus
    expires_at: datetime | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    seq: int
    resolved_seq: int | None = None
    reverses: uuid.UUID | None = None
    reversed_by: uuid.UUID | None = None
    created_by_key_id: str | None = None
    resolved_by_key_id: str | None = None
    is_new: bool = False


@dataclass(slots=True)
class EntryRow:
    """One row of ``account_entries``: a change to one account's counters and the counters after it.
    (Not frozen: two are made per transfer, and a frozen dataclass's ``__init__`` costs twice as much.)"""

    tenant_id: uuid.UUID
    account_id: uuid.UUID
    seq: int
    at: datetime
    source_type: SourceType
    source_id: uuid.UUID
    kind: EntryKind
    direction: Direction
    amount: int
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    version: int
    event_seq: int


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """One row of ``account_changes``: the account's status, limit and metadata after a change."""

    tenant_id: uuid.UUID
    account_id: uuid.UUID
    version: int
    at: datetime
    kind: ChangeKind
    status: str
    overdraft_limit: int
    metadata: dict[str, str]
    key_id: str | None
    event_seq: int


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event of the journal (issue 12): the object as it is right after the change, already
    encoded as the canonical JSON the chain hashes (so later changes in the group cannot alter it)."""

    tenant_id: uuid.UUID
    type: EventType
    data: str


@dataclass
class LedgerState:
    """Accounts locked by one write transaction and the transfers and transactions it may change."""

    accounts: dict[Key, AccountState]
    transfers: dict[Key, TransferState]
    now: datetime
    block: int
    transactions: dict[Key, TransactionState] = field(default_factory=dict)
    entries: list[EntryRow] = field(default_factory=list)
    changes: list[ChangeRow] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    """In applied order; written last, each tenant's appended to its chain (migration 0013)."""
    heads: dict[uuid.UUID, tuple[int, str]] = field(default_factory=dict)
    """Each involved tenant's event head (seq, hash) as lock-and-read saw it, unlocked: the write
    chains the events from it and the database re-checks it under the head lock (migration 0015)."""
    changed_transfers: dict[Key, TransferState] = field(default_factory=dict)
    """Loaded (not new) transfers this transaction changed: persisted by UPDATE."""
    changed_transactions: dict[Key, TransactionState] = field(default_factory=dict)
    _event: int = 0
    _undo: list[tuple[Any, str, Any]] = field(default_factory=list)
    _touched: set[int] = field(default_factory=set)
    """The ``pk`` of each account the current operation changed (ints: cheaper to hash than keys)."""

    # -- bookkeeping -------------------------------------------------------------------------

    def next_seq(self) -> int:
        if self._event >= EVENTS_PER_BLOCK:
            raise RuntimeError("too many events for one write transaction")
        seq = self.block * EVENTS_PER_BLOCK + self._event
        self._event += 1
        return seq

    def set(self, obj: Any, attr: str, value: Any) -> None:
        """Change ``obj.attr`` with undo (every change to loaded state goes through here)."""
        self._undo.append((obj, attr, getattr(obj, attr)))
        setattr(obj, attr, value)
        if isinstance(obj, TransferState) and not obj.is_new:
            self.changed_transfers[(obj.tenant_id, obj.id)] = obj
        elif isinstance(obj, TransactionState) and not obj.is_new:
            self.changed_transactions[(obj.tenant_id, obj.id)] = obj

    def add_transfer(self, transfer: TransferState) -> None:
        key = (transfer.tenant_id, transfer.id)
        self.transfers[key] = transfer
        self._undo.append((self.transfers, "__new__", key))

    def add_transaction(self, transaction: TransactionState) -> None:
        key = (transaction.tenant_id, transaction.id)
        self.transactions[key] = transaction
        self._undo.append((self.transactions, "__new__", key))

    def checkpoint(self) -> tuple[int, int, int, int]:
        return len(self._undo), len(self.entries), len(self.changes), len(self.events)

    def rollback(self, checkpoint: tuple[int, int, int, int]) -> None:
        undo, entries, changes, events = checkpoint
        while len(self._undo) > undo:
            obj, attr, old = self._undo.pop()
            if attr == "__new__":
                del obj[old]
            else:
                setattr(obj, attr, old)
        del self.entries[entries:]
        del self.changes[changes:]
        del self.events[events:]

    def emit(self, event_type: EventType, subject: AccountState | TransferState | TransactionState) -> None:
        """Record that ``subject`` changed (call after the change: its public form is encoded now)."""
        # Imported here: the journal presents state objects, so it imports this module.
        from services.ledger.journal import event_data

        self.events.append(EventRecord(subject.tenant_id, event_type, event_data(subject)))

    def begin_operation(self) -> None:
        """Start one operation: each account it changes gets exactly one new version."""
        self._touched.clear()

    def touch(self, account: AccountState) -> None:
        if account.pk not in self._touched:
            self._touched.add(account.pk)
            self._set_account(account, "version", account.version + 1)

    def _set_account(self, account: AccountState, attr: str, value: int) -> None:
        """:meth:`set` for an account's numbers (accounts are persisted by comparing snapshots, so
        there is nothing else to record); the hot path of :meth:`move`."""
        self._undo.append((account, attr, getattr(account, attr)))
        setattr(account, attr, value)

    # -- the one way counters change -----------------------------------------------------------

    def move(
        self,
        account: AccountState,
        kind: EntryKind,
        direction: Direction,
        amount: int,
        source: tuple[SourceType, uuid.UUID],
        event_seq: int,
    ) -> None:
        """Apply one change to ``account``'s counters and record it as the account's next entry.

        ``posted`` and ``pending`` add ``amount`` to the posted or pending counter of ``direction``;
        ``pending_posted`` moves ``amount`` from pending to posted; ``pending_released`` removes it
        from pending. The caller has checked every rule; this only keeps the books.
        """
        debit = direction == "debit"
        posted_attr = "debits_posted" if debit else "credits_posted"
        pending_attr = "debits_pending" if debit else "credits_pending"
        if kind == "posted":
            self._set_account(account, posted_attr, getattr(account, posted_attr) + amount)
        elif kind == "pending":
            self._set_account(account, pending_attr, getattr(account, pending_attr) + amount)
        elif kind == "pending_posted":
            self._set_account(account, pending_attr, getattr(account, pending_attr) - amount)
            self._set_account(account, posted_attr, getattr(account, posted_attr) + amount)
        else:
            self._set_account(account, pending_attr, getattr(account, pending_attr) - amount)
        self.touch(account)
        self._set_account(account, "last_entry_seq", account.last_entry_seq + 1)
        if account.limit_allowance:
            allowance = max(0, min(account.limit_allowance, account.excess() - account.overdraft_limit))
            self._set_account(account, "limit_allowance", allowance)
        self.entries.append(
            EntryRow(
                tenant_id=account.tenant_id,
                account_id=account.id,
                seq=account.last_entry_seq,
                at=self.now,
                source_type=source[0],
                source_id=source[1],
                kind=kind,
                direction=direction,
                amount=amount,
                debits_posted=account.debits_posted,
                credits_posted=account.credits_posted,
                debits_pending=account.debits_pending,
                credits_pending=account.credits_pending,
                version=account.version,
                event_seq=event_seq,
            )
        )

    def record_change(self, account: AccountState, kind: ChangeKind, key_id: str | None) -> None:
        """Record a change of status, limit or metadata (after the caller set the new values)."""
        self.touch(account)
        self.emit("account.updated", account)
        self.changes.append(
            ChangeRow(
                tenant_id=account.tenant_id,
                account_id=account.id,
                version=account.version,
                at=self.now,
                kind=kind,
                status=account.status,
                overdraft_limit=account.overdraft_limit,
                metadata=account.metadata,
                key_id=key_id,
                event_seq=self.next_seq(),
            )
        )
