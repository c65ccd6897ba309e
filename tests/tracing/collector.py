"""A tiny OTLP/gRPC trace receiver in the test process: the collector the service processes export to.

The services run as separate processes, so an in-process ``InMemorySpanExporter`` cannot see their
spans. Instead each service exports exactly as in AWS (the OTLP gRPC exporter, to
``OTEL_EXPORTER_OTLP_ENDPOINT``) and this receiver decodes what arrives into plain :class:`Span`
records, which the tests query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, which) if which else None


@dataclass
class Span:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    links: list[tuple[str, str]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    """The exporting process's resource (``service.name``, ``OTEL_RESOURCE_ATTRIBUTES``, ...)."""

    def __repr__(self) -> str:
        return f"<{self.service} {self.kind} {self.name!r} {self.span_id} parent={self.parent_id or '-'}>"


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Collects every exported span; :meth:`wait_for` polls until a condition holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[Span] = []
        self._server = grpc.server(ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)

    def Export(self, request: Any, context: Any) -> Any:  # the gRPC method name
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        Span(
                            service=str(resource.get("service.name")),
                            name=span.name,
                            kind=KINDS[span.kind],
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                            events=[
                                {a.key: _value(a.value) for a in e.attributes} | {"name": e.name} for e in span.events
                            ],
                            resource=resource,
                        )
                    )
        with self._lock:
            self._spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self, trace_id: str | None = None) -> list[Span]:
        with self._lock:
            return [s for s in self._spans if trace_id is None or s.trace_id == trace_id]

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def wait_for(
        self, condition: Callable[[list[Span]], bool], trace_id: str | None = None, timeout: float = 15.0
    ) -> list[Span]:
        """The spans (of ``trace_id``) once ``condition`` holds for them; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans(trace_id)
            if condition(spans):
                return spans
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s; spans: {spans}")
            time.sleep(0.05)
