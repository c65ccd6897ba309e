"""Multi-leg transactions (docs/api.md section 8): every rule in order, all or nothing, replay,
two phases, expiry. Run once per write path (grouped and direct)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.ledger.model_support import (
    MAX,
    action,
    credit,
    debit,
    fund,
    get_account,
    new_id,
    problem,
    state,
    transaction,
)
from tests.support.http import ApiClient

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def test_fee_split_posts_every_entry_and_replays(ledger: ApiClient) -> None:
    customer, merchant, fees = [await ledger.create_account() for _ in range(3)]
    transaction_id = new_id()
    entries = [debit(customer, 10_000), credit(merchant, 9_700), credit(fees, 300)]
    created = await transaction(ledger, entries, id=transaction_id, metadata={"order": "o-1"})
    assert created.status == 201, created.body
    t = created.body
    assert t["id"] == transaction_id
    assert t["entries"] == entries
    assert (t["status"], t["metadata"], t["expires_at"], t["reversed_by"], t["reverses"]) == (
        "posted",
        {"order": "o-1"},
        None,
        [],
        None,
    )
    assert TIMESTAMP.match(t["created_at"]) and t["created_at"] == t["updated_at"]
    assert (await get_account(ledger, customer))["debits_posted"] == 10_000
    assert (await get_account(ledger, merchant))["balances"] == {"posted": 9_700, "pending": 9_700, "available": 9_700}
    assert (await get_account(ledger, fees))["credits_posted"] == 300
    for account in (customer, merchant, fees):
        assert (await get_account(ledger, account))["version"] == 1

    got = await ledger.call("GET", f"/v1/transactions/{transaction_id}")
    assert got.status == 200 and got.body == t

    # Same id, same request (defaults filled in): 200, the transaction as it is, nothing applied again.
    before = await state(ledger, customer, merchant, fees)
    for same in (
        {"metadata": {"order": "o-1"}},
        {"metadata": {"order": "o-1"}, "pending": False, "timeout_seconds": 0},
        # expected_versions is a condition on applying, not part of the request compared on replay.
        {"metadata": {"order": "o-1"}, "expected_versions": {customer["id"]: 0}},
    ):
        replay = await transaction(ledger, entries, id=transaction_id, **same)
        assert replay.status == 200, (same, replay.body)
        assert replay.body == t
    for changed_entries, fields in (
        ([debit(customer, 10_000), credit(merchant, 9_600), credit(fees, 400)], {"metadata": {"order": "o-1"}}),
        (entries, {"metadata": {}}),
        (entries, {"metadata": {"order": "o-1"}, "pending": True}),
        ([*entries[:2], credit(customer, 300)], {"metadata": {"order": "o-1"}}),
    ):
        conflict = await transaction(ledger, changed_entries, id=transaction_id, **fields)
        problem(conflict, 409, "id_conflict")
    assert await state(ledger, customer, merchant, fees) == before


async def test_transaction_ids_are_a_namespace_of_their_own(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    shared = new_id()
    assert (await ledger.transfer(a["id"], b["id"], 5, id=shared)).status == 201
    created = await transaction(ledger, [debit(a, 7), credit(b, 7)], id=shared)
    assert created.status == 201, created.body
    transfer = await ledger.call("GET", f"/v1/transfers/{shared}")
    assert transfer.status == 200 and transfer.body["amount"] == 5
    got = await ledger.call("GET", f"/v1/transactions/{shared}")
    assert got.status == 200 and got.body["entries"][0]["amount"] == 7
    assert (await get_account(ledger, a))["debits_posted"] == 12


async def test_unknown_and_other_tenants_transaction_is_404(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    created = await transaction(ledger, [debit(a, 1), credit(b, 1)])
    other = ApiClient(ledger.session, ledger.base_url, {**ledger.headers, "X-Tenant-Id": str(uuid.uuid4())})
    problem(await ledger.call("GET", f"/v1/transactions/{uuid.uuid4()}"), 404, "transaction_not_found")
    problem(await other.call("GET", f"/v1/transactions/{created.body['id']}"), 404, "transaction_not_found")
    for verb in ("post", "void", "reverse"):
        body = {"id": new_id()} if verb == "reverse" else None
        problem(await action(other, "transactions", created.body["id"], verb, body), 404, "transaction_not_found")
        problem(await action(ledger, "transactions", new_id(), verb, body), 404, "transaction_not_found")
    # Another tenant's accounts are accounts that do not exist.
    problem(await transaction(other, [debit(a, 1), credit(b, 1)]), 404, "account_not_found", index=0)


def _entries_with(**change: Any) -> list[dict[str, Any]]:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    first = {**debit(a, 10), **change}
    return [first, credit(b, 10)]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"entries": []}, id="no-entries"),
        pytest.param({"entries": "one"}, id="entries-not-a-list"),
        pytest.param({"entries": [debit(str(uuid.uuid4()), 10)]}, id="one-entry"),
        pytest.param({"entries": [debit(str(uuid.uuid4()), 1) for _ in range(101)]}, id="101-entries"),
        pytest.param({"entries": _entries_with(amount=0)}, id="amount-0"),
        pytest.param({"entries": _entries_with(amount=-10)}, id="amount-negative"),
        pytest.param({"entries": _entries_with(amount=10.0)}, id="amount-float"),
        pytest.param({"entries": _entries_with(amount="10")}, id="amount-string"),
        pytest.param({"entries": _entries_with(amount=MAX + 1)}, id="amount-too-large"),
        pytest.param({"entries": _entries_with(direction="both")}, id="direction"),
        pytest.param({"entries": _entries_with(currency="usd")}, id="currency-pattern"),
        pytest.param({"entries": _entries_with(account_id="nope")}, id="account-id-not-uuid"),
        pytest.param({"entries": _entries_with(side="left")}, id="unknown-entry-field"),
        pytest.param({"entries": [{"account_id": str(uuid.uuid4()), "amount": 1}] * 2}, id="missing-entry-fields"),
        pytest.param({"timeout_seconds": 5}, id="timeout-without-pending"),
        pytest.param({"pending": True, "timeout_seconds": 31_536_001}, id="timeout-too-long"),
        pytest.param({"metadata": {str(i): "x" for i in range(17)}}, id="metadata-17-keys"),
        pytest.param({"colour": "red"}, id="unknown-field"),
        pytest.param({"id": None}, id="id-null"),
        pytest.param({"id": "not-a-uuid"}, id="id-not-uuid"),
        pytest.param({"expected_versions": {"$first": "1"}}, id="version-string"),
        pytest.param({"expected_versions": {"$first": 1.0}}, id="version-float"),
        pytest.param({"expected_versions": {"$first": -1}}, id="version-negative"),
        pytest.param({"expected_versions": {"$first": True}}, id="version-bool"),
        pytest.param({"expected_versions": {"$first": MAX + 1}}, id="version-too-large"),
        pytest.param({"expected_versions": {"not-a-uuid": 0}}, id="version-key-not-uuid"),
        pytest.param({"expected_versions": {"$other": 0}}, id="version-of-an-account-not-in-entries"),
    ],
)
async def test_invalid_requests_are_400_and_write_nothing(ledger: ApiClient, body: dict[str, Any]) -> None:
    a, b, c = [await ledger.create_account() for _ in range(3)]
    await fund(ledger, a, 50)
    request: dict[str, Any] = {"id": new_id(), "entries": [debit(a, 10), credit(b, 10)]}
    for key, value in body.items():
        if key == "entries" and isinstance(value, list):
            # Point generated entries at real accounts so that only the defect under test remains.
            value = [
                {**e, "account_id": [a, b][i % 2]["id"]}
                if isinstance(e, dict) and "account_id" in e and e["account_id"] != "nope"
                else e
                for i, e in enumerate(value)
            ]
        if key == "expected_versions":
            value = {k.replace("$first", a["id"]).replace("$other", c["id"]): v for k, v in value.items()}
        if value is None:
            request.pop(key)
        else:
            request[key] = value
    before = await state(ledger, a, b, c)
    reply = await ledger.call("POST", "/v1/transactions", request)
    problem(reply, 400, "invalid_request")
    assert await state(ledger, a, b, c) == before
    if isinstance(request.get("id"), str) and len(request["id"]) == 36:
        problem(await ledger.call("GET", f"/v1/transactions/{request['id']}"), 404, "transaction_not_found")


async def test_two_and_a_hundred_entries_are_the_bounds(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    assert (await transaction(ledger, [debit(a, 1), credit(b, 1)])).status == 201
    many = [debit(a, 1) for _ in range(50)] + [credit(b, 1) for _ in range(50)]
    reply = await transaction(ledger, many)
    assert reply.status == 201, reply.body
    assert len(reply.body["entries"]) == 100
    got = await get_account(ledger, a)
    # One operation touching an account in fifty entries changes its version once.
    assert (got["debits_posted"], got["version"]) == (51, 2)


async def test_unbalanced_per_currency_is_422_before_account_checks(ledger: ApiClient) -> None:
    usd_a, usd_b = await ledger.create_account("USD"), await ledger.create_account("USD")
    eur_a, eur_b = await ledger.create_account("EUR"), await ledger.create_account("EUR")
    ghost = str(uuid.uuid4())
    before = await state(ledger, usd_a, usd_b, eur_a, eur_b)
    cases = [
        [debit(usd_a, 100), credit(usd_b, 90)],
        [debit(usd_a, 100), credit(usd_b, 90), credit(usd_b, 11)],
        # Balanced in total but not per currency.
        [debit(usd_a, 100, "USD"), credit(eur_b, 100, "EUR")],
        [debit(usd_a, 100), credit(usd_b, 100), debit(eur_a, 5, "EUR"), credit(eur_b, 4, "EUR")],
        # Only debits; only credits.
        [debit(usd_a, 1), debit(usd_b, 1)],
        [credit(usd_a, 1), credit(usd_b, 1)],
        # unbalanced is checked before existence and currency.
        [debit(ghost, 10), credit(usd_b, 9)],
        [debit(usd_a, 10, "EUR"), credit(usd_b, 9, "EUR")],
        # Sums above 2^63-1 are still compared exactly.
        [debit(usd_a, MAX), debit(usd_a, MAX), credit(usd_b, MAX), credit(usd_b, MAX - 1)],
    ]
    for entries in cases:
        problem(await transaction(ledger, entries), 422, "unbalanced")
    assert await state(ledger, usd_a, usd_b, eur_a, eur_b) == before
    balanced = [debit(usd_a, 100), credit(usd_b, 100), debit(eur_a, 5, "EUR"), credit(eur_b, 5, "EUR")]
    assert (await transaction(ledger, balanced)).status == 201


async def test_replay_is_checked_before_unbalanced(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    transaction_id = new_id()
    assert (await transaction(ledger, [debit(a, 3), credit(b, 3)], id=transaction_id)).status == 201
    problem(await transaction(ledger, [debit(a, 3), credit(b, 2)], id=transaction_id), 409, "id_conflict")


async def test_account_not_found_names_the_first_missing_entry(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    eur = await ledger.create_account("EUR")
    ghost1, ghost2 = str(uuid.uuid4()), str(uuid.uuid4())
    before = await state(ledger, a, b, eur)
    problem(await transaction(ledger, [debit(ghost1, 5), credit(b, 5)]), 404, "account_not_found", index=0)
    missing = await transaction(ledger, [debit(a, 5), credit(b, 2), credit(ghost1, 2), credit(ghost2, 1)])
    problem(missing, 404, "account_not_found", index=2)
    assert [e.get("index") for e in missing.body["errors"]][:1] == [2]
    # Existence of every entry's account is checked before any entry's currency.
    problem(
        await transaction(ledger, [debit(eur, 5), credit(b, 2), credit(ghost2, 3)]), 404, "account_not_found", index=2
    )
    assert await state(ledger, a, b, eur) == before


async def test_currency_mismatch_names_the_entry(ledger: ApiClient) -> None:
    usd_a, usd_b = await ledger.create_account("USD"), await ledger.create_account("USD")
    eur = await ledger.create_account("EUR")
    before = await state(ledger, usd_a, usd_b, eur)
    problem(
        await transaction(ledger, [debit(usd_a, 5), credit(usd_b, 3), credit(eur, 2)]),
        422,
        "currency_mismatch",
        index=2,
    )
    problem(
        await transaction(ledger, [debit(usd_a, 5, "EUR"), credit(eur, 5, "EUR")]), 422, "currency_mismatch", index=0
    )
    # The same account in two entries with mixed currencies: each entry's currency must be its account's.
    mixed = [debit(usd_a, 10), credit(usd_b, 10), debit(usd_a, 5, "EUR"), credit(eur, 5, "EUR")]
    problem(await transaction(ledger, mixed), 422, "currency_mismatch", index=2)
    assert await state(ledger, usd_a, usd_b, eur) == before


async def test_limits_are_checked_on_each_accounts_state_after_all_its_entries(ledger: ApiClient) -> None:
    guarded = await ledger.create_account(flags={"debits_must_not_exceed_credits": True})
    capped = await ledger.create_account(flags={"credits_must_not_exceed_debits": True})
    source, sink = await ledger.create_account(), await ledger.create_account()
    # Debited before it is credited within the same transaction: judged on the final state, it fits.
    through = [debit(guarded, 50), credit(sink, 50), debit(source, 50), credit(guarded, 50)]
    reply = await transaction(ledger, through)
    assert reply.status == 201, reply.body
    assert (await get_account(ledger, guarded))["balances"]["posted"] == 0
    # Credited before it is debited: the capped account fits too.
    mirrored = [credit(capped, 40), debit(source, 40), debit(capped, 40), credit(sink, 40)]
    assert (await transaction(ledger, mirrored)).status == 201

    before = await state(ledger, guarded, capped, source, sink)
    over = [debit(guarded, 51), credit(sink, 51), debit(source, 50), credit(guarded, 50)]
    problem(await transaction(ledger, over), 422, "exceeds_credits")
    problem(await transaction(ledger, [credit(capped, 41), debit(capped, 40), debit(source, 1)]), 422, "exceeds_debits")
    # exceeds_credits is checked before exceeds_debits.
    problem(await transaction(ledger, [debit(guarded, 1), credit(capped, 1)]), 422, "exceeds_credits")
    assert await state(ledger, guarded, capped, source, sink) == before


async def test_overflow_on_the_final_state(ledger: ApiClient) -> None:
    a, b, c = [await ledger.create_account() for _ in range(3)]
    before = await state(ledger, a, b, c)
    # Each entry fits; their sum on b does not.
    problem(await transaction(ledger, [debit(a, MAX), debit(c, 1), credit(b, MAX), credit(b, 1)]), 422, "overflow")
    assert await state(ledger, a, b, c) == before
    assert (await transaction(ledger, [debit(a, MAX), credit(b, MAX)])).status == 201
    problem(await transaction(ledger, [debit(c, 1), credit(b, 1)]), 422, "overflow")
    # Pending plus posted may not pass 2^63-1 either.
    problem(await transaction(ledger, [debit(a, 1), credit(c, 1)], pending=True), 422, "overflow")


async def test_all_or_nothing(ledger: ApiClient) -> None:
    guarded = await ledger.create_account(flags={"debits_must_not_exceed_credits": True})
    a, b, c = [await ledger.create_account() for _ in range(3)]
    transaction_id = new_id()
    entries = [debit(a, 10), credit(b, 10), debit(guarded, 5), credit(c, 5)]
    before = await state(ledger, guarded, a, b, c)
    problem(await transaction(ledger, entries, id=transaction_id), 422, "exceeds_credits")
    assert await state(ledger, guarded, a, b, c) == before
    problem(await ledger.call("GET", f"/v1/transactions/{transaction_id}"), 404, "transaction_not_found")
    # A refused transaction is not stored: the same id is evaluated afresh.
    await fund(ledger, guarded, 5)
    retried = await transaction(ledger, entries, id=transaction_id)
    assert retried.status == 201, retried.body
    assert [(await get_account(ledger, x))["balances"]["posted"] for x in (guarded, a, b, c)] == [0, -10, 10, 5]


async def test_version_mismatch_names_the_current_version(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    assert (await ledger.transfer(a["id"], b["id"], 1)).status == 201
    before = await state(ledger, a, b)
    wrong = await transaction(ledger, [debit(a, 2), credit(b, 2)], expected_versions={a["id"]: 0})
    problem(wrong, 422, "version_mismatch")
    assert "1" in wrong.body["detail"]
    assert await state(ledger, a, b) == before
    right = await transaction(ledger, [debit(a, 2), credit(b, 2)], expected_versions={a["id"]: 1, b["id"]: 1})
    assert right.status == 201, right.body
    assert [(await get_account(ledger, x))["version"] for x in (a, b)] == [2, 2]


async def test_rule_order_after_existence(ledger: ApiClient) -> None:
    """currency_mismatch, account_closed, account_frozen, version_mismatch, exceeds_credits,
    exceeds_debits, overflow: a request failing several answers the first."""
    eur = await ledger.create_account("EUR")
    closed = await ledger.create_account()
    frozen = await ledger.create_account(flags={"debits_must_not_exceed_credits": True})
    guarded = await ledger.create_account(flags={"debits_must_not_exceed_credits": True})
    capped = await ledger.create_account(flags={"credits_must_not_exceed_debits": True})
    full = await ledger.create_account()
    source, plain = await ledger.create_account(), await ledger.create_account()
    assert (await ledger.transfer(source["id"], full["id"], MAX)).status == 201
    assert (await action(ledger, "accounts", closed["id"], "close")).status == 200
    assert (await action(ledger, "accounts", frozen["id"], "freeze")).status == 200
    cases = [
        (
            [debit(closed, 5), credit(frozen, 5), debit(source, 5, "EUR"), credit(eur, 5, "EUR")],
            {},
            "currency_mismatch",
        ),
        ([debit(closed, 5), credit(frozen, 5)], {}, "account_closed"),
        ([debit(frozen, 5), credit(guarded, 5)], {"expected_versions": {guarded["id"]: 9}}, "account_frozen"),
        ([debit(guarded, 5), credit(capped, 5)], {"expected_versions": {capped["id"]: 9}}, "version_mismatch"),
        ([debit(guarded, 5), credit(capped, 5), debit(plain, 1), credit(full, 1)], {}, "exceeds_credits"),
        ([debit(plain, 5), credit(capped, 5), debit(plain, 1), credit(full, 1)], {}, "exceeds_debits"),
        ([debit(plain, 5), credit(guarded, 4), credit(full, 1)], {}, "overflow"),
    ]
    everyone = (eur, closed, frozen, guarded, capped, full, source, plain)
    before = await state(ledger, *everyone)
    for entries, fields, code in cases:
        problem(await transaction(ledger, entries, **fields), 422, code)
    assert await state(ledger, *everyone) == before


async def test_account_closed_before_account_frozen_across_entries(ledger: ApiClient) -> None:
    """The decided order is rule by rule over all entries: a closed account in a later entry
    answers account_closed even when an earlier entry's account is frozen."""
    frozen, closed = await ledger.create_account(), await ledger.create_account()
    assert (await action(ledger, "accounts", frozen["id"], "freeze")).status == 200
    assert (await action(ledger, "accounts", closed["id"], "close")).status == 200
    before = await state(ledger, frozen, closed)
    problem(await transaction(ledger, [debit(frozen, 5), credit(closed, 5)]), 422, "account_closed")
    assert await state(ledger, frozen, closed) == before


