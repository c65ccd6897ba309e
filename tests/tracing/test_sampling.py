"""The pieces shared.tracing assembles, in process (nothing here installs a global tracer)."""

from __future__ import annotations

import contextvars

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from shared.settings import Settings, TracingSettings
from shared.tracing import exporter_name, template_path
from shared.tracing_sdk import XRayIds, make_sampler

TRACE_ID = 0x5759E988BD862E3FE1BE46A994272793


def _remote_parent(sampled: bool) -> object:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    parent = SpanContext(TRACE_ID, 0x53995C3F42CD8AD8, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(parent))


def _decision(settings: Settings, gateway: bool, parent: object | None, kind: SpanKind = SpanKind.SERVER) -> Decision:
    sampler = make_sampler(settings, decides_for_requests=gateway)
    return sampler.should_sample(parent, TRACE_ID, "GET /v1/accounts", kind).decision  # type: ignore[arg-type]


def test_only_requests_start_traces() -> None:
    always = Settings(tracing=TracingSettings(sample_ratio=1.0))
    assert _decision(always, True, None) is Decision.RECORD_AND_SAMPLE
    for kind in (SpanKind.CLIENT, SpanKind.INTERNAL):  # a sweep's query, a probe's call
        assert _decision(always, False, None, kind) is Decision.DROP


def test_the_gateway_decides_and_the_internal_services_follow() -> None:
    never = Settings(tracing=TracingSettings(sample_ratio=0.0))
    # A client asking for Sampled=1 does not get traced by the gateway at ratio 0 ...
    assert _decision(never, True, _remote_parent(sampled=True)) is Decision.DROP
    # ... while the ledger and session service follow whatever the gateway decided.
    assert _decision(never, False, _remote_parent(sampled=True)) is Decision.RECORD_AND_SAMPLE
    assert (
        _decision(Settings(tracing=TracingSettings(sample_ratio=1.0)), False, _remote_parent(sampled=False))
        is Decision.DROP
    )


def test_ratio_sampling_is_by_trace_id() -> None:
    half = make_sampler(Settings(tracing=TracingSettings(sample_ratio=0.5)), decides_for_requests=True)
    decisions = [
        half.should_sample(None, i << 64 | i * 0x9E3779B97F4A7C15 % 2**64, "r", SpanKind.SERVER).decision
        for i in range(2000)
    ]
    share = sum(d is Decision.RECORD_AND_SAMPLE for d in decisions) / len(decisions)
    assert 0.4 < share < 0.6


def test_sampler_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="OTEL_TRACES_SAMPLER"):
        make_sampler(Settings(tracing=TracingSettings(sampler="always_on")), decides_for_requests=True)
    with pytest.raises(ValueError, match="OTEL_TRACES_SAMPLER_ARG"):
        make_sampler(Settings(tracing=TracingSettings(sample_ratio=1.5)), decides_for_requests=True)
    assert _decision(Settings(tracing=TracingSettings(sampler="parentbased_always_off")), True, None) is Decision.DROP


def test_an_alb_root_is_kept_as_the_trace_id() -> None:
    header: contextvars.ContextVar[str] = contextvars.ContextVar("h", default="")
    ids = XRayIds(header)
    header.set("Self=1-67891234-12456789abcdef012345678;Root=1-5759e988-bd862e3fe1be46a994272793")
    assert ids.generate_trace_id() == TRACE_ID
    for other in ("", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", "Root=garbage"):
        header.set(other)
        fresh = ids.generate_trace_id()
        assert fresh != TRACE_ID and fresh >> 96 > 0x5759E988  # a new, time-prefixed X-Ray id


def test_paths_are_named_by_their_route() -> None:
    a, t = "0b0f6a36-2a0e-4bf5-9d2f-3b0f1c9f2a11", "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    assert template_path(f"/v1/accounts/{a}/transfers") == "/v1/accounts/{account_id}/transfers"
    assert template_path(f"/v1/transfers/{t}/post") == "/v1/transfers/{transfer_id}/post"
    assert template_path("/v1/transfers/batch") == "/v1/transfers/batch"
    assert template_path("/v1/accounts") == "/v1/accounts"
    assert template_path("/internal/sessions/introspect") == "/internal/sessions/introspect"


def test_tracing_is_off_unless_an_exporter_is_configured() -> None:
    assert exporter_name(Settings(tracing=TracingSettings(exporter="", otlp_endpoint=""))) == "none"
    assert (
        exporter_name(Settings(tracing=TracingSettings(exporter="", otlp_endpoint="http://127.0.0.1:4317"))) == "otlp"
    )
    assert (
        exporter_name(Settings(tracing=TracingSettings(exporter="none", otlp_endpoint="http://127.0.0.1:4317")))
        == "none"
    )
    assert exporter_name(Settings(tracing=TracingSettings(exporter="console"))) == "console"
    with pytest.raises(ValueError):
        exporter_name(Settings(tracing=TracingSettings(exporter="jaeger")))
