"""The session service's Litestar app: internal routes, health, and the lifespan of its clients.

Startup opens one Redis client and one DynamoDB client for the process; with a local DynamoDB
endpoint it also creates the tables (retrying in the background until the endpoint answers, while
``/health/ready`` says why it is not ready). Shutdown closes both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from litestar import Litestar, Request, Response
from litestar.types import ASGIApp

from services.session.cache import CacheUnavailable, SessionCache
from services.session.routes import internal_router
from services.session.service import SessionService
from services.session.store import SessionStore, StoreUnavailable
from shared import heap
from shared.errors import unavailable
from shared.metrics import Emitter
from shared.redis_client import open_redis
from shared.settings import Settings, get_settings
from shared.tracing import instrument_app
from shared.web import (
    MAX_BODY_BYTES,
    RequestContextMiddleware,
    exception_handlers,
    health_routes,
    problem_response,
)

log = logging.getLogger(__name__)

TOMBSTONE_MARGIN_SECONDS = 60
"""How much longer a revocation tombstone stays in Redis than a cache entry may live
(``SESSION_CACHE_TTL_SECONDS``). A fill racing the revocation (its DynamoDB read before the
revocation, its ``SET NX`` after the tombstone) still finds the tombstone and is refused; once the
tombstone expires, DynamoDB already says revoked to every later fill (ADR 0021)."""


def session_service(
    settings: Settings, store: SessionStore, cache: SessionCache, *, max_live_per_key: int | None = None
) -> SessionService:
    """The session domain wired from ``settings``: the service, ``./scripts/admin`` and the tests'
    in-process domain all build it here, so they cannot disagree on its lifetimes."""
    return SessionService(
        store,
        cache,
        settings.session.ttl_seconds,
        settings.session.cache_ttl_seconds + TOMBSTONE_MARGIN_SECONDS,
        max_live_per_key=max_live_per_key,
    )


class Components:
    """What the process opens at startup and closes at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = open_redis(settings)
        self.store = SessionStore(settings)
        cache = SessionCache(self.redis, settings.redis.key_prefix, settings.session.cache_ttl_seconds)
        self.service = session_service(settings, self.store, cache, max_live_per_key=settings.session.max_live_per_key)
        self.bootstrapped = asyncio.Event()
        self._bootstrap_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.store.start()
        if self.settings.dynamodb.endpoint_url:
            self._bootstrap_task = asyncio.create_task(self._bootstrap())
        else:
            self.bootstrapped.set()

    async def _bootstrap(self) -> None:
        delay = 0.2
        while True:
            try:
                await self.store.bootstrap()
                self.bootstrapped.set()
                return
            except Exception as exc:
                log.warning("table bootstrap failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        if self._bootstrap_task is not None:
            self._bootstrap_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._bootstrap_task
        await self.store.close()
        await self.redis.aclose()

    async def ready(self) -> str | None:
        if not self.bootstrapped.is_set():
            return "tables not created yet"
        try:
            await self.store.ping()
        except StoreUnavailable:
            return "dynamodb unavailable"
        if not await self.service.cache.ping():
            return "redis unavailable"
        return None


def _store_unavailable(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.warning("dependency unavailable", extra={"error": repr(exc)})
    return problem_response(unavailable("the session store is unavailable; retry later"))


def create_app(settings: Settings | None = None) -> ASGIApp:
    """The app, wrapped in the request-context middleware so that even a routing 404 or 405
    (answered before any Litestar middleware runs) carries ``X-Request-Id``."""
    settings = settings or get_settings()
    components = Components(settings)
    emitter = Emitter("session")

    async def ready() -> str | None:
        return await components.ready()

    handlers: dict[Any, Any] = {
        **exception_handlers(),
        StoreUnavailable: _store_unavailable,
        CacheUnavailable: _store_unavailable,
    }
    app = Litestar(
        route_handlers=[internal_router(), *health_routes(ready)],
        on_startup=[components.start, emitter.start, heap.settle],
        on_shutdown=[emitter.stop, components.close],
        exception_handlers=handlers,
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=None,
        logging_config=None,
    )
    app.state.settings = settings
    app.state.service = components.service
    app.state.components = components
    return RequestContextMiddleware(instrument_app(app, "session", settings, ("redis", "aiobotocore")))