async def test_limit_rules_in_order_across_accounts(ledger: ApiClient) -> None:
    """exceeds_credits, then exceeds_debits, then overflow, each over every account, whatever the
    order of the accounts' entries."""
    guarded = await ledger.create_account(flags={"debits_must_not_exceed_credits": True})
    capped = await ledger.create_account(flags={"credits_must_not_exceed_debits": True})
    maxed, source, plain = [await ledger.create_account() for _ in range(3)]
    assert (await ledger.transfer(source["id"], maxed["id"], MAX)).status == 201
    before = await state(ledger, guarded, capped, maxed, plain)
    # The capped account (exceeds_debits) and the full one (overflow) come first.
    entries = [credit(capped, 5), credit(maxed, 5), debit(guarded, 10)]
    problem(await transaction(ledger, entries), 422, "exceeds_credits")
    entries = [credit(maxed, 5), credit(capped, 5), debit(plain, 10)]
    problem(await transaction(ledger, entries), 422, "exceeds_debits")
    assert await state(ledger, guarded, capped, maxed, plain) == before


async def test_entries_appear_in_each_touched_accounts_history(ledger: ApiClient) -> None:
    a, b = await ledger.create_account(), await ledger.create_account()
    held = await transaction(ledger, [debit(a, 5), credit(b, 3), credit(b, 2)], pending=True)
    assert held.status == 201
    assert (await action(ledger, "transactions", held.body["id"], "post")).status == 200
    source = {"type": "transaction", "id": held.body["id"]}
    got = (await ledger.call("GET", f"/v1/accounts/{b['id']}/entries")).body["data"]
    assert [(e["source"], e["kind"], e["direction"], e["amount"]) for e in got] == [
        (source, "pending", "credit", 3),
        (source, "pending", "credit", 2),
        (source, "pending_posted", "credit", 3),
        (source, "pending_posted", "credit", 2),
    ]
    assert got[-1]["balances"] == (await get_account(ledger, b))["balances"]
    got = (await ledger.call("GET", f"/v1/accounts/{a['id']}/entries")).body["data"]
    assert [(e["kind"], e["direction"], e["amount"]) for e in got] == [
        ("pending", "debit", 5),
        ("pending_posted", "debit", 5),
    ]
