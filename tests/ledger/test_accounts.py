"""Accounts through the ledger's HTTP API: create (idempotent on id), get, list with cursors."""

from __future__ import annotations

import re
import uuid

import asyncpg

from tests.support.http import ApiClient

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def test_create_account_fills_defaults_and_derives_balances(ledger: ApiClient) -> None:
    reply = await ledger.call("POST", "/v1/accounts", {"currency": "USD"})
    assert reply.status == 201
    account = reply.body
    uuid.UUID(account["id"])
    assert account["normal_balance"] == "credit"
    assert account["flags"] == {"debits_must_not_exceed_credits": False, "credits_must_not_exceed_debits": False}
    assert account["metadata"] == {}
    assert TIMESTAMP.match(account["created_at"])
    assert [account[k] for k in ("debits_posted", "credits_posted", "debits_pending", "credits_pending")] == [0] * 4
    assert account["balances"] == {"posted": 0, "pending": 0, "available": 0}
    assert reply.headers["X-Request-Id"]


async def test_same_id_same_body_is_200_and_different_body_is_409(ledger: ApiClient) -> None:
    account_id = str(uuid.uuid4())
    body = {"id": account_id, "currency": "EUR", "metadata": {"owner": "alice"}}
    first = await ledger.call("POST", "/v1/accounts", body)
    assert first.status == 201
    # Defaults filled in compare equal to the explicit form.
    again = await ledger.call(
        "POST",
        "/v1/accounts",
        {**body, "normal_balance": "credit", "flags": {"debits_must_not_exceed_credits": False}},
    )
    assert again.status == 200
    assert again.body == first.body
    conflict = await ledger.call("POST", "/v1/accounts", {**body, "currency": "USD"})
    assert conflict.status == 409 and conflict.code == "id_conflict"
    assert conflict.headers["Content-Type"].startswith("application/problem+json")


async def test_get_unknown_and_other_tenants_account_is_404(ledger: ApiClient) -> None:
    account = await ledger.create_account()
    other = ApiClient(ledger.session, ledger.base_url, {**ledger.headers, "X-Tenant-Id": str(uuid.uuid4())})
    unknown = await ledger.call("GET", f"/v1/accounts/{uuid.uuid4()}")
    foreign = await other.call("GET", f"/v1/accounts/{account['id']}")
    assert unknown.status == foreign.status == 404
    assert unknown.code == foreign.code == "account_not_found"
    mine = await ledger.call("GET", f"/v1/accounts/{account['id']}")
    assert mine.status == 200 and mine.body == account


async def test_same_client_id_in_two_tenants_is_independent(ledger: ApiClient) -> None:
    account_id = str(uuid.uuid4())
    other = ApiClient(ledger.session, ledger.base_url, {**ledger.headers, "X-Tenant-Id": str(uuid.uuid4())})
    a = await ledger.call("POST", "/v1/accounts", {"id": account_id, "currency": "USD"})
    b = await other.call("POST", "/v1/accounts", {"id": account_id, "currency": "GBP"})
    assert a.status == b.status == 201
    assert (await other.call("GET", f"/v1/accounts/{account_id}")).body["currency"] == "GBP"


async def test_list_pages_oldest_first_with_currency_filter(ledger: ApiClient) -> None:
    created = [await ledger.create_account("USD" if i % 2 else "JPY") for i in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await ledger.call("GET", "/v1/accounts", params=params)
        assert page.status == 200
        seen += [a["id"] for a in page.body["data"]]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert seen == [a["id"] for a in created]
    usd = await ledger.call("GET", "/v1/accounts", params={"currency": "USD", "limit": "1000"})
    assert [a["id"] for a in usd.body["data"]] == [a["id"] for a in created if a["currency"] == "USD"]


async def test_bad_list_parameters_are_400(ledger: ApiClient) -> None:
    for params in (
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "1e2"},
        {"cursor": "garbage!"},
        {"cursor": "aDox"},
        {"cursor": "x" * 500},
        {"currency": "usd"},
    ):
        reply = await ledger.call("GET", "/v1/accounts", params=params)
        assert reply.status == 400, params
        assert reply.code == "invalid_request"


