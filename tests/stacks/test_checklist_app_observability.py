"""Checklist, application observability: the dashboard and alarms on the services' EMF metrics.

The names come from ``shared.metrics``; these tests also check them against what ``shared.metrics``
really writes, so a renamed metric or dimension breaks here and not silently in production.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from shared import metrics as m
from stacks.app_alarms import (
    SERVICE_DIMENSION,
    VERIFIER_FAILURE_LOGGER,
    VERIFIER_FAILURE_MESSAGE,
    VERIFIER_RUN_FAILURES,
)
from stacks.config import PLATFORM, PROD
from tests.stacks.conftest import Json, props, resources, service_task_definitions, walk

ROOT = Path(__file__).resolve().parents[2]
ALARMS = {
    "LedgerVerifierDiscrepanciesAlarm": "VerifierDiscrepancies > 0",
    "LedgerVerifierSilentAlarm": "VerifierDiscrepancies > 0",
    "LedgerVerifierFailingAlarm": "VerifierDiscrepancies > 0",
    "GatewayServerErrorRateAlarm": "Service 5xx",
    "LedgerServerErrorRateAlarm": "Service 5xx",
    "SessionServerErrorRateAlarm": "Service 5xx",
    "LedgerLatencyP99Alarm": "Ledger latency p99",
}


def _sizing(key: str) -> Json:
    return {"Fn::FindInMap": ["EnvironmentSizing", {"Ref": "EnvironmentName"}, key]}


def _alarm(templates: dict[str, Json], name: str) -> Json:
    return props(resources(templates["observability"], "AWS::CloudWatch::Alarm")[name])


def _widgets(templates: dict[str, Json]) -> list[Json]:
    (dashboard,) = resources(templates["observability"], "AWS::CloudWatch::Dashboard").values()
    widgets: list[Json] = json.loads(props(dashboard)["DashboardBody"]["Fn::Sub"][0])["widgets"]
    return widgets


def _widget(templates: dict[str, Json], title: str) -> Json:
    (widget,) = [w for w in _widgets(templates) if w["properties"].get("title") == title]
    return widget


def _rows(widget: Json) -> list[tuple[str, str, dict[str, str], Json]]:
    """(namespace, metric, dimensions, options) of every metric row of a widget (expressions skipped)."""
    rows = []
    for row in widget["properties"]["metrics"]:
        options = row[-1] if isinstance(row[-1], dict) else {}
        plain = row[:-1] if options else row
        if len(plain) >= 2:
            rows.append((plain[0], plain[1], dict(zip(plain[2::2], plain[3::2], strict=True)), options))
    return rows


def _stat_of(widget: Json, options: Json) -> str:
    return str(options.get("stat", widget["properties"]["stat"]))


def _emitted() -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    """(namespace, metric, dimensions) of every metric ``shared.metrics`` writes, for every service."""
    found = set()
    for service in m.SERVICES:
        metrics = m.Metrics(service)
        metrics.request(200, 3.0, None, transfer=service == "gateway")  # the SLO route: the gateway's only
        metrics.request(503, 9.0, "unavailable")
        if service == "ledger":
            metrics.count(m.TRANSFERS_COMMITTED, 2)
            metrics.sample(m.GROUP_SIZE, 2)
            metrics.gauge(m.VERIFIER_DISCREPANCIES, 0)
            metrics.gauge(m.WEBHOOK_ENDPOINTS_FAILING, 0)
            metrics.count(m.WEBHOOK_DELIVERY_FAILURES)
        for line in metrics.lines(now_ms=0):
            for directive in line["_aws"]["CloudWatchMetrics"]:
                for dims in directive["Dimensions"]:
                    values = frozenset((d, str(line[d])) for d in dims)
                    for metric in directive["Metrics"]:
                        found.add((directive["Namespace"], metric["Name"], values))
    return found


def _referenced(templates: dict[str, Json]) -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    """(namespace, metric, dimensions) of every application metric an alarm or a widget reads."""
    refs = set()
    for node in walk(templates["observability"]["Resources"]):
        if isinstance(node, dict) and node.get("Namespace") == m.NAMESPACE and "MetricName" in node:
            dims = frozenset((d["Name"], d["Value"]) for d in node.get("Dimensions", []))
            refs.add((node["Namespace"], node["MetricName"], dims))
    for widget in _widgets(templates):
        if widget["type"] == "metric":
            for namespace, metric, dims, _ in _rows(widget):
                refs.add((namespace, metric, frozenset(dims.items())))
    return {ref for ref in refs if ref[0] == m.NAMESPACE}


def test_services_and_namespace_of_the_stacks_are_those_of_shared_metrics() -> None:
    assert tuple(s.name for s in PLATFORM.services) == m.SERVICES
    assert PLATFORM.metrics_namespace == m.NAMESPACE


def test_every_application_metric_the_tier_reads_is_one_shared_metrics_writes(templates: dict[str, Json]) -> None:
    referenced = _referenced(templates)
    emitted = _emitted()
    derived = {ref for ref in referenced if ref[1] == VERIFIER_RUN_FAILURES}  # from the metric filter
    assert derived == {(m.NAMESPACE, VERIFIER_RUN_FAILURES, frozenset({(SERVICE_DIMENSION, "ledger")}))}
    assert referenced - derived <= emitted, sorted(referenced - derived - emitted)
    # ... and the tier reads every metric of every service it emits (errors by code through SEARCH).
    per_code = {ref for ref in emitted if ref[1] == m.ERRORS}
    assert emitted - per_code <= referenced, sorted(emitted - per_code - referenced)


def test_latency_is_emitted_in_milliseconds_as_the_latency_threshold_assumes() -> None:
    metrics = m.Metrics("ledger")
    metrics.request(200, 12.5, None)
    (line,) = metrics.lines(now_ms=0)
    units = {d["Name"]: d["Unit"] for d in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units[m.LATENCY] == "Milliseconds"


@pytest.mark.parametrize("service", m.SERVICES)
def test_dashboard_per_service_requests_latency_p50_p99_and_server_errors(
    templates: dict[str, Json], service: str
) -> None:
    dims = {SERVICE_DIMENSION: service}
    requests = _widget(templates, f"{service} requests / min")
    assert [(r[1], r[2], _stat_of(requests, r[3])) for r in _rows(requests)] == [(m.REQUESTS, dims, "Sum")]
    latency = _widget(templates, f"{service} latency p50 / p99 (ms)")
    assert sorted(_stat_of(latency, r[3]) for r in _rows(latency) if r[1] == m.LATENCY and r[2] == dims) == [
        "p50",
        "p99",
    ]
    errors = _widget(templates, f"{service} 5xx")
    assert (m.SERVER_ERRORS, dims, "Sum") in [(r[1], r[2], _stat_of(errors, r[3])) for r in _rows(errors)]
    assert any("expression" in row[0] for row in errors["properties"]["metrics"])  # the rate the alarm uses


def test_dashboard_ledger_commits_group_size_avg_max_and_verifier(templates: dict[str, Json]) -> None:
    ledger = {SERVICE_DIMENSION: "ledger"}

    def stats(title: str, metric: str) -> set[str]:
        widget = _widget(templates, title)
        return {_stat_of(widget, r[3]) for r in _rows(widget) if r[1] == metric and r[2] == ledger}

    assert stats("ledger transfers committed / min", m.TRANSFERS_COMMITTED) == {"Sum"}
    assert stats("ledger group-commit size (requests per transaction)", m.GROUP_SIZE) == {"Average", "Maximum"}
    verifier = "ledger verifier: discrepancies (must be 0), failed runs, reports"
    assert stats(verifier, m.VERIFIER_DISCREPANCIES) == {"Maximum", "SampleCount"}
    assert stats(verifier, VERIFIER_RUN_FAILURES) == {"Sum"}


def test_dashboard_shows_errors_by_code_emf_extraction_errors_and_every_alarm(templates: dict[str, Json]) -> None:
    search = _widget(templates, "errors by service and code / min")["properties"]["metrics"][0][0]["expression"]
    assert search.startswith(f"SEARCH('{{{m.NAMESPACE},Code,{SERVICE_DIMENSION}}}") and f'"{m.ERRORS}"' in search
    emf = _rows(_widget(templates, "EMF extraction errors (metrics dropped)"))
    assert {(r[1], r[2]["LogGroupName"]) for r in emf} == {
        (metric, f"/fintech/${{EnvironmentName}}/{s}")
        for s in m.SERVICES
        for metric in ("EMFValidationErrors", "EMFParsingErrors")
    }
    (alarm_widget,) = [w for w in _widgets(templates) if w["type"] == "alarm" and w["properties"]["title"] == "Alarms"]
    alarms = resources(templates["observability"], "AWS::CloudWatch::Alarm")
    assert alarm_widget["properties"]["alarms"] == [f"${{{name}.Arn}}" for name in sorted(alarms)]


def test_every_application_alarm_notifies_on_alarm_and_ok_and_decides_missing_data(
    templates: dict[str, Json],
) -> None:
    expected = {
        "LedgerVerifierDiscrepanciesAlarm": "ignore",
        "LedgerVerifierSilentAlarm": "breaching",
        "LedgerVerifierFailingAlarm": "notBreaching",
        "GatewayServerErrorRateAlarm": "notBreaching",
        "LedgerServerErrorRateAlarm": "notBreaching",
        "SessionServerErrorRateAlarm": "notBreaching",
        "LedgerLatencyP99Alarm": "notBreaching",
    }
    assert set(expected) == set(ALARMS)
    for name, missing in expected.items():
        p = _alarm(templates, name)
        assert p["AlarmActions"] == [{"Ref": "AlarmTopic"}] and p["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert p["TreatMissingData"] == missing, name
        assert "Runbook: '" + ALARMS[name] + "'" in p["AlarmDescription"], name


def test_verifier_discrepancies_above_zero_alarm_at_once(templates: dict[str, Json]) -> None:
    p = _alarm(templates, "LedgerVerifierDiscrepanciesAlarm")
    assert (p["Namespace"], p["MetricName"]) == (m.NAMESPACE, m.VERIFIER_DISCREPANCIES)
    assert p["Dimensions"] == [{"Name": SERVICE_DIMENSION, "Value": "ledger"}]
    assert p["Statistic"] == "Maximum" and p["ComparisonOperator"] == "GreaterThanThreshold"
    assert p["Threshold"] == 0 and p["EvaluationPeriods"] == 1 and p["DatapointsToAlarm"] == 1


def test_verifier_silence_pages_after_the_configured_minutes_without_a_report(templates: dict[str, Json]) -> None:
    p = _alarm(templates, "LedgerVerifierSilentAlarm")
    assert (p["MetricName"], p["Statistic"], p["Period"]) == (m.VERIFIER_DISCREPANCIES, "SampleCount", 60)
    assert p["ComparisonOperator"] == "LessThanThreshold" and p["Threshold"] == 1
    assert p["EvaluationPeriods"] == p["DatapointsToAlarm"] == _sizing("VerifierSilenceMinutes")


def test_verifier_failures_are_counted_from_the_ledger_log_line_the_ledger_writes(templates: dict[str, Json]) -> None:
    (metric_filter,) = resources(templates["observability"], "AWS::Logs::MetricFilter").values()
    compute_groups = {
        props(g)["LogGroupName"]["Fn::Sub"] for g in resources(templates["compute"], "AWS::Logs::LogGroup").values()
    }
    assert props(metric_filter)["LogGroupName"]["Fn::Sub"] in compute_groups
    assert props(metric_filter)["LogGroupName"] == {"Fn::Sub": "/fintech/${EnvironmentName}/ledger"}
    pattern = props(metric_filter)["FilterPattern"]
    assert f'"{VERIFIER_FAILURE_LOGGER}"' in pattern and f'"{VERIFIER_FAILURE_MESSAGE}"' in pattern
    (transform,) = props(metric_filter)["MetricTransformations"]
    assert (transform["MetricNamespace"], transform["MetricName"]) == (m.NAMESPACE, VERIFIER_RUN_FAILURES)
    # The ledger module that logs it (logger = module name) still says exactly this.
    source = (ROOT / (VERIFIER_FAILURE_LOGGER.replace(".", "/") + ".py")).read_text()
    assert f'log.exception("{VERIFIER_FAILURE_MESSAGE}")' in source and "getLogger(__name__)" in source
    p = _alarm(templates, "LedgerVerifierFailingAlarm")
    assert (p["MetricName"], p["Statistic"], p["Threshold"]) == (VERIFIER_RUN_FAILURES, "Sum", 0)
    assert p["EvaluationPeriods"] == p["DatapointsToAlarm"] == 3


@pytest.mark.parametrize("service", m.SERVICES)
def test_server_error_rate_alarm_per_service_from_config(templates: dict[str, Json], service: str) -> None:
    p = _alarm(templates, f"{service.capitalize()}ServerErrorRateAlarm")
    queries = {q["Id"]: q for q in p["Metrics"]}
    for qid, metric in (("errors", m.SERVER_ERRORS), ("requests", m.REQUESTS)):
        stat = queries[qid]["MetricStat"]
        assert stat["Metric"]["MetricName"] == metric and stat["Stat"] == "Sum", qid
        assert stat["Metric"]["Dimensions"] == [{"Name": SERVICE_DIMENSION, "Value": service}]
    (returned,) = [q for q in p["Metrics"] if q["ReturnData"]]
    expression, variables = returned["Expression"]["Fn::Sub"]
    assert "100 * FILL(errors, 0) / requests" in expression and "${MinRequests}" in expression
    assert variables == {"MinRequests": _sizing("ServerErrorMinRequestsPerMinute")}
    assert p["Threshold"] == _sizing("ServerErrorRatePercent")
    assert p["ComparisonOperator"] == "GreaterThanThreshold"


def test_ledger_latency_p99_alarm_from_config(templates: dict[str, Json]) -> None:
    p = _alarm(templates, "LedgerLatencyP99Alarm")
    assert (p["MetricName"], p["ExtendedStatistic"]) == (m.LATENCY, "p99") and "Statistic" not in p
    assert p["Dimensions"] == [{"Name": SERVICE_DIMENSION, "Value": "ledger"}]
    assert p["Threshold"] == _sizing("LedgerLatencyP99Ms")
    assert p["EvaluateLowSampleCountPercentile"] == "evaluate"


def test_thresholds_are_the_typed_config_of_every_environment(templates: dict[str, Json]) -> None:
    rows = templates["observability"]["Mappings"]["EnvironmentSizing"]
    assert set(rows) == set(PLATFORM.environment_names())
    for env in PLATFORM.environments:
        row: dict[str, Any] = rows[env.name]
        assert row["ServerErrorRatePercent"] == env.server_error_rate_percent
        assert row["ServerErrorMinRequestsPerMinute"] == env.server_error_min_requests_per_minute
        assert row["LedgerLatencyP99Ms"] == env.ledger_latency_p99_ms
        assert row["VerifierSilenceMinutes"] == env.verifier_silence_minutes
    # The app alarms name no threshold literal but the verifier's zero tolerance and the count floors.
    for name in ALARMS:
        threshold = _alarm(templates, name)["Threshold"]
        assert isinstance(threshold, dict) or (name, threshold) in {
            ("LedgerVerifierDiscrepanciesAlarm", 0),
            ("LedgerVerifierSilentAlarm", 1),
            ("LedgerVerifierFailingAlarm", 0),
        }, name


@pytest.mark.parametrize(
    "change",
    [
        {"verifier_silence_minutes": 5},
        {"verifier_silence_minutes": 2000},
        {"server_error_rate_percent": 0.0},
        {"server_error_rate_percent": 150.0},
        {"ledger_latency_p99_ms": 0},
        {"server_error_min_requests_per_minute": 0},
    ],
)
def test_config_refuses_alarm_thresholds_that_cannot_work(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(PROD, **change)


def test_emf_reaches_cloudwatch_through_awslogs_without_extra_iam(templates: dict[str, Json]) -> None:
    compute = templates["compute"]
    groups = resources(compute, "AWS::Logs::LogGroup")
    for name, task in service_task_definitions(compute).items():
        (app,) = [c for c in props(task)["ContainerDefinitions"] if c["Name"] in m.SERVICES]
        log = app["LogConfiguration"]
        assert log["LogDriver"] == "awslogs", name  # stdout lines become log events as they are
        group = groups[log["Options"]["awslogs-group"]["Ref"]]
        assert props(group)["LogGroupName"] == {"Fn::Sub": f"/fintech/${{EnvironmentName}}/{app['Name']}"}
        # Metric extraction (EMF, metric filters) is a Standard log class feature.
        assert props(group).get("LogGroupClass", "STANDARD") == "STANDARD", name
    # The execution role that the awslogs driver uses may write the groups; CloudWatch Logs extracts
    # the metrics itself, so no role needs cloudwatch:PutMetricData.
    (execution,) = [r for n, r in resources(templates["security"], "AWS::IAM::Role").items() if n == "ExecutionRole"]
    statements = [s for p in props(execution)["Policies"] for s in p["PolicyDocument"]["Statement"]]
    (logs,) = [s for s in statements if "logs:PutLogEvents" in s["Action"]]
    assert sorted(logs["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert any("log-group:/fintech/${EnvironmentName}/*" in json.dumps(r) for r in logs["Resource"])
    assert "cloudwatch:PutMetricData" not in json.dumps(templates)


def test_runbook_has_a_section_for_each_application_alarm() -> None:
    runbook = (ROOT / "docs" / "runbooks.md").read_text()
    for name, section in ALARMS.items():
        assert f"### {section}" in runbook, section
        assert f"`{name}`" in runbook, name
    assert "./scripts/admin verify" in runbook
