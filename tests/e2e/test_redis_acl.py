"""Issue 13, item 9: each service is its own Redis user, allowed exactly what ``stacks.redis_acl``
grants, the definition the ElastiCache users in the data tier are built from.

A private Redis gets the same users with ``ACL SETUSER`` (the template's access strings, under
this run's key prefix) and its ``default`` user switched off, as in the template. The real gateway,
ledger and session processes then authenticate as in AWS (``REDIS_USERNAME`` and a password read from
a Secrets Manager secret, on the platform's moto server) and do their normal work: logins,
transfers with an Idempotency-Key (replay and reuse), rate limits, refused tokens, logout and API-key
revocation. The services fail open on some Redis errors, so a refused command could hide behind a
success: Redis' ``ACL LOG`` must therefore stay empty through all of it. Afterwards each user is
refused what it must not do. A second test rotates a user's password, as the rotation Lambda does,
under load.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from services.session.service import SessionService
from shared.credentials import SecretTokens
from shared.redis_client import RedisUserCredentials, open_redis
from shared.settings import ProcessSettings, RedisSettings, Settings
from stacks.redis_acl import DISABLED_DEFAULT_ACCESS, USERS
from tests.support.api import Api, Tenant
from tests.support.platform import Helper, Platform, quick_tenant, session_domain
from tests.support.processes import free_port

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
ADMIN = "acl-test-admin"
"""The test's own all-powerful user: it sets the ACLs up and reads ACL LOG (no service uses it)."""


def _secret_name(user: str) -> str:
    return f"fintech/test/redis-{user}"


async def _setup_users(port: int, prefix: str, passwords: dict[str, str], admin_password: str) -> Redis:
    """The template's users on the private Redis, ``default`` off; returns the admin's client."""
    bootstrap = Redis(host="127.0.0.1", port=port)  # still the default user, on and without password
    await bootstrap.execute_command("ACL", "SETUSER", ADMIN, "reset", f">{admin_password}", "on", "~*", "&*", "+@all")
    await bootstrap.aclose()
    admin = Redis(host="127.0.0.1", port=port, username=ADMIN, password=admin_password)
    for user in USERS:
        rules = user.access_string(prefix).split()
        await admin.execute_command("ACL", "SETUSER", user.name, "reset", f">{passwords[user.name]}", *rules)
    await admin.execute_command("ACL", "SETUSER", "default", "reset", *DISABLED_DEFAULT_ACCESS.split())
    await admin.execute_command("ACL", "LOG", "RESET")
    return admin


async def _acl_log(admin: Redis) -> list[Any]:
    """Redis' record of refused commands and failed authentications (newest first)."""
    return list(await admin.acl_log())


async def _normal_work(platform: Platform, api: Api, strict_url: str) -> None:
    """What the services do all day, each step checked for its effect (not only its status)."""
    tenant = await quick_tenant(platform, api)  # login: login limits, session cap, cache fill
    a, b = await api.account(tenant), await api.account(tenant)
    body = {
        "id": str(uuid.uuid4()),
        "debit_account_id": a["id"],
        "credit_account_id": b["id"],
        "amount": 5,
        "currency": "USD",
    }
    key = {"Idempotency-Key": f"acl-{uuid.uuid4()}"}
    first = await api.call("POST", "/v1/transfers", json=body, token=tenant.token, headers=key)
    assert first.status == 201, first
    replay = await api.call("POST", "/v1/transfers", json=body, token=tenant.token, headers=key)
    assert replay.status == 201 and replay.headers["Idempotent-Replayed"] == "true", replay
    assert replay.body == first.body
    reused = await api.call("POST", "/v1/transfers", json={**body, "amount": 6}, token=tenant.token, headers=key)
    assert (reused.status, reused.code) == (422, "idempotency_key_reused"), reused
    replies = await asyncio.gather(*(api.transfer(tenant, a["id"], b["id"], 1) for _ in range(20)))
    assert [r.status for r in replies] == [201] * 20, replies
    # A batch with its own key (the kept answer is compressed, possibly large) and its replay.
    items = [{**body, "id": str(uuid.uuid4()), "amount": 1} for _ in range(50)]
    batch_key = {"Idempotency-Key": f"acl-batch-{uuid.uuid4()}"}
    batch = await api.call(
        "POST", "/v1/transfers/batch", json={"transfers": items}, token=tenant.token, headers=batch_key
    )
    assert batch.status in (200, 201, 207), batch
    again = await api.call(
        "POST", "/v1/transfers/batch", json={"transfers": items}, token=tenant.token, headers=batch_key
    )
    assert again.headers.get("Idempotent-Replayed") == "true" and again.body == batch.body, again
    credited = await api.call("GET", f"/v1/accounts/{b['id']}", token=tenant.token)
    assert credited.status == 200, credited

    # The tenant rate limit, on a gateway with a burst of 3 and no refill during the test.
    strict = await quick_tenant(platform, api)
    statuses = [
        (await api.call("GET", "/v1/accounts", token=strict.token, base_url=strict_url)).status for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429], statuses

    # A refused token (the per-address refusal limit counts it), a logout (tombstone), then the
    # revocation of an API key (its marker, read by the gateway's lookup script).
    assert (await api.call("GET", "/v1/accounts", token="not-a-token")).status == 401
    other = await api.login(tenant.api_key)
    assert (await api.call("DELETE", "/v1/sessions/current", token=other)).status in (200, 204)
    await asyncio.sleep(1.1)  # past the gateway's in-memory session cache (at most 1 s)
    assert (await api.call("GET", "/v1/accounts", token=other)).status == 401
    assert (await api.call("GET", "/v1/accounts", token=tenant.token)).status == 200
    async with session_domain(platform) as service:
        await _revoke(service, tenant)
    await asyncio.sleep(1.1)
    assert (await api.call("GET", "/v1/accounts", token=tenant.token)).status == 401


