"""Request and response examples of the OpenAPI document, taken from the README walkthrough.

One story runs through them: a tenant logs in, opens a debit-normal funding account (``BANK``) and
two wallets (``ALICE``, who may not go negative, and ``BOB``), funds Alice with 10000, pays Bob
2500, is refused a 999999 payment (422 ``exceeds_credits``), reads balances and history, logs out.
The numbers agree with each other (Alice ends at 7500), so a reader can follow the walkthrough in
the document alone. Balances are derived by the ledger's rule (:func:`shared.ledger_api.balances_of`).

Invariants: every example validates against its schema (tests/gateway/test_openapi.py checks it),
and problem examples are built by :class:`shared.errors.ProblemError` itself, so they have exactly
the form the services answer with. Ids are fixed, so the document is byte-for-byte stable.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shared.errors import ErrorCode, ProblemError
from shared.ledger_api import balances_of

TENANT = "5b2f8c3e-1a4d-4e7b-9c6f-0d3a2e1b4c58"
BANK = "6a0e1d52-3f4b-4c1e-9a57-0c1b5e2d7a10"
ALICE = "8d3b9f4e-2c71-4e0a-b6d5-41f7a9c3e812"
BOB = "c25e7a19-94d3-4b8f-a0e6-7f3d2b1c5e94"
FUND_ALICE = "3f9c1e27-5b8a-4d6f-9e02-a7c4b3d1f058"
PAY_BOB = "b7e4d2a1-6c3f-4a9e-8d15-2f0b9c7e3a64"
REFUSED = "e1a5c8f3-7d2b-4f6e-b9a0-5c3e1d8f2b47"
HOLD = "0c4b7e2f-8a1d-4d3c-9b6e-5f2a1c0d7e93"
API_KEY = "ak_3f1c9e0b7a2d4c6e8f0a1b2c.Zq9XlG7mN2vR5tY8wB1cD4eF6hJ0kL3pS9uA2oI7nM4"
TOKEN = "st_Vd8kQ2rT6yU0iO4pA7sD1fG5hJ9kL3zX6cV0bN8mQ2w"
REQUEST_ID = "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"

_OPENED = "2026-12-03T09:30:00.000000Z"
_FUNDED = "2026-12-03T09:30:05.000000Z"
_PAID = "2026-12-03T09:30:09.000000Z"


def example(summary: str, value: Any) -> dict[str, Any]:
    return {"summary": summary, "value": value}


def problem(code: ErrorCode, detail: str, **kwargs: Any) -> dict[str, Any]:
    """A problem body exactly as the services encode it."""
    built: dict[str, Any] = msgspec.to_builtins(ProblemError(code, detail, **kwargs).to_problem(REQUEST_ID))
    return built


def _account(
    account_id: str, normal_balance: str, debits: int, credits: int, *, no_overdraft: bool = False, version: int = 1
) -> dict[str, Any]:
    # The ledger's own rule (which side is positive for a debit-normal account), never a copy of it.
    balances = msgspec.to_builtins(balances_of(normal_balance, debits, credits, 0, 0))
    return {
        "id": account_id,
        "currency": "USD",
        "normal_balance": normal_balance,
        "flags": {"debits_must_not_exceed_credits": no_overdraft, "credits_must_not_exceed_debits": False},
        "metadata": {},
        "created_at": _OPENED,
        "debits_posted": debits,
        "credits_posted": credits,
        "debits_pending": 0,
        "credits_pending": 0,
        "balances": balances,
        "status": "open",
        "overdraft_limit": 0,
        "version": version,
    }


def _transfer(transfer_id: str, debit: str, credit: str, amount: int, at: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": transfer_id,
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "currency": "USD",
        "status": "posted",
        "posted_amount": amount,
        "expires_at": None,
        "metadata": {},
        "created_at": at,
        "updated_at": at,
        "reverses": None,
        "reversed_amount": 0,
        **changes,
    }


BANK_ACCOUNT = _account(BANK, "debit", debits=10000, credits=0)
ALICE_ACCOUNT = _account(ALICE, "credit", debits=2500, credits=10000, no_overdraft=True, version=2)
BOB_ACCOUNT = _account(BOB, "credit", debits=0, credits=2500)
FUNDING = _transfer(FUND_ALICE, BANK, ALICE, 10000, _FUNDED)
PAYMENT = _transfer(PAY_BOB, ALICE, BOB, 2500, _PAID)
PENDING = _transfer(HOLD, ALICE, BOB, 1000, _PAID, status="pending", posted_amount=0)
_REFUSAL = problem(ErrorCode.EXCEEDS_CREDITS, "debits would exceed credits on the debit account", field="amount")


def _create(transfer_id: str, debit: str, credit: str, amount: int) -> dict[str, Any]:
    return {
        "id": transfer_id,
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "currency": "USD",
    }


REQUESTS: dict[str, dict[str, Any]] = {
    "LoginRequest": {"login": example("An API key from `./scripts/admin create-tenant`", {"api_key": API_KEY})},
    "AccountCreate": {
        "funding": example("A debit-normal funding account", {"currency": "USD", "normal_balance": "debit"}),
        "wallet": example(
            "A customer wallet that may not go negative",
            {"currency": "USD", "flags": {"debits_must_not_exceed_credits": True}},
        ),
        "plain": example("A plain credit-normal account", {"currency": "USD"}),
    },
    "TransferCreate": {
        "fund": example("Fund Alice's wallet with $100.00", _create(FUND_ALICE, BANK, ALICE, 10000)),
        "pay": example("Alice pays Bob $25.00", _create(PAY_BOB, ALICE, BOB, 2500)),
        "overdraft": example("More than Alice has: 422 exceeds_credits", _create(REFUSED, ALICE, BOB, 999999)),
        "hold": example(
            "Reserve $10.00 for an hour (two-phase)",
            {**_create(HOLD, ALICE, BOB, 1000), "pending": True, "timeout_seconds": 3600},
        ),
    },
    "BatchCreate": {
        "atomic": example(
            "Fund Alice and pay Bob, all or nothing",
            {
                "transfers": [_create(FUND_ALICE, BANK, ALICE, 10000), _create(PAY_BOB, ALICE, BOB, 2500)],
                "atomic": True,
            },
        )
    },
    "PendingPost": {
        "partial": example("Post $6.00 of the $10.00 hold", {"amount": 600}),
        "whole": example("Post the whole hold", {}),
    },
}

RESPONSES: dict[str, dict[str, Any]] = {
    "SessionCreated": {
        "session": example(
            "A session for 15 minutes",
            {"token": TOKEN, "expires_at": "2026-12-03T09:44:58.123456Z", "tenant_id": TENANT},
        )
    },
    "Account": {
        "alice": example("Alice after the walkthrough: 10000 in, 2500 out", ALICE_ACCOUNT),
        "bank": example("The funding account (debit-normal)", BANK_ACCOUNT),
    },
    "AccountPage": {
        "accounts": example(
            "The tenant's accounts", {"data": [BANK_ACCOUNT, ALICE_ACCOUNT, BOB_ACCOUNT], "next_cursor": None}
        )
    },
    "Transfer": {"funding": example("Alice funded", FUNDING), "pending": example("A pending hold", PENDING)},
    "TransferPage": {
        "history": example("Alice's history, in applied order", {"data": [FUNDING, PAYMENT], "next_cursor": None})
    },
    "BalanceAt": {
        "alice": example(
            "Alice's balances after both transfers",
            {
                "account_id": ALICE,
                "at": _PAID,
                "debits_posted": 2500,
                "credits_posted": 10000,
                "debits_pending": 0,
                "credits_pending": 0,
                "balances": {"posted": 7500, "pending": 7500, "available": 7500},
            },
        )
    },
    "BatchData": {"applied": example("Both transfers applied", {"data": [FUNDING, PAYMENT]})},
    "BatchResults": {
        "mixed": example(
            "The first item applied, the second refused",
            {
                "results": [
                    {"index": 0, "status": 201, "transfer": FUNDING},
                    {
                        "index": 1,
                        "status": 422,
                        "error": {
                            "code": "exceeds_credits",
                            "detail": "debits would exceed credits on the debit account",
                        },
                    },
                ]
            },
        )
    },
}

PROBLEMS: dict[int, dict[str, Any]] = {
    400: example("A malformed body", problem(ErrorCode.INVALID_REQUEST, "Expected `int`, got `str`", field="$.amount")),
    401: example("No valid session", problem(ErrorCode.UNAUTHORIZED, "missing, unknown, expired or revoked token")),
    404: example("Not one of the tenant's accounts", problem(ErrorCode.ACCOUNT_NOT_FOUND, "no such account")),
    409: example(
        "Same id, another request",
        problem(ErrorCode.ID_CONFLICT, "this id was used for a different transfer", field="id"),
    ),
    413: example("Over 4 MiB", problem(ErrorCode.PAYLOAD_TOO_LARGE, "request body exceeds 4194304 bytes")),
    415: example("Not JSON", problem(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "request body must be application/json")),
    422: example("The walkthrough's refused transfer", _REFUSAL),
    429: example("Over the tenant's rate", problem(ErrorCode.RATE_LIMITED, "rate limit exceeded; retry after 1 s")),
    503: example("A dependency is down", problem(ErrorCode.UNAVAILABLE, "ledger unavailable")),
}

PARAMETERS: dict[str, Any] = {
    "account_id": ALICE,
    "transfer_id": FUND_ALICE,
    "at": _PAID,
    "currency": "USD",
    "limit": 100,
    "Idempotency-Key": "fund-alice-1",
}
