"""``./scripts/admin``: tenants and API keys against the configured session store, and ``verify``.

    ./scripts/admin create-tenant NAME        -> {"tenant_id", "key_id", "api_key"}
    ./scripts/admin create-api-key TENANT_ID  -> {"tenant_id", "key_id", "api_key"}
    ./scripts/admin revoke-api-key KEY_ID     -> {"key_id", "revoked": true}
    ./scripts/admin verify [...]              -> the ledger's invariant check (services.ledger.verify)
    ./scripts/admin events --tenant T [--after N] [--follow]
                                              -> the tenant's events, one JSON object per line

It talks to DynamoDB directly (creating the tables first when ``DYNAMODB_ENDPOINT_URL`` points at a
local endpoint), and to Redis for revocation, so it works whether or not the services run. The
result is one JSON object on stdout; errors go to stderr with exit status 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import msgspec
from botocore.exceptions import BotoCoreError

from services.session.cache import CacheUnavailable, SessionCache
from services.session.service import SessionService, UnknownKey, UnknownTenant
from services.session.store import SessionStore, StoreUnavailable
from shared.credentials import database_password
from shared.redis_client import open_redis
from shared.settings import Settings, get_settings


def _print(obj: dict[str, Any]) -> None:
    sys.stdout.write(msgspec.json.encode(obj).decode() + "\n")
    sys.stdout.flush()


def _fail(message: str, status: int = 1) -> int:
    print(f"admin: {message}", file=sys.stderr)
    return status


async def _with_service(settings: Settings, action: Callable[[SessionService], Awaitable[int]]) -> int:
    # Imported here, not at the top: the app module brings Litestar, which --help and verify never need.
    from services.session.app import session_service

    redis = open_redis(settings)
    store = SessionStore(settings)
    await store.start()
    try:
        if settings.dynamodb.endpoint_url:
            await store.bootstrap()
        cache = SessionCache(redis, settings.redis.key_prefix, settings.session.cache_ttl_seconds)
        service = session_service(settings, store, cache)  # no cap on live sessions: it opens none
        return await action(service)
    except (StoreUnavailable, BotoCoreError) as exc:
        where = settings.dynamodb.endpoint_url or "the regional AWS endpoint"
        hint = " (is ./scripts/run running?)" if settings.dynamodb.endpoint_url else ""
        return _fail(f"DynamoDB is unavailable at {where}{hint}: {exc}")
    except CacheUnavailable as exc:
        return _fail(f"Redis is unavailable at {settings.redis.url}: {exc}; nothing was revoked")
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


EVENTS_PAGE = 1000
EVENTS_RECHECK_SECONDS = 1.0
"""``events --follow`` re-reads at least this often, whether or not a commit notification arrived."""


async def _print_events(dsn: str, tenant: uuid.UUID, after: int, follow: bool) -> int:
    """Prints the tenant's events after ``after`` in seq order; with ``follow``, then waits for more.

    Reads committed rows only, and per tenant commit order is seq order (migration 0013), so
    continuing from the last seq printed never skips one. Commits are noticed through the journal's
    notifications (LISTEN ledger_events), or at the latest after EVENTS_RECHECK_SECONDS.
    """
    from services.ledger.journal import read_events  # the ledger's own reader, as GET /v1/events

    conn = await asyncpg.connect(dsn, password=database_password(dsn))
    committed = asyncio.Event()
    stopping = asyncio.Event()
    try:
        if follow:
            prefix = f"{tenant}:"
            await conn.add_listener(
                "ledger_events", lambda _c, _p, _ch, payload: committed.set() if payload.startswith(prefix) else None
            )

            # Ctrl-C or a SIGTERM ends the follow at the next wake-up, exit 0. Handled here rather
            # than left to KeyboardInterrupt: a process started by a non-interactive shell's `&`
            # inherits SIGINT ignored, and Python then never raises it (the follower ran on).
            def stop() -> None:
                stopping.set()
                committed.set()  # wake the wait now

            loop = asyncio.get_running_loop()
            for stop_signal in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(stop_signal, stop)
        while not stopping.is_set():
            committed.clear()  # before reading: a commit during the read wakes the next wait
            events = await read_events(conn, tenant, after, EVENTS_PAGE)
            for event in events:
                sys.stdout.write(msgspec.json.encode(event).decode() + "\n")
                after = event.seq
            sys.stdout.flush()
            if len(events) == EVENTS_PAGE:
                continue
            if not follow:
                return 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EVENTS_RECHECK_SECONDS):
                    await committed.wait()
        return 0
    finally:
        await conn.close(timeout=5)


def events(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="./scripts/admin events",
        description="Print a tenant's events (GET /v1/events objects) as JSON lines in seq order, "
        "reading the ledger database (DATABASE_URL) directly.",
    )
    parser.add_argument("--tenant", required=True, help="the tenant's id (a UUID)")
    parser.add_argument("--after", type=int, default=0, help="print the events with a seq above this (default 0)")
    parser.add_argument(
        "--follow", action="store_true", help="then keep printing events as they commit, until interrupted"
    )
    args = parser.parse_args(argv)
    try:
        tenant = uuid.UUID(args.tenant)
    except ValueError:
        return _fail("--tenant must be a UUID", 2)
    if args.after < 0:
        return _fail("--after must be 0 or more", 2)
    try:
        return asyncio.run(_print_events(get_settings().database.url, tenant, args.after, args.follow))
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # the reader went away (| head): not an error
        return 0
    except (OSError, asyncpg.PostgresError) as exc:
        return _fail(f"the ledger database is unavailable: {exc}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["verify"]:
        return verify(argv[1:])
    if argv[:1] == ["events"]:
        return events(argv[1:])
    parser = argparse.ArgumentParser(prog="./scripts/admin", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create-tenant", help="create a tenant and its first API key").add_argument("name")
    commands.add_parser("create-api-key", help="create another API key for a tenant").add_argument("tenant_id")
    commands.add_parser("revoke-api-key", help="revoke an API key and its sessions").add_argument("key_id")
    commands.add_parser("verify", help="check the ledger's invariants (reads PostgreSQL directly)")
    commands.add_parser("events", help="print a tenant's events as JSON lines; --follow for new ones")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "create-tenant":
        return create_tenant(settings, args.name)
    if args.command == "create-api-key":
        return create_api_key(settings, args.tenant_id)
    return revoke_api_key(settings, args.key_id)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
