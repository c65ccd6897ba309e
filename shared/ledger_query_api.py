"""The ledger's public response bodies of the read side, docs/api.md section 11 ("Finding things"),
as msgspec Structs.

The objects inside the pages (accounts, transfers, transactions) and the derived ``balances`` are
those of :mod:`shared.ledger_api`, so a list shows exactly what the single-object reads show.
Requests of these endpoints are query strings only; the ledger parses them
(``services/ledger/query_routes.py``). In ``shared/`` with the other public bodies (ADR 0004).
"""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec
from msgspec import Struct

from shared.ledger_api import Account, Balances, Direction, Transaction, Transfer

EntryKind = Literal["posted", "pending", "pending_posted", "pending_released"]
SourceType = Literal["transfer", "transaction"]


class TransferPage(Struct):
    data: list[Transfer]
    next_cursor: str | None


class TransactionPage(Struct):
    data: list[Transaction]
    next_cursor: str | None


class AccountPage(Struct):
    data: list[Account]
    next_cursor: str | None


class EntrySource(Struct):
    type: SourceType
    id: uuid.UUID


class AccountEntry(Struct):
    """One change to an account's counters; ``balances`` is the account's state right after it."""

    seq: int
    """1, 2, 3... per account, in applied order."""
    at: str
    source: EntrySource
    kind: EntryKind
    direction: Direction
    amount: int
    balances: Balances


class EntryPage(Struct):
    data: list[AccountEntry]
    next_cursor: str | None


class Statement(Struct):
    """The half-open period [from, to): ``opening`` + the period's posted totals = ``closing``."""

    account_id: uuid.UUID
    from_: str = msgspec.field(name="from")
    to: str
    opening: Balances
    closing: Balances
    debits_posted: int
    """Posted debits in the period: closing's ``debits_posted`` counter minus opening's."""
    credits_posted: int
    entries_count: int


class BalancesAt(Struct):
    """All four counters and the three balances as of ``at`` (inclusive)."""

    account_id: uuid.UUID
    at: str
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    balances: Balances