async def _revoke(service: SessionService, tenant: Tenant) -> None:
    await service.revoke_api_key(tenant.key_id)


async def _refused(client: Redis, *command: str) -> None:
    with pytest.raises(NoPermissionError):
        await client.execute_command(*command)


async def test_services_work_as_their_own_redis_users_and_nothing_more(database_url: str, redis_prefix: str) -> None:
    passwords = {user.name: secrets.token_urlsafe(32) for user in USERS}
    admin_password = secrets.token_urlsafe(32)
    platform = Platform(database_url, redis_prefix, overrides=AWS)
    moto = platform.env["DYNAMODB_ENDPOINT_URL"]  # a full moto server: Secrets Manager too
    platform.env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = moto
    plain_url = platform.env["REDIS_URL"]
    port = platform.redis.port
    as_user = {
        user.name: {"REDIS_USERNAME": user.name, "REDIS_AUTH_SECRET_ARN": _secret_name(user.name)} for user in USERS
    }
    platform.gateway.env = {**platform.env, **as_user["gateway"]}
    platform.session.env = {**platform.env, **as_user["session"]}
    admin: Redis | None = None
    try:
        platform.dynamodb.start()
        client = boto3.client(
            "secretsmanager", region_name="eu-west-1", endpoint_url=moto, **{k.lower(): v for k, v in AWS.items()}
        )
        for user in USERS:
            client.create_secret(Name=_secret_name(user.name), SecretString=json.dumps({"token": passwords[user.name]}))
        platform.redis.start()
        admin = await _setup_users(port, redis_prefix, passwords, admin_password)
        for process in (platform.session, platform.ledger, platform.gateway):
            process.start()
        strict = platform.extra_gateway(
            RATE_LIMIT_PER_SECOND="0.01", RATE_LIMIT_BURST="3", REDIS_URL=plain_url, **as_user["gateway"]
        )
        # The in-process session domain (tenant creation, revocation) is the session service's code:
        # it connects as the session user too, with the password in its URL.
        platform.env["REDIS_URL"] = f"redis://session:{passwords['session']}@127.0.0.1:{port}/0"

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            await _normal_work(platform, Api(http, platform.url), strict.url)
        # Every command of that work was allowed: nothing was refused and swallowed by a fail-open path.
        assert await _acl_log(admin) == []
        clients = (await admin.execute_command("CLIENT", "LIST")).decode()
        assert {"user=gateway", "user=session"} <= set(clients.split()), clients

        gateway = Redis(host="127.0.0.1", port=port, username="gateway", password=passwords["gateway"])
        session = Redis(host="127.0.0.1", port=port, username="session", password=passwords["session"])
        try:
            await _refused(gateway, "FLUSHALL")
            await _refused(gateway, "KEYS", "*")
            await _refused(gateway, "CONFIG", "GET", "maxmemory-policy")
            await _refused(gateway, "EVAL", "return 1", "0")  # no arbitrary Lua, only loaded scripts
            await _refused(gateway, "SET", f"{redis_prefix}sess:forged", "tenant|key|9999999999")
            await _refused(gateway, "DEL", f"{redis_prefix}keyrev:some-key")
            await _refused(gateway, "GET", "another-prefix:idem:x")
            # Not even through a script it loads itself: the session cache stays read-only to it.
            sha = await gateway.script_load("return redis.call('SET', KEYS[1], 'forged')")
            with pytest.raises(ResponseError, match="can't access"):
                await gateway.evalsha(sha, 1, f"{redis_prefix}sess:forged")
            await _refused(session, "GET", f"{redis_prefix}sess:anything")
            await _refused(session, "GET", f"{redis_prefix}idem:{{t}}:x")
            await _refused(session, "FLUSHDB")
            assert len(await _acl_log(admin)) >= 10  # the refusals above are what ACL LOG records
        finally:
            await gateway.aclose()
            await session.aclose()
        # Without a user name a client is the default user, which is off; unauthenticated, nothing.
        anonymous = Redis(host="127.0.0.1", port=port, password=passwords["gateway"])
        with pytest.raises(AuthenticationError):
            await anonymous.ping()
        await anonymous.aclose()
        with pytest.raises(AuthenticationError):
            await Redis(host="127.0.0.1", port=port).ping()
    finally:
        if admin is not None:
            await admin.aclose()
        platform.stop()


