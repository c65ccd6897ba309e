"""Header injection: CR, LF, NUL and other bytes in X-Request-Id and Idempotency-Key, sent raw.

A request the HTTP parser refuses is answered 400 problem+json with a request id, like any other
error, and never reaches the services; a value the parser lets through is validated (400) or, for
X-Request-Id, replaced by a generated id rather than echoed. No injected header ever appears in a
response, and nothing is written.
"""

from __future__ import annotations

import json
import re

import asyncpg

from tests.adversarial.conftest import Victim, raw_exchange, rows_of
from tests.support.platform import Platform

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def _request(victim: Victim, extra_headers: bytes, path: bytes = b"/v1/accounts") -> bytes:
    body = b'{"currency": "USD"}'
    return (
        b"POST "
        + path
        + b" HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer "
        + victim.tenant.token.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        + extra_headers
        + b"Connection: close\r\n\r\n"
        + body
    )


def _parse(response: bytes) -> tuple[int, dict[str, list[str]], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), headers, body


async def test_injected_headers_are_refused_and_never_echoed(
    platform: Platform, victim: Victim, db: asyncpg.Connection
) -> None:
    port = platform.gateway.port
    before = await rows_of(db, victim.tenant)
    refused = {
        "bare CR in X-Request-Id": b"X-Request-Id: abc\rSet-Cookie: injected=1\r\n",
        "bare LF in X-Request-Id": b"X-Request-Id: abc\nSet-Cookie: injected=1\r\n",
        "obs-fold after X-Request-Id": b"X-Request-Id: abc\r\n Set-Cookie: injected=1\r\n",
        "NUL in X-Request-Id": b"X-Request-Id: abc\x00Set-Cookie: injected=1\r\n",
        "bare CR in Idempotency-Key": b"Idempotency-Key: abc\rSet-Cookie: injected=1\r\n",
        "bare LF in Idempotency-Key": b"Idempotency-Key: abc\nSet-Cookie: injected=1\r\n",
        "NUL in Idempotency-Key": b"Idempotency-Key: abc\x00def\r\n",
        "DEL in Idempotency-Key": b"Idempotency-Key: abc\x7fdef\r\n",
        "UTF-8 in Idempotency-Key": b"Idempotency-Key: cl\xc3\xa9\r\n",
        "Latin-1 in Idempotency-Key": b"Idempotency-Key: cl\xe9\r\n",
        "256-character Idempotency-Key": b"Idempotency-Key: " + b"k" * 256 + b"\r\n",
        "empty Idempotency-Key": b"Idempotency-Key: \r\n",
        "CR in the request line": b"",
    }
    for name, extra in refused.items():
        path = b"/v1/accounts\rSet-Cookie: injected=1" if name == "CR in the request line" else b"/v1/accounts"
        status, headers, body = _parse(await raw_exchange(port, _request(victim, extra, path)))
        assert status == 400, (name, status, body)
        assert headers["content-type"] == ["application/problem+json"], (name, headers)
        problem = json.loads(body)
        assert problem["code"] == "invalid_request", (name, problem)
        assert headers["x-request-id"] == [problem["request_id"]], (name, headers)
        assert SAFE_REQUEST_ID.match(problem["request_id"]), (name, problem)
        assert "set-cookie" not in headers and b"injected" not in body, (name, headers, body)
    assert await rows_of(db, victim.tenant) == before

    # Values the parser accepts but that are unsafe to echo: replaced by a generated request id.
    for sent in [b"%0d%0aSet-Cookie:%20injected=1", b"<script>", b"x" * 129, b"a b", b"cl\xc3\xa9"]:
        request = (
            b"GET /v1/accounts HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer "
            + victim.tenant.token.encode()
            + b"\r\nX-Request-Id: "
            + sent
            + b"\r\nConnection: close\r\n\r\n"
        )
        status, headers, _ = _parse(await raw_exchange(port, request))
        assert status == 200, (sent, status)
        [echoed] = headers["x-request-id"]
        assert SAFE_REQUEST_ID.match(echoed) and echoed.encode() != sent, (sent, echoed)
        assert "set-cookie" not in headers
