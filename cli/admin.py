"""``./scripts/admin``: tenants and API keys against the configured session store, and ``verify``.

    ./scripts/admin create-tenant NAME        -> {"tenant_id", "key_id", "api_key"}
    ./scripts/admin create-api-key TENANT_ID  -> {"tenant_id", "key_id", "api_key"}
    ./scripts/admin revoke-api-key KEY_ID     -> {"key_id", "revoked": true}
    ./scripts/admin verify [...]              -> the ledger's invariant check (services.ledger.verify)

It talks to DynamoDB directly (creating the tables first when ``DYNAMODB_ENDPOINT_URL`` points at a
local endpoint), and to Redis for revocation, so it works whether or not the services run. The
result is one JSON object on stdout; errors go to stderr with exit status 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from botocore.exceptions import BotoCoreError

from services.session.app import session_service
from services.session.cache import CacheUnavailable, SessionCache
from services.session.service import SessionService, UnknownKey, UnknownTenant
from services.session.store import SessionStore, StoreUnavailable
from shared.redis_client import open_redis
from shared.settings import Settings, get_settings


def _print(obj: dict[str, Any]) -> None:
    sys.stdout.write(msgspec.json.encode(obj).decode() + "\n")
    sys.stdout.flush()


def _fail(message: str, status: int = 1) -> int:
    print(f"admin: {message}", file=sys.stderr)
    return status


async def _with_service(settings: Settings, action: Callable[[SessionService], Awaitable[int]]) -> int:
    redis = open_redis(settings)
    store = SessionStore(settings)
    await store.start()
    try:
        if settings.dynamodb_endpoint_url:
            await store.bootstrap()
        cache = SessionCache(redis, settings.redis_key_prefix, settings.session_cache_ttl_seconds)
        service = session_service(settings, store, cache)  # no cap on live sessions: it opens none
        return await action(service)
    except (StoreUnavailable, BotoCoreError) as exc:
        where = settings.dynamodb_endpoint_url or "the regional AWS endpoint"
        hint = " (is ./scripts/run running?)" if settings.dynamodb_endpoint_url else ""
        return _fail(f"DynamoDB is unavailable at {where}{hint}: {exc}")
    except CacheUnavailable as exc:
        return _fail(f"Redis is unavailable at {settings.redis_url}: {exc}; nothing was revoked")
    finally:
        await store.close()
        await redis.aclose()


def create_tenant(settings: Settings, name: str) -> int:
    if not name.strip() or len(name) > 200:
        return _fail("NAME must be 1-200 characters", 2)

    async def action(service: SessionService) -> int:
        key = await service.create_tenant(name)
        _print({"tenant_id": key.tenant_id, "key_id": key.key_id, "api_key": key.api_key})
        return 0

    return asyncio.run(_with_service(settings, action))


def create_api_key(settings: Settings, tenant_id: str) -> int:
    async def action(service: SessionService) -> int:
        try:
            key = await service.create_api_key(tenant_id)
        except UnknownTenant:
            return _fail(f"no tenant {tenant_id!r}")
        _print({"tenant_id": key.tenant_id, "key_id": key.key_id, "api_key": key.api_key})
        return 0

    return asyncio.run(_with_service(settings, action))


def revoke_api_key(settings: Settings, key_id: str) -> int:
    async def action(service: SessionService) -> int:
        try:
            await service.revoke_api_key(key_id)
        except UnknownKey:
            return _fail(f"no API key {key_id!r}")
        _print({"key_id": key_id, "revoked": True})
        return 0

    return asyncio.run(_with_service(settings, action))


def verify(argv: list[str]) -> int:
    try:
        module = importlib.import_module("services.ledger.verify")
    except ModuleNotFoundError as exc:
        if exc.name not in {"services.ledger.verify", "services.ledger"}:
            raise
        return _fail("the ledger's verify module (services.ledger.verify) is not available", 2)
    result = module.main(argv)
    return int(result or 0)


def main(argv: list[str]) -> int:
    if argv[:1] == ["verify"]:
        return verify(argv[1:])
    parser = argparse.ArgumentParser(prog="./scripts/admin", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create-tenant", help="create a tenant and its first API key").add_argument("name")
    commands.add_parser("create-api-key", help="create another API key for a tenant").add_argument("tenant_id")
    commands.add_parser("revoke-api-key", help="revoke an API key and its sessions").add_argument("key_id")
    commands.add_parser("verify", help="check the ledger's invariants (reads PostgreSQL directly)")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "create-tenant":
        return create_tenant(settings, args.name)
    if args.command == "create-api-key":
        return create_api_key(settings, args.tenant_id)
    return revoke_api_key(settings, args.key_id)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
