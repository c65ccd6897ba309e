"""Distributed tracing: OpenTelemetry spans over OTLP to the ADOT collector sidecar, shown in X-Ray.

One public request is one trace: the gateway's server span with its Redis calls and its calls to
the session and ledger services; their server spans; the session service's DynamoDB and Redis
calls; the ledger's PostgreSQL statements and its hand-made domain spans
(``services/ledger/spans.py``). Trace ids are X-Ray ids (``AwsXRayIdGenerator``) and travel in
``X-Amzn-Trace-Id`` (``AwsXRayPropagator``), the header the ALB adds: a request that arrives with
the ALB's ``Root=`` and no parent keeps that id, so X-Ray, the ALB access log and every JSON log line
(``trace_id``) name a request the same way.

**Off unless an exporter is configured** (``OTEL_TRACES_EXPORTER``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
see :mod:`shared.settings`): then :func:`setup` installs nothing, :func:`instrument_app` returns
the app unchanged, :func:`client_trace_configs` is empty and :func:`tracer` is None (the ledger's
domain spans are then shared no-op contexts), so tracing off costs nothing and the services
behave exactly as before (the incoming ``X-Amzn-Trace-Id`` is still forwarded by
:mod:`shared.http`).

**Unsampled requests** skip the server-span middleware and run with the instrumentations
suppressed (:class:`shared.tracing_sdk.RequestSampling`); their decision still travels downstream.

**Sampling** (ADR 0050): parent-based by ratio. Only a server span (a request) may start a
trace, so background work (expiry sweeps, the verifier, readiness probes) never does. The gateway
decides for each public request by ``OTEL_TRACES_SAMPLER_ARG`` whatever the caller's header says
(a client cannot force its requests to be traced); the ledger and session service follow the
gateway's decision.

**Shutdown**: the batch span processor exports every few seconds from a background thread, and
the SDK's own flush runs from ``atexit``, which never runs here: uvicorn re-raises SIGTERM after
its graceful shutdown, so the process ends by the signal. :func:`instrument_app` therefore flushes
the exporter when the app's lifespan shutdown completes (after the last request and the shutdown
hooks), bounded by :data:`FLUSH_TIMEOUT_SECONDS`, so a task stop in ECS keeps its last spans.

**Privacy**: span names and URL attributes carry route templates (``/v1/accounts/{account_id}``),
never ids or query strings; no header is captured (``Authorization``, ``X-Internal-Token`` and
cookies are redacted even if header capture is switched on by environment); no request or
response body is recorded; asyncpg runs with ``capture_parameters=False`` (``db.statement`` is our
SQL, which has only placeholders) and Redis commands are recorded as ``EVALSHA ? ? ?``. The only
business identifier on a span is the ledger's ``ledger.transfer_id``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from shared import logging as json_logging
from shared.logging import trace_header_var
from shared.settings import Settings

log = logging.getLogger(__name__)

LIBRARIES = frozenset({"asyncpg", "redis", "aiobotocore"})
"""Client libraries :func:`setup` can instrument; each service names the ones it uses."""

SENSITIVE_HEADERS = ["authorization", "x-internal-token", "cookie", "set-cookie", "x-api-key"]
"""Redacted by the HTTP instrumentations even if header capture is enabled by environment."""

FLUSH_TIMEOUT_SECONDS = 5.0
"""Longest the exporter may take to send the last spans at shutdown (ECS allows 30 s in all)."""

_ID_SEGMENT = {"accounts": "{account_id}", "transfers": "{transfer_id}"}
_LITERAL_SEGMENTS = frozenset({"", "batch"})

_tracer: Any = None
_provider: Any = None
_api: Any = None  # opentelemetry.trace, once tracing is on
_propagate: Any = None  # opentelemetry.propagate, once tracing is on
_configured = False


def enabled() -> bool:
    """True once :func:`setup` turned tracing on in this process."""
    return _tracer is not None


def tracer() -> Any:
    """The process's tracer, or None while tracing is off."""
    return _tracer


