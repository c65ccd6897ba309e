"""The OpenTelemetry SDK parts :func:`shared.tracing.setup` assembles; imported only when tracing is on.

- :func:`make_sampler`: parent-based ratio sampling where only a server span may start a trace.
- :class:`XRayIds`: X-Ray trace ids that keep the ALB's ``Root=`` when the request has no parent.
- :class:`DatabaseStatementKind`: ``db.operation`` (``SELECT``, ``BEGIN``, ``COMMIT`` ...) on each
  PostgreSQL span, the statement kind X-Ray shows next to the placeholder-only SQL.
- :func:`make_exporter`: OTLP over gRPC or HTTP, or one JSON line per span on stderr.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from shared.logging import trace_id_from_header
from shared.settings import Settings

SAMPLERS = {"parentbased_traceidratio", "parentbased_always_on", "parentbased_always_off"}

DEFAULT_ENDPOINTS = {"grpc": "http://127.0.0.1:4317", "http/protobuf": "http://127.0.0.1:4318"}


class RequestRoots(Sampler):
    """For a span without a parent: a server span (a request) is sampled by trace-id ratio; any
    other span (a sweep, a probe's client call, a verifier query) is dropped, so only requests
    start traces."""

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if kind is not SpanKind.SERVER:
            return SamplingResult(Decision.DROP)
        return self._ratio.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"RequestRoots{{{self._ratio.get_description()}}}"


def make_sampler(settings: Settings, *, decides_for_requests: bool) -> Sampler:
    """Parent-based ratio sampling.

    ``decides_for_requests`` (the public gateway): a span whose parent is remote (the caller's
    ``X-Amzn-Trace-Id``) is sampled by ratio too, so a client cannot force tracing of its requests.
    Elsewhere a remote parent's decision (the gateway's) is followed.
    """
    name = settings.tracing.sampler.strip().lower()
    if name not in SAMPLERS:
        raise ValueError(f"OTEL_TRACES_SAMPLER must be one of {sorted(SAMPLERS)}, got {name!r}")
    ratio = {"parentbased_always_on": 1.0, "parentbased_always_off": 0.0}.get(name, settings.tracing.sample_ratio)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG must be between 0 and 1, got {ratio}")
    root = RequestRoots(ratio)
    if decides_for_requests:
        return ParentBased(root, remote_parent_sampled=root, remote_parent_not_sampled=root)
    return ParentBased(root)


_pinned_trace_id: contextvars.ContextVar[int] = contextvars.ContextVar("pinned_trace_id", default=0)
"""The trace id :class:`RequestSampling` decided a new trace on, for the server span to use."""


class XRayIds(AwsXRayIdGenerator):
    """X-Ray trace ids (time-prefixed). A request carrying ``X-Amzn-Trace-Id: Root=...`` without a
    ``Parent`` (what the ALB adds) has no parent to continue, so its trace starts afresh; this keeps
    the ALB's ``Root`` as the trace id instead of minting another one."""

    def __init__(self, header: contextvars.ContextVar[str]) -> None:
        self._header = header

    def generate_trace_id(self) -> int:
        pinned = _pinned_trace_id.get()
        if pinned:
            return pinned
        header = self._header.get()
        if header and "Parent=" not in header:
            version, _, rest = trace_id_from_header(header).partition("-")
            epoch, _, unique = rest.partition("-")
            if version == "1" and len(epoch) == 8 and len(unique) == 24:
                try:
                    return int(epoch + unique, 16)
                except ValueError:
                    pass
        return super().generate_trace_id()


class DatabaseStatementKind(SpanProcessor):
    """``db.operation`` and the span name of a PostgreSQL span: its statement kind (``SELECT``,
    ``WITH``, ``BEGIN``, ``COMMIT``), without the trailing semicolon asyncpg's own statements have."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        attributes = span.attributes
        if attributes is not None and attributes.get("db.system") == "postgresql":
            kind = span.name.rstrip(";").upper()
            span.update_name(kind)
            span.set_attribute("db.operation", kind)

    def on_end(self, span: ReadableSpan) -> None:
        return None


def resource(service: str) -> Resource:
    """``service.name`` (the X-Ray segment name), ``OTEL_RESOURCE_ATTRIBUTES``, and the ECS task's
    attributes when running in ECS (the detector is silent elsewhere)."""
    from opentelemetry.sdk.extension.aws.resource.ecs import AwsEcsResourceDetector
    from opentelemetry.sdk.resources import get_aggregated_resources

    base = Resource.create({"service.name": service})
    return get_aggregated_resources([AwsEcsResourceDetector()], base)


def _json_line(span: ReadableSpan) -> str:
    return span.to_json(indent=None) + "\n"


def make_exporter(name: str, settings: Settings) -> SpanExporter:
    """The span exporter: ``console`` (stderr, one JSON line per span) or ``otlp``."""
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stderr, formatter=_json_line)
    protocol = settings.tracing.otlp_protocol.strip().lower()
    if protocol not in DEFAULT_ENDPOINTS:
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL must be grpc or http/protobuf, got {protocol!r}")
    endpoint = settings.tracing.otlp_endpoint or DEFAULT_ENDPOINTS[protocol]
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")


class RequestSampling:
    """ASGI wrapper deciding, before the OpenTelemetry middleware, whether a request is sampled: with
    the same propagator, sampler and trace id the tracer would use, so the decision is the same.

    A sampled request goes on through ``traced`` (the middleware and the app). An unsampled one
    skips the middleware, whose attribute collection is most of the cost of an unsampled request:
    it runs the app under a non-recording span that carries its trace context (for the log lines
    and the ``Sampled=0`` header its upstream calls pass on) with the instrumentations suppressed.
    """

    def __init__(self, app: Any, traced: Any, provider: Any, header: contextvars.ContextVar[str]) -> None:
        from opentelemetry.propagators.aws import AwsXRayPropagator

        self.app = app
        self.traced = traced
        self._sampler: Sampler = provider.sampler
        self._ids: XRayIds = provider.id_generator
        self._header = header
        self._propagator = AwsXRayPropagator()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/health/"):
            await self.app(scope, receive, send)  # probes are never traced
            return
        from opentelemetry import context, trace
        from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY

        header = self._header.get()
        parent = self._propagator.extract({"X-Amzn-Trace-Id": header}) if header else Context()
        remote = trace.get_current_span(parent).get_span_context()
        trace_id = remote.trace_id if remote.is_valid else self._ids.generate_trace_id()
        decision = self._sampler.should_sample(parent, trace_id, "request", SpanKind.SERVER).decision
        if decision.is_sampled():
            pin = None if remote.is_valid else _pinned_trace_id.set(trace_id)
            try:
                await self.traced(scope, receive, send)
            finally:
                if pin is not None:
                    _pinned_trace_id.reset(pin)
            return
        span = trace.NonRecordingSpan(
            trace.SpanContext(trace_id, self._ids.generate_span_id(), is_remote=False, trace_state=remote.trace_state)
        )
        unsampled = context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, trace.set_span_in_context(span, parent))
        token = context.attach(unsampled)
        try:
            await self.app(scope, receive, send)
        finally:
            context.detach(token)
