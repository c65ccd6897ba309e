"""Tracing in the compute tier: what shared/tracing.py needs from the task definitions and IAM (ADR 0050)."""

from __future__ import annotations

from urllib.parse import urlsplit

import yaml

from shared.settings import Settings, TracingSettings
from shared.tracing_sdk import make_sampler
from tests.stacks.conftest import Json, props, resources, service_task_definitions

SERVICES = ("gateway", "ledger", "session")


def _task_containers(t: Json) -> dict[str, dict[str, Json]]:
    return {
        name.removesuffix("TaskDefinition").lower(): {c["Name"]: c for c in props(td)["ContainerDefinitions"]}
        for name, td in service_task_definitions(t).items()
    }


def _environment(container: Json) -> dict[str, object]:
    return {e["Name"]: e["Value"] for e in container.get("Environment", [])}


def test_app_containers_export_sampled_x_ray_traces_to_their_sidecar(templates: dict[str, Json]) -> None:
    for service, containers in _task_containers(templates["compute"]).items():
        env = _environment(containers[service])
        assert env["OTEL_SERVICE_NAME"] == service
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
        assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
        ratio = float(str(env["OTEL_TRACES_SAMPLER_ARG"]))
        assert 0 < ratio <= 0.1
        # The values are ones the services accept (they refuse to start on a bad sampler).
        make_sampler(
            Settings(tracing=TracingSettings(sampler=str(env["OTEL_TRACES_SAMPLER"]), sample_ratio=ratio)),
            decides_for_requests=service == "gateway",
        )
        assert {d["ContainerName"]: d["Condition"] for d in containers[service]["DependsOn"]} == {
            "otel-collector": "START"
        }


def test_the_sidecar_receives_on_the_task_loopback_and_exports_to_x_ray(templates: dict[str, Json]) -> None:
    for service, containers in _task_containers(templates["compute"]).items():
        collector = containers["otel-collector"]
        assert collector["Command"] == ["--config=env:AOT_CONFIG_CONTENT"]
        config = yaml.safe_load(str(_environment(collector)["AOT_CONFIG_CONTENT"]))
        receiver = config["receivers"]["otlp"]["protocols"]
        assert set(receiver) == {"grpc"}
        endpoint = urlsplit(str(_environment(containers[service])["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        assert receiver["grpc"]["endpoint"] == f"127.0.0.1:{endpoint.port}" and endpoint.hostname == "127.0.0.1"
        assert set(config["service"]["pipelines"]) == {"traces"}
        traces = config["service"]["pipelines"]["traces"]
        assert traces["receivers"] == ["otlp"] and traces["exporters"] == ["awsxray"]
        assert all(p in config["processors"] for p in traces["processors"])
        assert "ledger.transfer_id" in config["exporters"]["awsxray"]["indexed_attributes"]
        assert config["service"]["extensions"] == ["health_check"]  # what the image's /healthcheck asks


def test_task_roles_may_send_traces_and_nothing_more_for_it(templates: dict[str, Json]) -> None:
    roles = resources(templates["security"], "AWS::IAM::Role")
    for service in SERVICES:
        statements = [
            s
            for p in props(roles[f"{service.capitalize()}TaskRole"])["Policies"]
            for s in p["PolicyDocument"]["Statement"]
        ]
        xray = [s for s in statements if any(a.startswith("xray:") for a in s["Action"])]
        assert [sorted(s["Action"]) for s in xray] == [["xray:PutTelemetryRecords", "xray:PutTraceSegments"]]
        assert not any(a.startswith("logs:") for s in statements for a in s["Action"]), service
