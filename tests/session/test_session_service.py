"""The session service's internal API and the admin CLI, against real DynamoDB (moto) and Redis."""

from __future__ import annotations

import json
import time

import aioboto3
import pytest

from services.session.store import SessionRecord, SessionStore
from shared.session_cache import token_hash
from tests.support.api import Api
from tests.support.platform import Platform, platform_settings, quick_tenant, session_domain


@pytest.fixture(scope="module")
def internal(platform: Platform) -> dict[str, str]:
    return {"X-Internal-Token": platform.env["INTERNAL_TOKEN"]}


@pytest.mark.parametrize("path", ["/internal/sessions", "/internal/sessions/introspect", "/internal/sessions/revoke"])
@pytest.mark.parametrize("credential", [None, "wrong-token"])
async def test_internal_endpoints_refuse_calls_without_the_credential(
    api: Api, platform: Platform, path: str, credential: str | None
) -> None:
    headers = {"X-Internal-Token": credential} if credential else {}
    body = {"api_key": "ak_x.y"} if path == "/internal/sessions" else {"token": "st_whatever"}
    reply = await api.call("POST", path, json=body, headers=headers, base_url=platform.session.url)
    assert reply.status == 401
    assert reply.code == "unauthorized"
    assert reply.headers["Content-Type"].startswith("application/problem+json")


async def test_login_introspect_and_revoke(api: Api, platform: Platform, internal: dict[str, str]) -> None:
    tenant = await quick_tenant(platform, api)
    base = platform.session.url
    login = await api.call(
        "POST", "/internal/sessions", json={"api_key": tenant.api_key}, headers=internal, base_url=base
    )
    assert login.status == 201, login
    token = login.json["token"]
    assert login.json["tenant_id"] == tenant.tenant_id
    assert login.json["expires_at"].endswith("Z")

    seen = await api.call(
        "POST", "/internal/sessions/introspect", json={"token": token}, headers=internal, base_url=base
    )
    assert seen.status == 200
    assert seen.json["tenant_id"] == tenant.tenant_id
    assert seen.json["key_id"] == tenant.key_id

    revoked = await api.call(
        "POST", "/internal/sessions/revoke", json={"token": token}, headers=internal, base_url=base
    )
    assert revoked.status == 204
    after = await api.call(
        "POST", "/internal/sessions/introspect", json={"token": token}, headers=internal, base_url=base
    )
    assert after.status == 401
    assert after.code == "unauthorized"


async def test_bad_api_keys_are_refused(api: Api, platform: Platform, internal: dict[str, str]) -> None:
    tenant = await quick_tenant(platform, api)
    wrong_secret = tenant.api_key[: tenant.api_key.index(".") + 1] + "not-the-secret"
    for key in ["nonsense", "ak_000000000000000000000000.secret", wrong_secret]:
        reply = await api.call(
            "POST", "/internal/sessions", json={"api_key": key}, headers=internal, base_url=platform.session.url
        )
        assert reply.status == 401, key
        assert reply.code == "invalid_api_key"


async def test_expired_session_in_dynamodb_is_refused(api: Api, platform: Platform, internal: dict[str, str]) -> None:
    """DynamoDB's TTL deletes lazily: expiry is checked on every read."""
    tenant = await quick_tenant(platform, api)
    token = "st_expired-session-token-" + tenant.key_id
    store = SessionStore(platform_settings(platform))
    await store.start()
    try:
        past = int(time.time()) - 5
        record = SessionRecord(token_hash(token), tenant.tenant_id, tenant.key_id, past, revoked=False)
        await store.put_session(record, "2020-01-01T00:00:00.000000Z")
    finally:
        await store.close()
    reply = await api.call(
        "POST", "/internal/sessions/introspect", json={"token": token}, headers=internal, base_url=platform.session.url
    )
    assert reply.status == 401
    gateway = await api.call("GET", "/v1/accounts", token=token)
    assert gateway.status == 401
    assert gateway.code == "unauthorized"


async def test_tables_have_the_contract_names_and_only_hashes(platform: Platform) -> None:
    settings = platform_settings(platform)
    prefix = settings.dynamodb.table_prefix
    async with session_domain(platform) as service:
        key = await service.create_tenant("hash-check")
    session = aioboto3.Session()
    async with session.client(
        "dynamodb",
        endpoint_url=settings.dynamodb.endpoint_url,
        region_name=settings.process.aws_region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    ) as client:
        names = (await client.list_tables())["TableNames"]
        assert {f"{prefix}tenants", f"{prefix}api-keys", f"{prefix}sessions"} <= set(names)
        sessions = await client.describe_table(TableName=f"{prefix}sessions")
        assert sessions["Table"]["KeySchema"] == [{"AttributeName": "token_hash", "KeyType": "HASH"}]
        ttl = await client.describe_time_to_live(TableName=f"{prefix}sessions")
        assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at_epoch"
        item = (await client.get_item(TableName=f"{prefix}api-keys", Key={"key_id": {"S": key.key_id}}))["Item"]
    secret = key.api_key.split(".", 1)[1]
    assert secret not in json.dumps(item)
    assert item["key_hash"]["S"] == token_hash(key.api_key)


def test_admin_cli_creates_tenants_and_keys_and_revokes(platform: Platform) -> None:
    created = json.loads(platform.admin("create-tenant", "Acme Ltd", script=True).stdout)
    assert set(created) == {"tenant_id", "key_id", "api_key"}
    another = json.loads(platform.admin("create-api-key", created["tenant_id"], script=True).stdout)
    assert another["tenant_id"] == created["tenant_id"]
    assert another["key_id"] != created["key_id"]
    revoked = platform.admin("revoke-api-key", another["key_id"], script=True)
    assert json.loads(revoked.stdout) == {"key_id": another["key_id"], "revoked": True}

    unknown_tenant = platform.admin("create-api-key", "00000000-0000-0000-0000-000000000000", check=False)
    assert unknown_tenant.returncode == 1
    assert unknown_tenant.stdout == ""
    unknown_key = platform.admin("revoke-api-key", "ak_000000000000000000000000", check=False)
    assert unknown_key.returncode == 1
    usage = platform.admin("frobnicate", check=False)
    assert usage.returncode == 2
