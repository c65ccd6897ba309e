"""Checklist, SLOs (issue 17, item 3): the availability and latency SLOs, their multi-window burn-rate
alarms, the dashboard row, the runbook entries and the statement in docs/hld.md.

The burn-rate expressions are also *evaluated* here on made-up window totals, so a wrong budget,
floor or ratio fails a test rather than paging at the wrong error rate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared import metrics as m
from stacks import slo
from stacks.app_alarms import SERVICE_DIMENSION
from tests.stacks.conftest import Json, props, resources

ROOT = Path(__file__).resolve().parents[2]
TOPIC = [{"Ref": "AlarmTopic"}]
CASES = [(name, speed) for name in slo.SLOS for speed in slo.SPEEDS]


def _alarms(templates: dict[str, Json]) -> dict[str, Json]:
    return resources(templates["observability"], "AWS::CloudWatch::Alarm")


def _composite(templates: dict[str, Json], name: str, speed: slo.Speed) -> Json:
    return props(
        resources(templates["observability"], "AWS::CloudWatch::CompositeAlarm")[slo.composite_title(name, speed)]
    )


def _window(templates: dict[str, Json], name: str, seconds: int) -> Json:
    return props(_alarms(templates)[slo.window_alarm_title(name, seconds)])


def _burn(alarm: Json, floor_per_minute: float, **values: float | None) -> float:
    """Evaluate the alarm's metric math on one window's totals (None: the metric has no data)."""
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    env: dict[str, Any] = {"IF": lambda c, a, b: a if c else b, "FILL": lambda x, d: d if x is None else x}
    env.update(values)

    def expression(q: Json) -> str:
        text = q["Expression"]
        if isinstance(text, dict):
            text = text["Fn::Sub"][0].replace("${MinRequests}", str(floor_per_minute))
        return str(text)

    for qid, q in queries.items():
        if "Expression" in q and not q["ReturnData"]:
            env[qid] = eval(expression(q), {}, env)
    (returned,) = [q for q in queries.values() if q["ReturnData"]]
    return float(eval(expression(returned), {}, env))


def test_slos_are_the_documented_objectives() -> None:
    assert slo.SLOS == {"Availability": 99.9, "Latency": 99.0}
    assert (slo.budget_percent("Availability"), slo.budget_percent("Latency")) == (0.1, 1.0)
    assert [(s.name, s.burn, s.long_s, s.short_s) for s in slo.SPEEDS] == [
        ("Fast", 14.4, 3600, 300),
        ("Slow", 6.0, 21600, 1800),
    ]


@pytest.mark.parametrize(("name", "speed"), CASES, ids=[f"{n}-{s.name}" for n, s in CASES])
def test_each_burn_rate_alarm_pages_when_both_windows_burn(
    templates: dict[str, Json], name: str, speed: slo.Speed
) -> None:
    composite = _composite(templates, name, speed)
    assert composite["AlarmActions"] == TOPIC and composite["OKActions"] == TOPIC
    assert composite["ActionsEnabled"] is True
    rule, variables = composite["AlarmRule"]["Fn::Sub"]
    assert rule == 'ALARM("${Long}") AND ALARM("${Short}")'
    assert variables == {
        "Long": {"Fn::GetAtt": [slo.window_alarm_title(name, speed.long_s), "Arn"]},
        "Short": {"Fn::GetAtt": [slo.window_alarm_title(name, speed.short_s), "Arn"]},
    }
    assert f"Runbook: '{slo.RUNBOOK[name]}'" in composite["AlarmDescription"]


@pytest.mark.parametrize(("name", "speed"), CASES, ids=[f"{n}-{s.name}" for n, s in CASES])
def test_window_alarms_read_one_window_and_compare_the_burn_rate(
    templates: dict[str, Json], name: str, speed: slo.Speed
) -> None:
    for seconds in (speed.long_s, speed.short_s):
        p = _window(templates, name, seconds)
        # No actions of their own: the composite pages (test_checklist_governance checks the pairing).
        assert "AlarmActions" not in p and "OKActions" not in p
        assert p["TreatMissingData"] == "notBreaching"
        assert p["EvaluationPeriods"] == p["DatapointsToAlarm"] == 1
        assert p["Threshold"] == speed.burn and p["ComparisonOperator"] == "GreaterThanThreshold"
        stats = [q["MetricStat"] for q in p["Metrics"] if "MetricStat" in q]
        # CloudWatch needs one period for every metric of an alarm: the window itself.
        assert {s["Period"] for s in stats} == {seconds}
        assert len(p["Metrics"]) <= 20 and len(stats) <= 10


def test_availability_counts_gateway_emf_and_the_albs_own_5xx(templates: dict[str, Json]) -> None:
    p = _window(templates, "Availability", 3600)
    metrics = {q["Id"]: q["MetricStat"] for q in p["Metrics"] if "MetricStat" in q}
    gw = [{"Name": SERVICE_DIMENSION, "Value": "gateway"}]
    assert metrics["errors"]["Metric"] == {"Namespace": m.NAMESPACE, "MetricName": m.SERVER_ERRORS, "Dimensions": gw}
    assert metrics["requests"]["Metric"] == {"Namespace": m.NAMESPACE, "MetricName": m.REQUESTS, "Dimensions": gw}
    elb = metrics["elb"]["Metric"]
    assert (elb["Namespace"], elb["MetricName"]) == ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count")
    assert elb["Dimensions"][0]["Name"] == "LoadBalancer"
    assert elb["Dimensions"][0]["Value"]["Fn::ImportValue"]["Fn::Sub"].endswith("-AlbFullName")
    assert {s["Stat"] for s in metrics.values()} == {"Sum"}


def test_availability_burn_rate_arithmetic(templates: dict[str, Json]) -> None:
    hour = _window(templates, "Availability", 3600)
    floor = 60  # prod's ServerErrorMinRequestsPerMinute: 3,600 requests in the hour at least
    # 1.44 % of requests failing is a burn of exactly 14.4 against a 0.1 % budget.
    assert _burn(hour, floor, errors=144, requests=10_000, elb=None) == pytest.approx(14.4)
    # The ALB's own 5xx count as failed public requests the gateway never saw.
    assert _burn(hour, floor, errors=None, requests=9_900, elb=100) == pytest.approx(10.0)
    # A gateway that is down entirely emits nothing; the ALB's 503s alone burn the budget at 1,000x.
    assert _burn(hour, floor, errors=None, requests=None, elb=5_000) == pytest.approx(1000.0)
    # Below the volume floor a window reads as no burn.
    assert _burn(hour, floor, errors=100, requests=3_000, elb=None) == 0


def test_latency_burn_rate_is_the_share_slower_than_the_threshold(templates: dict[str, Json]) -> None:
    p = _window(templates, "Latency", 300)
    metrics = {q["Id"]: q["MetricStat"] for q in p["Metrics"] if "MetricStat" in q}
    assert metrics["within"]["Metric"]["MetricName"] == m.TRANSFER_LATENCY  # POST /v1/transfers only
    assert metrics["within"]["Stat"] == f"PR(:{slo.LATENCY_THRESHOLD_MS})" == "PR(:250)"
    assert metrics["within"]["Metric"]["Dimensions"] == [{"Name": SERVICE_DIMENSION, "Value": "gateway"}]
    assert metrics["requests"]["Metric"]["MetricName"] == m.REQUESTS
    # 85.6 % within 250 ms = 14.4 % slower = 14.4x the 1 % budget.
    assert _burn(p, 60, within=85.6, requests=1_000) == pytest.approx(14.4)
    assert _burn(p, 60, within=100.0, requests=1_000) == 0
    assert _burn(p, 60, within=50.0, requests=299) == 0  # under 60/min x 5 min


def test_the_services_emit_what_the_slos_read() -> None:
    # What shared.metrics writes for the gateway: the metric names and the one dimension the SLOs use.
    recorder = m.Metrics("gateway")
    recorder.request(503, 12.5, "unavailable", transfer=True)
    recorder.request(200, 80.0, None)  # another route: in Latency, not in the transfer SLO's metric
    (line, *_) = recorder.lines(now_ms=0)
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == m.NAMESPACE and directive["Dimensions"] == [[SERVICE_DIMENSION]]
    names = {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}
    assert names[m.REQUESTS] == "Count" and names[m.SERVER_ERRORS] == "Count"
    assert names[slo.LATENCY_METRIC] == "Milliseconds" and line[slo.LATENCY_METRIC] == [12.5]
    assert sorted(line[m.LATENCY]) == [12.5, 80.0]


def test_dashboard_has_the_slo_row(templates: dict[str, Json]) -> None:
    (dashboard,) = resources(templates["observability"], "AWS::CloudWatch::Dashboard").values()
    widgets = json.loads(props(dashboard)["DashboardBody"]["Fn::Sub"][0])["widgets"]
    by_title = {w["properties"].get("title"): w for w in widgets}
    composites = sorted(resources(templates["observability"], "AWS::CloudWatch::CompositeAlarm"))
    assert by_title["SLO burn-rate alarms"]["properties"]["alarms"] == [f"${{{c}.Arn}}" for c in composites]
    assert len(composites) == 4
    for title, objective in (("SLO availability", 99.9), ("SLO latency", 99.0)):
        (graph,) = [w for t, w in by_title.items() if t and t.startswith(title)]
        assert graph["properties"]["annotations"]["horizontal"][0]["value"] == objective
    slo_y = {w["y"] for t, w in by_title.items() if t and t.startswith("SLO")}
    assert len(slo_y) == 1 and slo_y == {6}, "one row, right under the alarm states"


def test_runbook_has_an_entry_for_each_slo_alarm(templates: dict[str, Json]) -> None:
    runbook = (ROOT / "docs" / "runbooks.md").read_text()
    for name, section in slo.RUNBOOK.items():
        assert f"### {section}" in runbook, section
        body = runbook.split(f"### {section}", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
        for speed in slo.SPEEDS:
            assert f"`{slo.composite_title(name, speed)}`" in body, (section, speed.name)


def test_hld_states_the_slos() -> None:
    hld = (ROOT / "docs" / "hld.md").read_text()
    assert re.search(r"99\.9 ?%", hld) and "p99" in hld and f"{slo.LATENCY_THRESHOLD_MS} ms" in hld
    assert "POST /v1/transfers" in hld and "burn" in hld
