"""``TransferState.copy`` is written out field by field for speed: it must copy every field, so
that what an operation answers is exactly the transfer as that operation left it."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from services.ledger.state import TransferState


def test_copy_has_every_field_and_is_a_separate_object() -> None:
    now = datetime.now(UTC)
    original = TransferState(
        tenant_id=uuid.uuid4(),
        id=uuid.uuid4(),
        debit_account_id=uuid.uuid4(),
        credit_account_id=uuid.uuid4(),
        amount=70,
        currency="EUR",
        pending=True,
        timeout_seconds=30,
        status="pending",
        posted_amount=5,
        expires_at=now + timedelta(seconds=30),
        metadata={"k": "v"},
        created_at=now,
        updated_at=now + timedelta(seconds=1),
        seq=11,
        resolved_seq=12,
        created_by_key_id="key-a",
        resolved_by_key_id="key-b",
        reverses=uuid.uuid4(),
        reversed_amount=3,
        is_new=True,
    )
    # Every field was given a value different from its default, so a field the copy forgot would
    # come back as its default and differ.
    for f in dataclasses.fields(TransferState):
        if f.default is not dataclasses.MISSING:
            assert getattr(original, f.name) != f.default, f.name
    copied = original.copy()
    assert copied is not original
    assert dataclasses.asdict(copied) == dataclasses.asdict(original)
    copied.status = "posted"
    assert original.status == "pending"
