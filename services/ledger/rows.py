"""How ledger rows become the write path's state objects: the transfer columns every reader selects
and the mapping of a row to :class:`~services.ledger.state.TransferState`,
:class:`~services.ledger.state.TransactionState` or :class:`~services.ledger.state.AccountState`.

Shared by the writes (:mod:`.store`'s lock-and-read) and the reads (:mod:`.reads`, :mod:`.queries`),
so that neither imports the other: a row is read one way wherever it is read.
"""

from __future__ import annotations

import uuid
from dataclasses import fields

import asyncpg

from services.ledger.state import AccountState, Leg, TransactionState, TransferState


def _stored(cls: type, *computed: str) -> tuple[str, ...]:
    """``cls``'s fields in declaration order, less those not read from a column as they are."""
    return tuple(f.name for f in fields(cls) if f.name not in computed)


TRANSFER_FIELDS = _stored(TransferState, "is_new")
"""A transfer row's columns, named and ordered as :class:`TransferState`'s fields."""

TRANSFER_COLUMNS = ", ".join(f"t.{name}" for name in TRANSFER_FIELDS)
"""The columns of a transfer row (table aliased ``t``) that :func:`transfer_from_row` reads."""

_ACCOUNT_FIELDS = _stored(AccountState)
_TRANSACTION_FIELDS = _stored(TransactionState, "legs", "is_new")


def transfer_from_row(row: asyncpg.Record) -> TransferState:
    return TransferState(*map(row.__getitem__, TRANSFER_FIELDS))


def transaction_from_row(row: asyncpg.Record) -> TransactionState:
    legs = [Leg(uuid.UUID(e["account_id"]), e["direction"], e["amount"], e["currency"]) for e in row["entries"]]
    return TransactionState(legs=legs, **{name: row[name] for name in _TRANSACTION_FIELDS})


def account_state_from_row(row: asyncpg.Record) -> AccountState:
    return AccountState(*map(row.__getitem__, _ACCOUNT_FIELDS))
