"""Examples of docs/api.md sections 8-12, continuing the README walkthrough of :mod:`.openapi_examples`.

After step 5 (Alice 7500, Bob 2500) the walkthrough goes on: a fees account is opened and Alice
pays Bob 5000 as one transaction that takes a 150 fee (a fee split: Bob gets 4850); Bob refunds
1000 of Alice's first payment (a partial reversal); Bob's wallet is frozen, so a payment to it is
refused (422 ``account_frozen``), and unfrozen. The numbers agree with each other and with the
first part (Alice ends at 3500, Bob at 6350, the fees account at 150), and every example validates
against its schema (tests/gateway/test_openapi.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from services.gateway.openapi_examples import ALICE, BOB, PAY_BOB, PAYMENT, _account, _transfer, example

FEES = "f3b1d6a2-7c4e-4b9a-8e15-9d0c2a6f4e73"
FEE_SPLIT = "a9c5e1f7-2b4d-4e8a-9c36-1f7b3d5e9a20"
REFUND = "d4e8a2c6-9f1b-4c7d-a305-6b2e8f4a1c97"
ENDPOINT = "7e2c9a41-5d3f-4b8e-9a16-c0d4e2f7b385"

_SPLIT_AT = "2026-12-03T09:31:00.000000Z"
_REFUND_AT = "2026-12-03T09:32:00.000000Z"
_FROZEN_AT = "2026-12-03T09:33:00.000000Z"

_ENTRIES = [
    {"account_id": ALICE, "direction": "debit", "amount": 5000, "currency": "USD"},
    {"account_id": BOB, "direction": "credit", "amount": 4850, "currency": "USD"},
    {"account_id": FEES, "direction": "credit", "amount": 150, "currency": "USD"},
]
TRANSACTION = {
    "id": FEE_SPLIT,
    "entries": _ENTRIES,
    "status": "posted",
    "metadata": {"order": "1042"},
    "expires_at": None,
    "created_at": _SPLIT_AT,
    "updated_at": _SPLIT_AT,
    "reversed_by": [],
    "reverses": None,
}
REFUND_TRANSFER = _transfer(REFUND, BOB, ALICE, 1000, _REFUND_AT, reverses=PAY_BOB)
# Bob: +2500 (payment), +4850 (split), -1000 (refund), then frozen: version 4.
BOB_FROZEN = {**_account(BOB, "credit", debits=1000, credits=7350, version=4), "status": "frozen"}
ALICE_PATCHED = {
    **_account(ALICE, "credit", debits=7500, credits=11000, no_overdraft=True, version=5),
    "metadata": {"customer": "c-77"},
    "overdraft_limit": 2000,
}


def _event(seq: int, prev_hash: str, kind: str, at: str, data: dict[str, Any]) -> dict[str, Any]:
    event = {"seq": seq, "type": kind, "occurred_at": at, "data": data, "prev_hash": prev_hash}
    canonical = msgspec.json.encode(event, order="sorted")
    return {**event, "hash": hashlib.sha256(prev_hash.encode() + canonical).hexdigest()}


_SPLIT_EVENT = _event(9, "3c" * 32, "transaction.created", _SPLIT_AT, TRANSACTION)
_REFUND_EVENT = _event(10, _SPLIT_EVENT["hash"], "transfer.created", _REFUND_AT, REFUND_TRANSFER)
_ENDPOINT = {
    "id": ENDPOINT,
    "url": "https://hooks.example.com/ledger",
    "event_types": ["transfer.*", "transaction.*"],
    "status": "enabled",
    "created_at": _FROZEN_AT,
}

REQUESTS: dict[str, dict[str, Any]] = {
    "TransactionCreate": {
        "fee_split": example(
            "Alice pays Bob $50.00, $1.50 of it a fee (one atomic record)",
            {"id": FEE_SPLIT, "entries": _ENTRIES, "metadata": {"order": "1042"}},
        )
    },
    "TransferReverse": {
        "refund": example("Refund $10.00 of Alice's payment to Bob", {"id": REFUND, "amount": 1000}),
        "whole": example("Reverse all that is left", {"id": REFUND}),
    },
    "TransactionReverse": {"reverse": example("Undo the fee split", {"id": "5b8d2f6e-1a9c-4e3b-8d70-2c4f6a8e0b19"})},
    "AccountPatch": {
        "limit": example(
            "Give Alice a $20.00 credit line, only if nothing changed since version 4",
            {"overdraft_limit": 2000, "metadata": {"customer": "c-77"}, "expected_versions": {ALICE: 4}},
        )
    },
    "WebhookEndpointCreate": {
        "hooks": example(
            "Every transfer and transaction event", {"url": _ENDPOINT["url"], "event_types": _ENDPOINT["event_types"]}
        )
    },
}

RESPONSES: dict[str, dict[str, Any]] = {
    "Transaction": {"fee_split": example("The fee split, posted", TRANSACTION)},
    "TransactionPage": {"split": example("Alice's transactions", {"data": [TRANSACTION], "next_cursor": None})},
    "Transfer": {"refund": example("The refund: Bob to Alice, reversing the payment", REFUND_TRANSFER)},
    "TransferPage": {
        "reversed": example(
            "Transfers touching Bob, newest first",
            {"data": [REFUND_TRANSFER, {**PAYMENT, "reversed_amount": 1000}], "next_cursor": None},
        )
    },
    "Account": {"frozen": example("Bob's wallet, frozen", BOB_FROZEN), "patched": example("Alice", ALICE_PATCHED)},
    "EntryPage": {
        "bob": example(
            "Bob's last two changes, with running balances",
            {
                "data": [
                    {
                        "seq": 2,
                        "at": _SPLIT_AT,
                        "source": {"type": "transaction", "id": FEE_SPLIT},
                        "kind": "posted",
                        "direction": "credit",
                        "amount": 4850,
                        "balances": {"posted": 7350, "pending": 7350, "available": 7350},
                    },
                    {
                        "seq": 3,
                        "at": _REFUND_AT,
                        "source": {"type": "transfer", "id": REFUND},
                        "kind": "posted",
                        "direction": "debit",
                        "amount": 1000,
                        "balances": {"posted": 6350, "pending": 6350, "available": 6350},
                    },
                ],
                "next_cursor": None,
            },
        )
    },
    "Statement": {
        "bob": example(
            "Bob's statement for the morning",
            {
                "account_id": BOB,
                "from": "2026-12-03T00:00:00.000000Z",
                "to": "2026-12-03T12:00:00.000000Z",
                "opening": {"posted": 0, "pending": 0, "available": 0},
                "closing": {"posted": 6350, "pending": 6350, "available": 6350},
                "debits_posted": 1000,
                "credits_posted": 7350,
                "entries_count": 3,
            },
        )
    },
    "EventPage": {"events": example("Two events, chained", {"data": [_SPLIT_EVENT, _REFUND_EVENT]})},
    "WebhookEndpoint": {"hooks": example("An endpoint", _ENDPOINT)},
    "WebhookEndpointCreated": {
        "hooks": example(
            "Created, with its secret",
            {**{k: v for k, v in _ENDPOINT.items() if k != "status"}, "secret": "whsec_MfKQ9r3Fw8bT5nZ1xY7cV2aL"},
        )
    },
    "WebhookEndpointPage": {"hooks": example("The tenant's endpoints", {"data": [_ENDPOINT], "next_cursor": None})},
    "WebhookDeliveryPage": {
        "attempts": example(
            "A failed attempt, then a delivered one",
            {
                "data": [
                    {
                        "event_seq": 10,
                        "event_type": "transfer.created",
                        "attempt": 1,
                        "status": "failed",
                        "response_code": 502,
                        "error": None,
                        "duration_ms": 131,
                        "attempted_at": _REFUND_AT,
                    },
                    {
                        "event_seq": 10,
                        "event_type": "transfer.created",
                        "attempt": 2,
                        "status": "succeeded",
                        "response_code": 200,
                        "error": None,
                        "duration_ms": 48,
                        "attempted_at": _FROZEN_AT,
                    },
                ],
                "next_cursor": None,
            },
        )
    },
}

PARAMETERS: dict[str, Any] = {
    "transaction_id": FEE_SPLIT,
    "endpoint_id": ENDPOINT,
    "wait": 30,
    "after": 8,
    "order": "desc",
    "transfer_status": "posted",
    "account_status": "frozen",
}