def recording() -> bool:
    """True while the current request is being traced (tracing on and this request sampled)."""
    return _api is not None and bool(_api.get_current_span().is_recording())


def inject(headers: dict[str, str]) -> None:
    """Write the current trace context into ``headers`` as ``X-Amzn-Trace-Id`` (tracing on only):
    an unsampled request passes on its ``Sampled=0`` decision, which the upstream follows."""
    if _propagate is not None:
        _propagate.inject(headers)


def exporter_name(settings: Settings) -> str:
    """``otlp``, ``console`` or ``none`` from the settings (see ``Settings.tracing.exporter``)."""
    name = settings.tracing.exporter.strip().lower()
    if not name:
        return "otlp" if settings.tracing.otlp_endpoint else "none"
    if name not in {"otlp", "console", "none"}:
        raise ValueError(f"OTEL_TRACES_EXPORTER must be otlp, console or none, got {name!r}")
    return name


def template_path(path: str) -> str:
    """``path`` with the ids of the public API replaced by placeholders:
    ``/v1/accounts/7c9e.../transfers`` -> ``/v1/accounts/{account_id}/transfers``."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        placeholder = _ID_SEGMENT.get(parts[i - 1])
        if placeholder is not None and parts[i] not in _LITERAL_SEGMENTS:
            parts[i] = placeholder
    return "/".join(parts)


def setup(service: str, settings: Settings, libraries: Iterable[str] = ()) -> bool:
    """Turn tracing on for this process when an exporter is configured; True if it is on.

    Idempotent: the first call decides (one tracer provider per process). ``libraries`` names the
    client libraries the service uses (a subset of :data:`LIBRARIES`); they are instrumented only
    when tracing is on.
    """
    global _api, _configured, _propagate, _provider, _tracer
    unknown = set(libraries) - LIBRARIES
    if unknown:
        raise ValueError(f"cannot instrument {sorted(unknown)}")
    if _configured:
        return enabled()
    _configured = True
    exporter = exporter_name(settings)
    if exporter == "none":
        return False

    from opentelemetry import propagate, trace
    from opentelemetry.propagators.aws import AwsXRayPropagator
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from shared.tracing_sdk import DatabaseStatementKind, XRayIds, make_exporter, make_sampler, resource

    provider = TracerProvider(
        resource=resource(service),
        sampler=make_sampler(settings, decides_for_requests=service == "gateway"),
        id_generator=XRayIds(trace_header_var),
    )
    provider.add_span_processor(DatabaseStatementKind())
    provider.add_span_processor(BatchSpanProcessor(make_exporter(exporter, settings)))
    trace.set_tracer_provider(provider)
    propagate.set_global_textmap(AwsXRayPropagator())
    _instrument(set(libraries), provider)
    _provider, _api, _propagate = provider, trace, propagate
    _tracer = provider.get_tracer("fintech-ledger")
    json_logging.trace_id_source = current_trace_id
    log.info(
        "tracing on",
        extra={"exporter": exporter, "sampler": settings.tracing.sampler, "ratio": settings.tracing.sample_ratio},
    )
    return True


def _instrument(libraries: set[str], provider: Any) -> None:
    if "asyncpg" in libraries:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        # Never the parameter values: amounts, ids and metadata travel only as parameters.
        AsyncPGInstrumentor(capture_parameters=False).instrument(tracer_provider=provider)
    if "redis" in libraries:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().instrument(tracer_provider=provider)
    if "aiobotocore" in libraries:
        from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor

        AiobotocoreInstrumentor().instrument(tracer_provider=provider)


def _server_span_details(scope: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Span name and URL attributes of a server span: the route template, never ids or query."""
    method = str(scope.get("method", "HTTP"))
    path = template_path(str(scope.get("path", "")))
    server = scope.get("server") or ("", 0)
    url = f"{scope.get('scheme', 'http')}://{server[0]}:{server[1]}{path}"
    return f"{method} {path}", {"http.target": path, "http.url": url, "http.route": path}


