"""Hostile request bodies, parameters and ids: each answered 4xx problem+json, nothing written.

Every body goes through the gateway twice, with and without an ``Idempotency-Key`` (the gateway
parses a keyed body itself to fingerprint it), and the tenant's rows are counted by SQL after.
"""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from tests.adversarial.conftest import Victim, assert_problem, rows_of
from tests.support.api import Api

MiB = 1024 * 1024
MAX = 2**63 - 1


def _transfer(victim: Victim, amount: str = "5", extra: str = "") -> bytes:
    return (
        f'{{"id": "6c1e6d3c-5a3f-4b8e-9d44-0b0f5d1f5e11", "debit_account_id": "{victim.debit}", '
        f'"credit_account_id": "{victim.credit}", "amount": {amount}, "currency": "USD"{extra}}}'
    ).encode()


def _bodies(victim: Victim) -> list[tuple[str, str, bytes, int, str]]:
    """(name, path, body, status, code) for every hostile body."""
    accounts, transfers, batch = "/v1/accounts", "/v1/transfers", "/v1/transfers/batch"
    deep = 100_000
    cases = [
        ("deeply nested array", accounts, b"[" * deep + b"]" * deep, 400, "invalid_request"),
        (
            "deeply nested object in metadata",
            accounts,
            b'{"currency": "USD", "metadata": ' + b'{"a": ' * deep + b'"x"' + b"}" * (deep + 1),
            400,
            "invalid_request",
        ),
        (
            "deeply nested batch item",
            batch,
            b'{"transfers": [' + b"[" * deep + b"]" * deep + b"]}",
            400,
            "invalid_request",
        ),
        ("unclosed nesting", transfers, b"[" * deep, 400, "invalid_request"),
        (
            "huge object under 4 MiB",
            accounts,
            b'{"currency": "USD", "metadata": {' + b",".join(b'"k%d": "v"' % i for i in range(250_000)) + b"}}",
            400,
            "invalid_request",
        ),
        (
            "huge batch under 4 MiB",
            batch,
            b'{"transfers": [' + b",".join([b"{}"] * 1_000_000) + b"]}",
            413,
            "batch_too_large",
        ),
        (
            "4 MiB + 1 byte",
            accounts,
            b'{"currency": "USD", "x": "' + b"a" * (4 * MiB - 26) + b'"}',
            413,
            "payload_too_large",
        ),
        ("16 MiB", transfers, b" " * (16 * MiB), 413, "payload_too_large"),
        (
            "invalid UTF-8 in a string",
            accounts,
            b'{"currency": "USD", "metadata": {"k": "\xff\xfe"}}',
            400,
            "invalid_request",
        ),
        ("overlong UTF-8", accounts, b'{"currency": "USD", "metadata": {"k": "\xc0\xaf"}}', 400, "invalid_request"),
        ("invalid UTF-8 outside strings", accounts, b'{"currency": "USD"\xff}', 400, "invalid_request"),
        (
            "lone surrogate escape",
            accounts,
            b'{"currency": "USD", "metadata": {"k": "\\ud800"}}',
            400,
            "invalid_request",
        ),
        (
            "NUL in a metadata value",
            accounts,
            b'{"currency": "USD", "metadata": {"k": "a\\u0000b"}}',
            400,
            "invalid_request",
        ),
        (
            "NUL in a metadata key",
            accounts,
            b'{"currency": "USD", "metadata": {"k\\u0000": "v"}}',
            400,
            "invalid_request",
        ),
        (
            "NUL in transfer metadata",
            transfers,
            _transfer(victim, extra=', "metadata": {"k": "\\u0000"}'),
            400,
            "invalid_request",
        ),
        ("duplicate key (account)", accounts, b'{"currency": "USD", "currency": "EUR"}', 400, "invalid_request"),
        ("duplicate key (amount)", transfers, _transfer(victim, extra=', "amount": 500'), 400, "invalid_request"),
        ("BOM before the body", accounts, b'\xef\xbb\xbf{"currency": "USD"}', 400, "invalid_request"),
        ("trailing garbage", accounts, b'{"currency": "USD"} {"currency": "EUR"}', 400, "invalid_request"),
        ("top-level string", accounts, b'"USD"', 400, "invalid_request"),
        ("empty body", accounts, b"", 400, "invalid_request"),
        (
            "SQL in an id",
            transfers,
            b'{"id": "\'; DROP TABLE transfers; --", "debit_account_id": "%s", "credit_account_id": "%s", '
            b'"amount": 5, "currency": "USD"}' % (victim.debit.encode(), victim.credit.encode()),
            400,
            "invalid_request",
        ),
        ("shell in an id", accounts, b'{"id": "$(touch /tmp/pwned)`id`", "currency": "USD"}', 400, "invalid_request"),
        ("SQL in a currency", accounts, b"{\"currency\": \"USD' OR '1'='1\"}", 400, "invalid_request"),
    ]
    for literal in [
        "1e2",
        "1E2",
        "100e0",
        "1.0e2",
        "1e-2",
        "9.223372036854775807e18",
        "1e400",
        "-1e400",
        "100.0",
        "NaN",
        "Infinity",
        "-Infinity",
        "nan",
        '"100"',
        "true",
        "null",
        str(MAX + 1),
        "-5",
        "0",
        "0x10",
        "01",
        "+5",
    ]:
        cases.append((f"amount {literal}", transfers, _transfer(victim, literal), 400, "invalid_request"))
    for literal in ["NaN", "Infinity", "1e2"]:
        cases.append(
            (
                f"metadata value {literal}",
                accounts,
                b'{"currency": "USD", "metadata": {"k": %s}}' % literal.encode(),
                400,
                "invalid_request",
            )
        )
    return cases


