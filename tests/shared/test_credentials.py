"""shared/credentials.py against real services: a moto server for Secrets Manager, a private Redis
with two valid passwords (what ElastiCache's ROTATE strategy does), the local PostgreSQL.

Issue 13, item 1: a rotation is a non-event. A rotated secret is picked up without a restart; the
previous token stays accepted while peers move on; Redis connections opened after a rotation use
the new token while the old one still works; every database connection gets a fresh IAM token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aioboto3
import asyncpg
import boto3
import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ResponseError

from shared.credentials import (
    CredentialUnavailable,
    RedisSecretCredentials,
    SecretTokens,
    TokenSet,
    database_password,
)
from tests.shared.conftest import private_redis
from tests.support.processes import free_port

REGION = "eu-west-1"
OLD, NEW = "o" * 40, "n" * 40


def _secret(url: str, name: str, token: str) -> Any:
    client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=url)
    client.create_secret(Name=name, SecretString=json.dumps({"token": token, "url": "rediss://unused"}))
    return client


def _rotate(client: Any, name: str, token: str) -> None:
    # What finishSecret leaves behind: the new version AWSCURRENT, the old one AWSPREVIOUS.
    client.put_secret_value(SecretId=name, SecretString=json.dumps({"token": token}))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_set_accepts_current_and_previous_only_and_never_prints_them() -> None:
    tokens = TokenSet(NEW, OLD)
    assert tokens.accepts(NEW) and tokens.accepts(OLD)
    assert not tokens.accepts("x" * 40) and not tokens.accepts("") and not tokens.accepts(None)
    assert not TokenSet(NEW).accepts(OLD)
    assert NEW not in repr(tokens) and OLD not in repr(tokens)


async def test_a_rotation_is_picked_up_without_a_restart_and_the_previous_token_stays_accepted(aws: str) -> None:
    client = _secret(aws, "internal-a", OLD)
    clock = Clock()
    source = SecretTokens.from_aws("internal-a", "token", REGION, aws, max_age_seconds=60, clock=clock)
    first = await source.tokens()
    assert (first.current, first.previous) == (OLD, None)
    _rotate(client, "internal-a", NEW)
    assert (await source.tokens()).current == OLD  # cached: no call per request
    clock.now += 61
    after = await source.tokens()
    assert (after.current, after.previous) == (NEW, OLD)
    # A peer that has not re-read yet still sends OLD, and is accepted; this process sends NEW.
    assert after.accepts(OLD) and after.accepts(NEW)


async def test_invalidate_re_reads_at_once_but_at_most_once_per_retry_interval(aws: str) -> None:
    client = _secret(aws, "internal-b", OLD)
    clock = Clock()
    source = SecretTokens.from_aws(
        "internal-b", "token", REGION, aws, max_age_seconds=3600, retry_seconds=10, clock=clock
    )
    await source.tokens()
    _rotate(client, "internal-b", NEW)
    clock.now += 11
    source.invalidate()
    assert (await source.tokens()).current == NEW
    _rotate(client, "internal-b", "t" * 40)
    source.invalidate()
    assert (await source.tokens()).current == NEW  # retried too soon: the cached value serves


async def test_an_unreachable_secrets_manager_keeps_the_last_good_value(aws: str) -> None:
    _secret(aws, "internal-c", OLD)
    clock = Clock()
    session = aioboto3.Session()
    endpoint = {"url": aws}
    calls = []

    def factory() -> Any:
        calls.append(endpoint["url"])
        return session.client("secretsmanager", region_name=REGION, endpoint_url=endpoint["url"])

    source = SecretTokens("internal-c", "token", factory, max_age_seconds=60, retry_seconds=30, clock=clock)
    assert (await source.tokens()).current == OLD
    endpoint["url"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    clock.now += 61
    assert (await source.tokens()).current == OLD
    assert (await source.tokens()).current == OLD  # and no second attempt within retry_seconds
    assert len(calls) == 2
    never_read = SecretTokens("internal-c", "token", factory, clock=clock)
    with pytest.raises(CredentialUnavailable) as raised:
        await never_read.tokens()
    assert OLD not in str(raised.value)


@pytest.fixture
def redis_with_two_passwords(tmp_path: Path) -> Iterator[int]:
    with private_redis(tmp_path, "--requirepass", OLD) as redis:
        yield redis.port


async def test_redis_rotation_with_load_running_sees_no_authentication_error(
    aws: str, redis_with_two_passwords: int
) -> None:
    port = redis_with_two_passwords
    client = _secret(aws, "redis-auth", OLD)
    clock = Clock()
    source = SecretTokens.from_aws("redis-auth", "token", REGION, aws, max_age_seconds=5, retry_seconds=1, clock=clock)
    app = Redis(host="127.0.0.1", port=port, credential_provider=RedisSecretCredentials(source), max_connections=8)
    admin = Redis(host="127.0.0.1", port=port, password=OLD)
    errors: list[BaseException] = []
    done = asyncio.Event()

    async def load(worker: int) -> None:
        n = 0
        while not done.is_set():
            try:
                await app.set(f"k{worker}", n)
                n += 1
            except Exception as exc:  # any failure is what this test exists to catch
                errors.append(exc)
            await asyncio.sleep(0)

    workers = [asyncio.create_task(load(i)) for i in range(6)]
    try:
        await asyncio.sleep(0.2)
        # ROTATE: both tokens valid on the server, then the secret moves to the new one.
        await admin.execute_command("ACL", "SETUSER", "default", f">{NEW}")
        _rotate(client, "redis-auth", NEW)
        clock.now += 6
        await app.connection_pool.disconnect()  # new connections from here on (a failover, a scale-out)
        await asyncio.sleep(0.2)
        assert (await source.tokens()).current == NEW
        # The next rotation's first step drops the old token; every connection has moved on.
        await admin.execute_command("ACL", "SETUSER", "default", f"<{OLD}")
        await app.connection_pool.disconnect()
        await asyncio.sleep(0.2)
    finally:
        done.set()
        await asyncio.gather(*workers)
    assert errors == []
    with pytest.raises((AuthenticationError, ResponseError)):
        await Redis(host="127.0.0.1", port=port, password=OLD).ping()
    await app.aclose()
    await admin.aclose()


def test_database_password_is_none_without_iam_auth() -> None:
    assert database_password("postgresql://ledger_app@h:5432/ledger", env={}) is None
    assert database_password("postgresql://ledger_app@h:5432/ledger", env={"DATABASE_IAM_AUTH": "false"}) is None
    with pytest.raises(ValueError):
        database_password("postgresql://h/ledger", env={"DATABASE_IAM_AUTH": "true", "AWS_REGION": REGION})


async def test_iam_auth_signs_a_fresh_token_for_every_new_connection(aws: str, database_url: str) -> None:
    host = "ledger.cluster-abc.eu-west-1.rds.amazonaws.com"
    sign = database_password(
        f"postgresql://ledger_app@{host}:5432/ledger?sslmode=verify-full",
        env={"DATABASE_IAM_AUTH": "true", "AWS_REGION": REGION},
    )
    assert sign is not None
    token = await sign()
    url = urlsplit("https://" + token)
    query = parse_qs(url.query)
    assert url.hostname == host and url.port == 5432
    assert query["Action"] == ["connect"] and query["DBUser"] == ["ledger_app"]
    assert query["X-Amz-Expires"] == ["900"] and "X-Amz-Signature" in query
    # asyncpg calls the password callable for every connection it opens (the local server trusts
    # loopback and ignores the value; what matters is that each connection asks for a new one).
    issued: list[str] = []

    async def counting() -> str:
        issued.append(await sign())
        return issued[-1]

    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=3, password=counting)
    try:
        conns = [await pool.acquire() for _ in range(3)]
        for conn in conns:
            await pool.release(conn)
        assert len(issued) == 3
        await pool.expire_connections()
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
        assert len(issued) == 4
    finally:
        await pool.close()


async def test_open_redis_authenticates_with_the_secrets_current_token(
    aws: str, redis_with_two_passwords: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The services' one Redis factory: REDIS_AUTH_SECRET_ARN set, the URL carries no token, and
    # the token used is the secret's current one when the connection opens (not one from start-up).
    from shared.redis_client import open_redis
    from shared.settings import ProcessSettings, RedisSettings, Settings

    port = redis_with_two_passwords
    client = _secret(aws, "redis-auth-open", OLD)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", aws)
    settings = Settings(
        redis=RedisSettings(url=f"redis://127.0.0.1:{port}/0", auth_secret_arn="redis-auth-open"),
        process=ProcessSettings(aws_region=REGION),
    )
    redis = open_redis(settings)  # created before the rotation, as a running task's client is
    admin = Redis(host="127.0.0.1", port=port, password=OLD)
    try:
        await admin.execute_command("ACL", "SETUSER", "default", f">{NEW}", f"<{OLD}")
        _rotate(client, "redis-auth-open", NEW)
        assert await redis.ping()
        with pytest.raises((AuthenticationError, ResponseError)):
            await Redis(host="127.0.0.1", port=port, password=OLD).ping()
    finally:
        await redis.aclose()
        await Redis(host="127.0.0.1", port=port, password=NEW).aclose()
        await admin.aclose()
