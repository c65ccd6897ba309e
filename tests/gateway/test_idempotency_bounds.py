"""Bounds on what Idempotency-Key keeps in Redis (issue 14, item 4): per tenant, per response, and
compression of large kept responses. Through the public API, with Redis read directly."""

from __future__ import annotations

import json
import uuid

from redis.asyncio import Redis

from services.gateway.idempotency import idem_key
from tests.support.api import Api, Tenant
from tests.support.platform import Platform, quick_tenant


def _batch(tenant_accounts: tuple[str, str], count: int) -> dict[str, object]:
    debit, credit = tenant_accounts
    return {
        "transfers": [
            {
                "id": str(uuid.uuid4()),
                "debit_account_id": debit,
                "credit_account_id": credit,
                "amount": 1,
                "currency": "USD",
                "metadata": {"order": f"order-{i:06d}"},
            }
            for i in range(count)
        ]
    }


async def _pair(api: Api, tenant: Tenant) -> tuple[str, str]:
    bank = await api.account(tenant, normal_balance="debit")
    shop = await api.account(tenant)
    return bank["id"], shop["id"]


async def test_a_tenant_holds_at_most_the_configured_number_of_keys(api: Api, platform: Platform) -> None:
    gateway = platform.extra_gateway(IDEMPOTENCY_MAX_KEYS_PER_TENANT="3")
    try:
        tenant, other = await quick_tenant(platform, api), await quick_tenant(platform, api)
        for i in range(3):
            reply = await api.call(
                "POST",
                "/v1/accounts",
                json={"currency": "USD"},
                token=tenant.token,
                headers={"Idempotency-Key": f"k-{i}"},
                base_url=gateway.url,
            )
            assert reply.status == 201, reply
        full = await api.call(
            "POST",
            "/v1/accounts",
            json={"currency": "USD"},
            token=tenant.token,
            headers={"Idempotency-Key": "k-3"},
            base_url=gateway.url,
        )
        assert (full.status, full.code) == (429, "rate_limited")
        assert int(full.headers["Retry-After"]) > 3600  # until the oldest kept key expires (24 h)
        # Replays of kept keys, requests without a key and other tenants are not affected.
        replay = await api.call(
            "POST",
            "/v1/accounts",
            json={"currency": "USD"},
            token=tenant.token,
            headers={"Idempotency-Key": "k-0"},
            base_url=gateway.url,
        )
        assert replay.headers["Idempotent-Replayed"] == "true"
        plain = await api.call(
            "POST", "/v1/accounts", json={"currency": "USD"}, token=tenant.token, base_url=gateway.url
        )
        assert plain.status == 201
        theirs = await api.call(
            "POST",
            "/v1/accounts",
            json={"currency": "USD"},
            token=other.token,
            headers={"Idempotency-Key": "k-3"},
            base_url=gateway.url,
        )
        assert theirs.status == 201
    finally:
        gateway.stop()


async def test_large_responses_are_compressed_and_oversized_ones_not_kept(api: Api, platform: Platform) -> None:
    tenant = await quick_tenant(platform, api)
    accounts = await _pair(api, tenant)
    batch = _batch(accounts, 200)
    first = await api.call(
        "POST", "/v1/transfers/batch", json=batch, token=tenant.token, headers={"Idempotency-Key": "big-1"}
    )
    assert first.status == 200 and len(first.body) > 50_000
    redis = Redis.from_url(platform.env["REDIS_URL"])
    try:
        record = await redis.get(idem_key(platform.env["REDIS_KEY_PREFIX"], tenant.tenant_id, "big-1"))
    finally:
        await redis.aclose()
    assert record is not None and record.startswith(b"Z|") and len(record) < len(first.body) / 3
    replay = await api.call(
        "POST", "/v1/transfers/batch", json=batch, token=tenant.token, headers={"Idempotency-Key": "big-1"}
    )
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.body == first.body

    small = platform.extra_gateway(IDEMPOTENCY_MAX_KEPT_BYTES="2000")
    try:
        again = _batch(accounts, 200)
        ran = await api.call(
            "POST",
            "/v1/transfers/batch",
            json=again,
            token=tenant.token,
            headers={"Idempotency-Key": "big-2"},
            base_url=small.url,
        )
        assert ran.status == 200 and {r["status"] for r in ran.json["results"]} == {201}
        # Too large to keep: the key was released, so the retry runs again, and the ledger answers
        # each already-applied item as a replay (nothing is applied twice).
        rerun = await api.call(
            "POST",
            "/v1/transfers/batch",
            json=again,
            token=tenant.token,
            headers={"Idempotency-Key": "big-2"},
            base_url=small.url,
        )
        assert "Idempotent-Replayed" not in rerun.headers
        assert {r["status"] for r in rerun.json["results"]} == {200}
    finally:
        small.stop()
    # The structured log line says so, naming the caller (tenant and API key id) and the request.
    lines = [json.loads(line) for line in small.log_path.read_text().splitlines() if line.startswith("{")]
    released = [line for line in lines if line.get("message") == "response too large to keep; claim released"]
    assert len(released) == 2
    assert {(line["tenant_id"], line["key_id"]) for line in released} == {(tenant.tenant_id, tenant.key_id)}
    assert {line["request_id"] for line in released} == {ran.headers["X-Request-Id"], rerun.headers["X-Request-Id"]}
    history = await api.call("GET", f"/v1/accounts/{accounts[1]}/transfers?limit=1000", token=tenant.token)
    assert len(history.json["data"]) == 400
