"""Dot segments in the path (issue 14, item 6), sent raw so no client normalises them first.

The gateway forwards the path as sent, and its HTTP client resolves ``.``/``..`` (unescaping
``%2E``), so such a path would reach another ledger route than the gateway routed: every spelling
is refused at the gateway with 400 ``invalid_request``, whatever the method, and nothing is written.
"""

from __future__ import annotations

import json

import asyncpg

from tests.adversarial.conftest import Victim, raw_exchange, rows_of
from tests.support.platform import Platform

PATHS = [
    ("GET", "/v1/accounts/%2E%2E/transfers"),
    ("GET", "/v1/accounts/%2e%2e/balances?at=2020-01-01T00:00:00Z"),
    ("GET", "/v1/accounts/.%2E/transfers"),
    ("GET", "/v1/accounts/%2E"),  # would be the account list upstream
    ("GET", "/v1/accounts/%2e/"),
    ("GET", "/v1/accounts/../transfers"),
    ("GET", "/v1/accounts/./{account}"),
    ("GET", "/v1/transfers/%2E%2E"),
    ("GET", "/v1/transfers/..%2F..%2Finternal%2Fsessions"),
    ("GET", "/v1/accounts/{account}/%2E%2E/%2E%2E/accounts"),
    ("POST", "/v1/transfers/%2E%2E/post"),
    ("POST", "/v1/transfers/%2E/void"),
    ("POST", "/v1/accounts/%2E%2E"),
    ("DELETE", "/v1/sessions/%2E%2E/current"),
    ("POST", "/v1/%2E%2E/v1/sessions"),
]


def _request(method: str, path: str, token: str) -> bytes:
    body = b"{}" if method == "POST" else b""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


async def test_dot_segments_are_refused_at_the_gateway(
    platform: Platform, victim: Victim, db: asyncpg.Connection
) -> None:
    before = await rows_of(db, victim.tenant)
    for method, template in PATHS:
        path = template.format(account=victim.credit)
        response = await raw_exchange(platform.gateway.port, _request(method, path, victim.tenant.token))
        head, _, body = response.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        assert status == 400, (method, path, response[:400])
        assert b"content-type: application/problem+json" in head.lower(), (method, path, head)
        problem = json.loads(body)
        assert problem["code"] == "invalid_request", (method, path, problem)
        assert f"x-request-id: {problem['request_id']}".encode() in head.lower(), (method, path, head)
    assert await rows_of(db, victim.tenant) == before


async def test_dots_inside_a_segment_are_not_dot_segments(platform: Platform, victim: Victim) -> None:
    """Only whole ``.``/``..`` segments are refused: an id that merely contains dots is an unknown id."""
    for path in ["/v1/accounts/...", "/v1/accounts/a..b", "/v1/transfers/.x"]:
        response = await raw_exchange(platform.gateway.port, _request("GET", path, victim.tenant.token))
        body = json.loads(response.partition(b"\r\n\r\n")[2])
        assert body["code"] in {"invalid_request", "not_found"}, (path, body)
        assert body.get("detail") != "the path must not have '.' or '..' segments", (path, body)
