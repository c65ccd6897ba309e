"""The ledger service's app: routes, the runtime (pool, group committer, sweeper), error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.types import ASGIApp

from services.ledger.event_routes import ROUTES as EVENT_ROUTES
from services.ledger.model_routes import ROUTES as MODEL_ROUTES
from services.ledger.query_routes import ROUTES as QUERY_ROUTES
from services.ledger.routes import ROUTES
from services.ledger.runtime import LedgerRuntime
from services.ledger.transfer_writes import ROUTES as TRANSFER_WRITE_ROUTES
from services.ledger.webhooks.routes import ROUTES as WEBHOOK_ROUTES
from shared import heap
from shared.metrics import Emitter
from shared.settings import Settings, get_settings
from shared.tracing import instrument_app
from shared.web import MAX_BODY_BYTES, RequestContextMiddleware, exception_handlers, health_routes


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or get_settings()
    runtime: dict[str, LedgerRuntime] = {}

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        ledger = await LedgerRuntime.start(settings)
        runtime["ledger"] = app.state.ledger = ledger
        try:
            yield
        finally:
            await ledger.stop()

    async def ready() -> str | None:
        ledger = runtime.get("ledger")
        return "starting" if ledger is None else await ledger.ready()

    emitter = Emitter("ledger")
    app = Litestar(
        route_handlers=[
            *ROUTES,
            *TRANSFER_WRITE_ROUTES,
            *MODEL_ROUTES,
            *EVENT_ROUTES,
            *WEBHOOK_ROUTES,
            *QUERY_ROUTES,
            *health_routes(ready),
        ],
        lifespan=[lifespan],
        on_startup=[emitter.start, heap.settle],
        on_shutdown=[emitter.stop],
        exception_handlers=exception_handlers(),
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
    # Outside Litestar, so that even a routing 404/405 (answered before any Litestar middleware
    # runs) carries X-Request-Id and is counted.
    return RequestContextMiddleware(instrument_app(app, "ledger", settings, ("asyncpg",)))