@pytest.mark.parametrize("keyed", [False, True], ids=["no-key", "idempotency-key"])
async def test_hostile_bodies_are_refused_and_write_nothing(
    api: Api, victim: Victim, db: asyncpg.Connection, keyed: bool
) -> None:
    before = await rows_of(db, victim.tenant)
    for index, (name, path, body, status, code) in enumerate(_bodies(victim)):
        headers = {"Content-Type": "application/json"}
        if keyed:
            headers["Idempotency-Key"] = f"hostile-{index}"
        reply = await api.call("POST", path, data=body, token=victim.tenant.token, headers=headers)
        assert (reply.status, reply.code) == (status, code), (name, reply)
        assert_problem(reply, status, code)
    assert await rows_of(db, victim.tenant) == before == (2, 0, 0)


async def test_metacharacters_in_metadata_are_stored_verbatim(api: Api, victim: Victim, db: asyncpg.Connection) -> None:
    """Valid strings are data, never code: SQL, shell, format and markup characters round-trip."""
    hostile = {
        "sql": "'; DROP TABLE accounts; --",
        "sql2": '" OR 1=1; SELECT pg_sleep(10); --',
        "shell": "$(rm -rf /) `reboot` ; | && > /etc/passwd",
        "format": "%s%s%n {0} {__class__} ${jndi:ldap://x}",
        "markup": "<script>alert(1)</script>",
        "unicode": "\u202e\u200b\ufeff\U0001f4b8 é",
        "newlines": "a\r\nSet-Cookie: x=1\r\n",
        "backslash": "\\x00\\u0000",
    }
    account = await api.account(victim.tenant, metadata=hostile)
    assert account["metadata"] == hostile
    reply = await api.transfer(victim.tenant, victim.debit, account["id"], 7, metadata=hostile)
    assert reply.status == 201, reply
    stored = await db.fetchval("SELECT metadata::text FROM transfers WHERE id = $1", uuid.UUID(reply.json["id"]))
    assert json.loads(stored) == hostile
    read = await api.call("GET", f"/v1/transfers/{reply.json['id']}", token=victim.tenant.token)
    assert read.json["metadata"] == hostile
    assert await db.fetchval("SELECT count(*) FROM accounts") > 0  # the tables are all still there


async def test_absurd_parameters_and_ids(api: Api, victim: Victim, db: asyncpg.Connection) -> None:
    tenant = victim.tenant
    before = await rows_of(db, tenant)
    account = victim.credit
    queries = [
        *(
            f"/v1/accounts?limit={v}"
            for v in [
                "0",
                "-1",
                "1001",
                "1e3",
                "1.5",
                "%C2%B2",
                "%D9%A1%D9%A0",
                "1" * 5000,
                "",
                "abc",
                "%00",
                "+1",
                "1_0",
                "99999999999999999999999",
            ]
        ),
        *(
            f"/v1/accounts?cursor={v}"
            for v in ["garbage", "YTotMQ", "aDox", "A" * 10_000, "%00", "YTo5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "=="]
        ),
        f"/v1/accounts/{account}/transfers?cursor=YToy",
        f"/v1/accounts/{account}/transfers?limit=100000",
        "/v1/accounts?currency=usd",
        "/v1/accounts?currency=USD%27%20OR%201=1--",
        *(
            f"/v1/accounts/{account}/balances?at={v}"
            for v in [
                "0001-01-01T00:00:00%2B23:59",
                "9999-12-31T23:59:59-23:59",
                "2020-01-01T00:00:00",
                "now",
                "",
                "2020-13-01T00:00:00Z",
                "2020-01-01T00:00:00%2B99:00",
                "1" * 5000,
                "99999-01-01T00:00:00Z",
            ]
        ),
        "/v1/accounts/'%20OR%201=1--",
        "/v1/accounts/%00",
        "/v1/accounts/" + "a" * 10_000,
        "/v1/transfers/..%2F..%2Finternal%2Fsessions",
        "/v1/transfers/$(id)",
        # Escaped delimiters stay inside the id: never a query string or another path upstream.
        "/v1/accounts/%3Flimit=5",
        f"/v1/accounts/{account}%3F/transfers",
        f"/v1/accounts/{account}%23/transfers",
    ]
    for path in queries:
        reply = await api.call("GET", path, token=tenant.token)
        assert 400 <= reply.status < 500, (path, reply)
        assert_problem(reply, reply.status)
    for path in [
        "/v1/transfers/'%3B%20DROP%20TABLE%20transfers%3B--/post",
        "/v1/transfers/%00/void",
        f"/v1/transfers/{uuid.uuid4()}%3F/void",
        f"/v1/transfers/{uuid.uuid4()}%3Fx=/post",
    ]:
        reply = await api.call("POST", path, token=tenant.token)
        assert_problem(reply, 400, "invalid_request")
    # The earliest instant there is reads back as RFC 3339 (a four-digit year).
    early = await api.call("GET", f"/v1/accounts/{account}/balances?at=0001-01-01T00:00:00Z", token=tenant.token)
    assert (early.status, early.json["at"]) == (200, "0001-01-01T00:00:00.000000Z"), early
    assert await rows_of(db, tenant) == before