async def test_invalid_account_bodies_are_400_and_write_nothing(ledger: ApiClient, db: asyncpg.Connection) -> None:
    before = await db.fetchval("SELECT count(*) FROM accounts")
    bad_bodies = [
        {},
        {"currency": "usd"},
        {"currency": "US"},
        {"currency": "USDOLLARSTOOLONG"},
        {"currency": 840},
        {"currency": "USD", "normal_balance": "both"},
        {"currency": "USD", "colour": "red"},
        {"currency": "USD", "flags": {"debits_must_not_exceed_credits": "yes"}},
        {"currency": "USD", "flags": {"unknown_flag": True}},
        {"currency": "USD", "id": "not-a-uuid"},
        {"currency": "USD", "metadata": {str(i): "v" for i in range(17)}},
        {"currency": "USD", "metadata": {"k" * 65: "v"}},
        {"currency": "USD", "metadata": {"": "v"}},
        {"currency": "USD", "metadata": {"k": "v" * 513}},
        {"currency": "USD", "metadata": {"k": 1}},
        {"currency": "USD", "metadata": ["k"]},
    ]
    for body in bad_bodies:
        reply = await ledger.call("POST", "/v1/accounts", body)
        assert reply.status == 400, body
        assert reply.code == "invalid_request"
        assert reply.body["request_id"] == reply.headers["X-Request-Id"]
    assert await db.fetchval("SELECT count(*) FROM accounts") == before


async def test_media_type_syntax_and_size_errors(ledger: ApiClient) -> None:
    no_type = await ledger.call(
        "POST", "/v1/accounts", raw=b'{"currency": "USD"}', headers={"Content-Type": "text/plain"}
    )
    assert no_type.status == 415 and no_type.code == "unsupported_media_type"
    broken = await ledger.call(
        "POST", "/v1/accounts", raw=b'{"currency": ', headers={"Content-Type": "application/json"}
    )
    assert broken.status == 400 and broken.code == "invalid_request"
    huge = b'{"currency": "USD", "metadata": {"k": "' + b"x" * (4 * 1024 * 1024 + 10) + b'"}}'
    too_big = await ledger.call("POST", "/v1/accounts", raw=huge, headers={"Content-Type": "application/json"})
    assert too_big.status == 413 and too_big.code == "payload_too_large"
    bad_path = await ledger.call("GET", "/v1/accounts/not-a-uuid")
    assert bad_path.status == 400
    nowhere = await ledger.call("GET", "/v1/nowhere")
    assert nowhere.status == 404 and nowhere.code == "not_found"
    assert nowhere.headers["X-Request-Id"] == nowhere.body["request_id"]
    wrong_method = await ledger.call("DELETE", "/v1/accounts")
    assert (wrong_method.status, wrong_method.code) == (404, "not_found") and wrong_method.headers["X-Request-Id"]


async def test_internal_credential_and_tenant_are_required(ledger: ApiClient) -> None:
    for headers in (
        {"X-Tenant-Id": str(uuid.uuid4())},
        {"X-Tenant-Id": str(uuid.uuid4()), "X-Internal-Token": "wrong"},
        {"X-Internal-Token": ledger.headers["X-Internal-Token"]},
        {"X-Internal-Token": ledger.headers["X-Internal-Token"], "X-Tenant-Id": "acme"},
    ):
        anonymous = ApiClient(ledger.session, ledger.base_url, headers)
        reply = await anonymous.call("GET", "/v1/accounts")
        assert reply.status == 401 and reply.code == "unauthorized", headers
        reply = await anonymous.call("POST", "/v1/accounts", {"currency": "USD"})
        assert reply.status == 401, headers
