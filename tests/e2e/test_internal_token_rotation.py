"""Issue 13, item 1, end to end: the internal token rotates while traffic flows through the real
gateway, ledger and session processes, and no request gets a 401 or a 5xx.

The services read the token's secret from the platform's moto server (the same Secrets Manager API
as in AWS), re-reading it every 2 s here instead of every minute, so the whole rotation (receivers
learn the new token, then senders adopt it, ``3 x refresh`` after the version's creation) fits in a
few seconds. The margins are for a loaded machine: moto keeps a version's creation time in whole
seconds (adoption can come up to 1 s early), and a re-read is a new client and two calls to a busy
moto; the Redis and DynamoDB timeouts are 5 s, since this test is about the token, not about them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections import Counter

import aiohttp
import boto3

from shared.http import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from tests.support.api import Api
from tests.support.platform import Platform, quick_tenant

SECRET = "fintech/test/internal-token"
REFRESH_SECONDS = 2
ROTATION_SECONDS = 3 * REFRESH_SECONDS + 5
"""How long the load runs after the new version: senders adopt it at 3 x refresh, then 5 s more."""
UNLIMITED = (
    "LOGIN_RATE_PER_KEY_PER_SECOND",
    "LOGIN_BURST_PER_KEY",
    "LOGIN_RATE_PER_ADDRESS_PER_SECOND",
    "LOGIN_BURST_PER_ADDRESS",
    "SESSIONS_MAX_LIVE_PER_KEY",
    "RATE_LIMIT_PER_SECOND",
    "RATE_LIMIT_BURST",
)


async def test_rotating_the_internal_token_under_load_refuses_nothing(database_url: str, redis_prefix: str) -> None:
    old, new = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
    platform = Platform(
        database_url,
        redis_prefix,
        overrides={
            "INTERNAL_TOKEN": old,
            "INTERNAL_TOKEN_SECRET_ARN": SECRET,
            "INTERNAL_TOKEN_REFRESH_SECONDS": str(REFRESH_SECONDS),
            "REDIS_TIMEOUT_SECONDS": "5",
            "DYNAMODB_TIMEOUT_SECONDS": "5",
            # This test is about the internal token, not about the limits: none may refuse its load.
            **{name: "1000000" for name in UNLIMITED},
        },
    )
    moto = platform.env["DYNAMODB_ENDPOINT_URL"]  # a full moto server: Secrets Manager too
    platform.env.update(aws | {"AWS_ENDPOINT_URL_SECRETS_MANAGER": moto})
    platform.dynamodb.start()
    client = boto3.client(
        "secretsmanager", region_name="eu-west-1", endpoint_url=moto, **{k.lower(): v for k, v in aws.items()}
    )
    client.create_secret(Name=SECRET, SecretString=json.dumps({"token": old}))
    statuses: Counter[tuple[int, str | None]] = Counter()
    try:
        platform.redis.start()
        for process in (platform.session, platform.ledger, platform.gateway):
            process.start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            api = Api(http, platform.url)
            tenant = await quick_tenant(platform, api)
            a, b = await api.account(tenant), await api.account(tenant)
            stop = asyncio.Event()

            async def load() -> None:
                n = 0
                while not stop.is_set():
                    # gateway -> ledger on every transfer, gateway -> session on every fifth (a login)
                    body = {
                        "id": str(uuid.uuid4()),
                        "debit_account_id": a["id"],
                        "credit_account_id": b["id"],
                        "amount": 1,
                        "currency": "USD",
                    }
                    reply = await api.call("POST", "/v1/transfers", json=body, token=tenant.token)
                    statuses[(reply.status, reply.code)] += 1
                    if n % 5 == 0:
                        login = await api.call("POST", "/v1/sessions", json={"api_key": tenant.api_key})
                        statuses[(login.status, login.code)] += 1
                    n += 1

            workers = [asyncio.create_task(load()) for _ in range(4)]
            await asyncio.sleep(2)
            client.put_secret_value(SecretId=SECRET, SecretString=json.dumps({"token": new}))
            rotated = time.monotonic()
            await asyncio.sleep(ROTATION_SECONDS)  # receivers learn NEW within 2 s, senders adopt it after 6 s
            stop.set()
            await asyncio.gather(*workers)
            # The ledger now accepts the new token directly, and still the old one.
            for token in (new, old):
                reply = await api.call(
                    "GET",
                    f"/v1/accounts/{a['id']}",
                    headers={INTERNAL_TOKEN_HEADER: token, TENANT_HEADER: tenant.tenant_id},
                    base_url=platform.ledger.url,
                )
                assert reply.status == 200, (token == new, reply)
            assert time.monotonic() - rotated >= ROTATION_SECONDS
    finally:
        platform.stop()
    assert statuses[(201, None)] > 50, statuses
    assert {status for status, _ in statuses} == {201}, statuses  # no 401, no 5xx while it rotated
