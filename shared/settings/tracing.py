"""Tracing settings (ADR 0050; shared/tracing.py): the standard OpenTelemetry variables."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings.loading import RATIO, one_of, setting

EXPORTERS = ("otlp", "console", "none")
SAMPLERS = ("parentbased_traceidratio", "parentbased_always_on", "parentbased_always_off")
PROTOCOLS = ("grpc", "http/protobuf")


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """Whether and where spans go, and which requests are traced. With the OpenTelemetry SDK on, it
    also reads its own ``OTEL_BSP_*`` (span batching) and ``OTEL_RESOURCE_ATTRIBUTES`` variables."""

    exporter: str = setting("OTEL_TRACES_EXPORTER", "", check=lambda v: one_of(*EXPORTERS)(v) if v.strip() else None)
    """``OTEL_TRACES_EXPORTER``: where spans go: ``otlp`` (to ``OTEL_EXPORTER_OTLP_ENDPOINT``),
    ``console`` (one JSON line per span on stderr) or ``none``. Unset: ``otlp`` when an endpoint is
    set, else ``none``. With ``none`` tracing is off entirely: no SDK, no instrumentation, no
    middleware (shared/tracing.py)."""

    otlp_endpoint: str = setting("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    """``OTEL_EXPORTER_OTLP_ENDPOINT``: OTLP collector receiving the spans: the ADOT sidecar
    (``http://127.0.0.1:4317``) in AWS; unset locally, which keeps tracing off."""

    otlp_protocol: str = setting("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", check=one_of(*PROTOCOLS))
    """``OTEL_EXPORTER_OTLP_PROTOCOL``: ``grpc`` (port 4317) or ``http/protobuf`` (port 4318)."""

    sampler: str = setting("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", check=one_of(*SAMPLERS))
    """``OTEL_TRACES_SAMPLER``: ``parentbased_traceidratio`` (the default), ``parentbased_always_on``
    or ``parentbased_always_off``. The gateway decides for a new request; the ledger and session
    service follow its decision."""

    sample_ratio: float = setting("OTEL_TRACES_SAMPLER_ARG", 1.0, check=RATIO)
    """``OTEL_TRACES_SAMPLER_ARG``, a share from 0 to 1: of public requests traced with
    ``parentbased_traceidratio``; 0.05 in AWS."""
