"""The gateway's Litestar app: public routes, health, and the lifespan of its clients.

Startup opens one Redis client and one persistent HTTP client per upstream (ledger, session
service), and a second, bounded pool for the long-poll routes, whose calls to the ledger have a
timeout that covers their wait (:mod:`.long_poll`); shutdown closes them after in-flight requests
finished (graceful shutdown of the server).
Ready means Redis answers and both upstream processes answer their liveness probe.
"""

from __future__ import annotations

import logging

import msgspec
from litestar import Litestar
from litestar.types import ASGIApp
from redis.exceptions import RedisError

from services.gateway.admission import Admission
from services.gateway.auth import Authenticator, LocalSessions
from services.gateway.coalescer import Coalescer
from services.gateway.dot_segments import RefuseDotSegments
from services.gateway.login import LoginLimiter
from services.gateway.long_poll import LongPolls
from services.gateway.openapi import build_document
from services.gateway.proxy import Pipeline
from services.gateway.ratelimit import RateLimit
from services.gateway.refusals import RefusalLimiter
from services.gateway.routes import LONG_POLL_SECONDS, public_routes
from services.gateway.upstream import LedgerClient
from shared import heap
from shared.http import HttpPool, ServiceClient
from shared.metrics import Emitter
from shared.redis_client import open_redis
from shared.settings import Settings, get_settings
from shared.tracing import instrument_app
from shared.web import MAX_BODY_BYTES, RequestContextMiddleware, exception_handlers, health_routes

log = logging.getLogger(__name__)


class Components:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = open_redis(settings, max_connections=1024)
        timeout = settings.gateway.upstream_timeout_seconds
        self.http = HttpPool()
        # Waiting long-polls get connections of their own, as many as may wait: they can never take
        # the pool transfers and every other route use (services/gateway/long_poll.py).
        self.long_poll_http = HttpPool(pool_size=max(settings.gateway.events_long_poll_max, 1))
        self.ledger = ServiceClient(
            "ledger", settings.ledger_base_url(), settings.process.internal_token, timeout, self.http
        )
        coalescer = (
            Coalescer(
                self.ledger,
                max_inflight=settings.gateway.coalesce_max_inflight,
                max_items=settings.gateway.coalesce_max_items,
            )
            if settings.gateway.coalesce_transfers
            else None
        )
        self.sessions = ServiceClient(
            "session", settings.session_base_url(), settings.process.internal_token, timeout, self.http
        )
        prefix = settings.redis.key_prefix
        self.pipeline = Pipeline(
            Authenticator(
                self.redis,
                prefix,
                self.sessions,
                LocalSessions(
                    settings.gateway.session_local_cache_seconds, settings.gateway.unknown_token_cache_seconds
                ),
            ),
            Admission(
                self.redis,
                prefix,
                RateLimit(settings.gateway.rate_limit_per_second, settings.gateway.rate_limit_burst),
                settings.gateway.idempotency_lease_seconds,
                settings.gateway.idempotency_ttl_seconds,
                settings.gateway.idempotency_max_keys_per_tenant,
                settings.gateway.idempotency_max_kept_bytes,
            ),
            LedgerClient(self.ledger, coalescer),
            RefusalLimiter(self.redis, settings),
            settings.gateway.trusted_proxy_hops,
            long_poll={
                path: LongPolls(
                    ServiceClient(
                        "ledger",
                        settings.ledger_base_url(),
                        settings.process.internal_token,
                        timeout + wait,
                        self.long_poll_http,
                    ),
                    LedgerClient(self.ledger, None),
                    settings.gateway.events_long_poll_max,
                    settings.gateway.events_long_poll_max_per_tenant,
                )
                for path, wait in LONG_POLL_SECONDS.items()
            },
        )

    async def start(self) -> None:
        await self.http.start()
        await self.long_poll_http.start()

    async def close(self) -> None:
        await self.long_poll_http.close()
        await self.http.close()
        await self.redis.aclose()

    async def ready(self) -> str | None:
        try:
            await self.redis.ping()
        except RedisError:
            return "redis unavailable"
        if not await self.ledger.ready():
            return "ledger service unavailable"
        if not await self.sessions.ready():
            return "session service unavailable"
        return None


def create_app(settings: Settings | None = None) -> ASGIApp:
    """The app, wrapped in the request-context middleware so that even a routing 404 or 405
    (answered before any Litestar middleware runs) carries ``X-Request-Id``."""
    settings = settings or get_settings()
    components = Components(settings)
    emitter = Emitter("gateway")
    app = Litestar(
        route_handlers=[*public_routes(), *health_routes(components.ready)],
        on_startup=[components.start, emitter.start, heap.settle],
        on_shutdown=[emitter.stop, components.close],
        exception_handlers=exception_handlers(),
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
    app.state.settings = settings
    app.state.pipeline = components.pipeline
    app.state.sessions = components.sessions
    app.state.logins = LoginLimiter(components.redis, settings)
    app.state.openapi = msgspec.json.encode(build_document())
    return RequestContextMiddleware(
        RefuseDotSegments(instrument_app(app, "gateway", settings, ("redis",))), slo_route=("POST", "/v1/transfers")
    )
