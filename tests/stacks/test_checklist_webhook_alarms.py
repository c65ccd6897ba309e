"""Issue 12 follow-up: the alarm and the dashboard graph on failing webhook endpoints.

The ledger's delivery workers report ``WebhookEndpointsFailing`` (a gauge, every 30 s) and count
``WebhookDeliveryFailures`` (services/ledger/webhooks/); the observability tier alarms on the first
above 0 with the runbook's name in the description, and graphs both.
"""

from __future__ import annotations

import json
from pathlib import Path

from shared import metrics as m
from stacks.app_alarms import SERVICE_DIMENSION
from tests.stacks.conftest import Json, props, resources

ROOT = Path(__file__).resolve().parents[2]
ALARM = "WebhookEndpointsFailingAlarm"
RUNBOOK = "A webhook endpoint is failing"


def test_failing_endpoints_alarm_at_once_keeps_its_state_without_data_and_names_the_runbook(
    templates: dict[str, Json],
) -> None:
    p = props(resources(templates["observability"], "AWS::CloudWatch::Alarm")[ALARM])
    assert (p["Namespace"], p["MetricName"]) == (m.NAMESPACE, m.WEBHOOK_ENDPOINTS_FAILING)
    assert p["Dimensions"] == [{"Name": SERVICE_DIMENSION, "Value": "ledger"}]
    # Every ledger process reports the same fleet-wide count: the maximum is the count.
    assert (p["Statistic"], p["ComparisonOperator"], p["Threshold"]) == ("Maximum", "GreaterThanThreshold", 0)
    assert p["EvaluationPeriods"] == p["DatapointsToAlarm"] == 1
    assert p["TreatMissingData"] == "ignore"
    assert p["AlarmActions"] == [{"Ref": "AlarmTopic"}] and p["OKActions"] == [{"Ref": "AlarmTopic"}]
    assert f"Runbook: '{RUNBOOK}'" in p["AlarmDescription"]
    runbook = (ROOT / "docs" / "runbooks.md").read_text()
    section = runbook.split(f"## {RUNBOOK}\n", 1)[1].split("\n## ", 1)[0]
    assert f"`{ALARM}`" in section and f"`{m.WEBHOOK_ENDPOINTS_FAILING}`" in section


def test_the_dashboard_graphs_failing_endpoints_and_failed_attempts(templates: dict[str, Json]) -> None:
    (dashboard,) = resources(templates["observability"], "AWS::CloudWatch::Dashboard").values()
    widgets = json.loads(props(dashboard)["DashboardBody"]["Fn::Sub"][0])["widgets"]
    (graph,) = [w for w in widgets if w["properties"].get("title", "").startswith("ledger webhooks")]
    rows = {(row[1], row[3], row[4]["stat"]) for row in graph["properties"]["metrics"]}
    assert rows == {
        (m.WEBHOOK_ENDPOINTS_FAILING, "ledger", "Maximum"),
        (m.WEBHOOK_DELIVERY_FAILURES, "ledger", "Sum"),
    }
    # Below every row above it: no two widgets of the dashboard overlap.
    cells = set()
    for w in widgets:
        for x in range(w["x"], w["x"] + w["width"]):
            for y in range(w["y"], w["y"] + w["height"]):
                assert (x, y) not in cells, w["properties"].get("title")
                cells.add((x, y))


def test_the_metrics_are_written_as_the_tier_reads_them() -> None:
    metrics = m.Metrics("ledger")
    metrics.gauge(m.WEBHOOK_ENDPOINTS_FAILING, 2)
    metrics.count(m.WEBHOOK_DELIVERY_FAILURES, 3)
    (line,) = metrics.lines(now_ms=0)
    assert line["Service"] == "ledger"
    assert (line[m.WEBHOOK_ENDPOINTS_FAILING], line[m.WEBHOOK_DELIVERY_FAILURES]) == (2, 3)
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[SERVICE_DIMENSION]]
