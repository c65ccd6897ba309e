"""The ledger service's app: routes, the runtime (pool, group committer, sweeper), error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.middleware import DefineMiddleware

from services.ledger.routes import ROUTES
from services.ledger.runtime import LedgerRuntime
from shared.metrics import configure_metrics, emitting
from shared.settings import Settings, get_settings
from shared.web import MAX_BODY_BYTES, RequestContextMiddleware, exception_handlers, health_routes


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    runtime: dict[str, LedgerRuntime] = {}

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        ledger = await LedgerRuntime.start(settings)
        runtime["ledger"] = app.state.ledger = ledger
        try:
            async with emitting(configure_metrics("ledger")):
                yield
        finally:
            await ledger.stop()

    async def ready() -> str | None:
        ledger = runtime.get("ledger")
        return "starting" if ledger is None else await ledger.ready()

    return Litestar(
        route_handlers=[*ROUTES, *health_routes(ready)],
        lifespan=[lifespan],
        middleware=[DefineMiddleware(RequestContextMiddleware)],
        exception_handlers=exception_handlers(),
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