async def test_rotating_a_users_password_under_load_refuses_nothing(
    redis_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rotation Lambda's steps on a Redis user (both passwords, then the secret moves on, then the
    next rotation drops the oldest), with clients authenticating as that user through
    ``RedisUserCredentials``, the provider ``open_redis`` gives a service with ``REDIS_USERNAME``."""
    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    old, new, admin_password = (secrets.token_urlsafe(32) for _ in range(3))
    moto_port, redis_port = free_port(), free_port()
    moto = Helper("moto", moto_port, [str(Path(sys.executable).parent / "moto_server"), "-p", str(moto_port)])
    server = Helper(
        "redis",
        redis_port,
        [
            shutil.which("redis-server") or "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(redis_port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
    )
    errors: list[BaseException] = []
    now = [1000.0]
    try:
        moto.start()
        server.start()
        endpoint = f"http://127.0.0.1:{moto_port}"
        client = boto3.client("secretsmanager", region_name="eu-west-1", endpoint_url=endpoint)
        client.create_secret(Name=_secret_name("gateway"), SecretString=json.dumps({"token": old}))
        admin = await _setup_users(redis_port, redis_prefix, {"gateway": old, "session": old}, admin_password)
        source = SecretTokens.from_aws(
            _secret_name("gateway"),
            "token",
            "eu-west-1",
            endpoint,
            max_age_seconds=5,
            retry_seconds=1,
            clock=lambda: now[0],
        )
        app = Redis(
            host="127.0.0.1",
            port=redis_port,
            credential_provider=RedisUserCredentials("gateway", source),
            max_connections=8,
        )
        done = asyncio.Event()

        async def load(worker: int) -> None:
            n = 0
            while not done.is_set():
                try:  # a rate-limit key: the gateway's own family
                    await app.set(f"{redis_prefix}rl:{{t{worker}}}", n, px=60_000)
                    n += 1
                except Exception as exc:  # any failure is what this test exists to catch
                    errors.append(exc)
                await asyncio.sleep(0)

        workers = [asyncio.create_task(load(i)) for i in range(6)]
        try:
            await asyncio.sleep(0.2)
            # setSecret: the user gets both passwords; finishSecret: the secret's current is the new one.
            await admin.execute_command("ACL", "SETUSER", "gateway", f">{new}")
            client.put_secret_value(SecretId=_secret_name("gateway"), SecretString=json.dumps({"token": new}))
            now[0] += 6
            await app.connection_pool.disconnect()  # new connections from here on
            await asyncio.sleep(0.2)
            assert (await source.tokens()).current == new
            # The next rotation's setSecret keeps only the then-current password and its successor.
            await admin.execute_command("ACL", "SETUSER", "gateway", f"<{old}")
            await app.connection_pool.disconnect()
            await asyncio.sleep(0.2)
        finally:
            done.set()
            await asyncio.gather(*workers)
        assert errors == []
        assert await _acl_log(admin) == []  # not one failed AUTH
        with pytest.raises(AuthenticationError):
            await Redis(host="127.0.0.1", port=redis_port, username="gateway", password=old).ping()
        # The services' one factory: as REDIS_USERNAME with the secret's password (AWS), and with the
        # URL's password (local); either way the connection is the gateway user's.
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint)
        plain = f"redis://127.0.0.1:{redis_port}/0"
        for settings in (
            Settings(
                redis=RedisSettings(url=plain, username="gateway", auth_secret_arn=_secret_name("gateway")),
                process=ProcessSettings(aws_region="eu-west-1"),
            ),
            Settings(redis=RedisSettings(url=f"redis://:{new}@127.0.0.1:{redis_port}/0", username="gateway")),
        ):
            opened = open_redis(settings)
            # default is off, and no other user may write rl:, so this is the gateway user's work.
            await opened.set(f"{redis_prefix}rl:{{factory}}", 1, px=60_000)
            await opened.aclose()
        await app.aclose()
        await admin.aclose()
    finally:
        server.stop()
        moto.stop()
