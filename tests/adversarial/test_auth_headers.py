"""Authentication responses (issue 14, item 9): tokens are never cached, and every 401 is a challenge.

A ``POST /v1/sessions`` 201 carries the bearer token, so it says ``Cache-Control: no-store`` (no
browser, proxy or CDN may keep it); every 401, from the gateway or relayed from the session
service, carries ``WWW-Authenticate: Bearer`` as RFC 9110 requires.
"""

from __future__ import annotations

from tests.support.api import Api, Tenant


async def test_a_login_response_is_never_stored(api: Api, tenant_a: Tenant) -> None:
    reply = await api.call("POST", "/v1/sessions", json={"api_key": tenant_a.api_key})
    assert reply.status == 201, reply
    assert reply.headers["Cache-Control"] == "no-store", reply.headers
    assert "RateLimit-Limit" in reply.headers and "RateLimit-Remaining" in reply.headers, reply.headers


async def test_every_401_carries_a_bearer_challenge(api: Api, tenant_a: Tenant) -> None:
    bad_key = tenant_a.api_key.split(".")[0] + ".not-the-secret"
    unauthorized = [
        ("GET", "/v1/accounts", None, {}),
        ("GET", "/v1/accounts", None, {"Authorization": "Bearer st_unknownunknownunknown0000"}),
        ("GET", "/v1/accounts", None, {"Authorization": "Basic dXNlcjpwYXNz"}),
        ("POST", "/v1/transfers", {}, {"Authorization": "Bearer"}),
        ("DELETE", "/v1/sessions/current", None, {"Authorization": "Bearer st_unknownunknownunknown0001"}),
        ("POST", "/v1/sessions", {"api_key": bad_key}, {}),
        ("POST", "/v1/sessions", {"api_key": "not-a-key"}, {}),
    ]
    for method, path, body, headers in unauthorized:
        reply = await api.call(method, path, json=body, headers=headers)
        assert reply.status == 401, (method, path, headers, reply)
        assert reply.code in {"unauthorized", "invalid_api_key"}, reply
        challenge = reply.headers.get("WWW-Authenticate", "")
        assert challenge.startswith("Bearer ") and 'realm="' in challenge, (method, path, reply.headers)
        assert reply.headers.get("Cache-Control") != "public", reply.headers