def instrument_app(app: Any, service: str, settings: Settings, libraries: Iterable[str] = ()) -> Any:
    """``app`` wrapped in the OpenTelemetry ASGI middleware (a server span per request, its context
    extracted from ``X-Amzn-Trace-Id``) when tracing is on; ``app`` itself when it is off.

    Wrap it inside :class:`shared.web.RequestContextMiddleware`, which must run first.
    """
    if not setup(service, settings, libraries):
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    from shared.tracing_sdk import RequestSampling

    traced = OpenTelemetryMiddleware(
        _UnsampledUntraced(app),
        excluded_urls="/health/",
        default_span_details=_server_span_details,
        exclude_spans=["receive", "send"],
        tracer_provider=_provider,
        http_capture_headers_sanitize_fields=SENSITIVE_HEADERS,
    )
    return _FlushOnShutdown(RequestSampling(app, traced, _provider, trace_header_var))


def flush_and_stop() -> None:
    """Export every finished span now and stop the exporter (blocking, bounded): the last thing
    tracing does in a process. A no-op while tracing is off."""
    if _provider is None:
        return
    timeout_millis = int(FLUSH_TIMEOUT_SECONDS * 1000)
    if not _provider.force_flush(timeout_millis):
        log.warning("spans not flushed in time at shutdown", extra={"timeout_s": FLUSH_TIMEOUT_SECONDS})
    _provider.shutdown()


class _FlushOnShutdown:
    """Outermost of the tracing wrappers: when the app reports its lifespan shutdown complete (or
    failed), the finished spans are exported before the server hears of it and exits."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_after_flush(message: Any) -> None:
            if message["type"] in {"lifespan.shutdown.complete", "lifespan.shutdown.failed"}:
                # In a thread: the exporter blocks (gRPC, stderr), and the loop may still have work.
                await asyncio.to_thread(flush_and_stop)
            await send(message)

        await self.app(scope, receive, send_after_flush)


class _UnsampledUntraced:
    """Inside the server span: a request that is not sampled runs with the instrumentations
    suppressed, so each of its Redis, SQL, DynamoDB and HTTP calls costs one context look-up instead
    of a non-recording span. (Its trace context still travels: :func:`inject`.) Unsampled requests
    normally never get here (:class:`shared.tracing_sdk.RequestSampling` decides first); this keeps
    the rule should the two decisions ever differ."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if recording():
            await self.app(scope, receive, send)
            return
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        with suppress_instrumentation():
            await self.app(scope, receive, send)


def client_trace_configs() -> list[Any]:
    """aiohttp ``trace_configs`` giving a service-to-service call a client span and injecting the
    trace header; empty when tracing is off. aiohttp's tracing hooks cost even when the request is
    not sampled, so :class:`shared.http.HttpPool` uses them only for sampled requests."""
    if _tracer is None:
        return []
    from opentelemetry.instrumentation.aiohttp_client import create_trace_config

    def url_filter(url: Any) -> str:
        return f"{url.scheme}://{url.host}:{url.port}{template_path(url.path)}"

    def request_hook(span: Any, params: Any) -> None:
        if span is not None and span.is_recording():
            span.update_name(f"{params.method} {template_path(params.url.path)}")

    return [
        create_trace_config(
            url_filter=url_filter,
            request_hook=request_hook,
            tracer_provider=_provider,
            sensitive_headers=SENSITIVE_HEADERS,
        )
    ]


def current_trace_id() -> str:
    """The X-Ray form (``1-xxxxxxxx-yyyy...``) of the current span's trace id, or ``""``."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return ""
    digits = f"{context.trace_id:032x}"
    return f"1-{digits[:8]}-{digits[8:]}"
