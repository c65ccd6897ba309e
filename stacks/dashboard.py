"""The ``FinTech-Operations`` dashboard body: alarm states, the SLOs, the ALB, the services' application (EMF)
metrics, their containers and the data tier.

The application rows use the names of ``shared.metrics`` (the module the services emit with), so the
dashboard cannot drift from what is emitted. :func:`app_metric_widgets` remains the hook for further
metrics: one graph per name, one line per service.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from shared.metrics import (
    ERRORS,
    GROUP_SIZE,
    LATENCY,
    NAMESPACE,
    REQUESTS,
    SERVER_ERRORS,
    SERVICES,
    TRANSFERS_COMMITTED,
    VERIFIER_DISCREPANCIES,
    WEBHOOK_DELIVERY_FAILURES,
    WEBHOOK_ENDPOINTS_FAILING,
)
from stacks.app_alarms import SERVICE_DIMENSION, VERIFIER_RUN_FAILURES
from stacks.common import ENV_PARAM
from stacks.config import PlatformConfig
from stacks.security import TABLES
from stacks.slo import slo_widgets

Widget = dict[str, object]


def app_metric_widgets(metric_names: Sequence[str], namespace: str, y: int) -> list[dict[str, object]]:
    """Dashboard widgets for application (EMF) metrics: one graph per metric, one line per service
    (EMF dimension ``Service``).

    This is the hook for ``shared/metrics.py``: pass its names and ``NAMESPACE`` through
    ``stacks.observability.build(platform, app_metrics=...)``; widgets come out."""
    widgets: list[dict[str, object]] = []
    for i, name in enumerate(sorted(metric_names)):
        widgets.append(
            {
                "type": "metric",
                "x": (i % 3) * 8,
                "y": y + (i // 3) * 6,
                "width": 8,
                "height": 6,
                "properties": {
                    "title": name,
                    "region": "${AWS::Region}",
                    "stat": "Sum",
                    "period": 60,
                    "metrics": [[namespace, name, "Service", service] for service in SERVICES],
                },
            }
        )
    return widgets


def _graph(
    title: str, metrics: list[list[object]], x: int, y: int, stat: str = "Sum", width: int = 8
) -> dict[str, object]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": width,
        "height": 6,
        "properties": {"title": title, "region": "${AWS::Region}", "stat": stat, "period": 60, "metrics": metrics},
    }


def _app(metric: str, service: str, **options: object) -> list[object]:
    row: list[object] = [NAMESPACE, metric, SERVICE_DIMENSION, service]
    return [*row, options] if options else row


def application_widgets(y: int) -> list[Widget]:
    """Seven rows from ``y``: per service (one column each) requests, latency p50/p99 and 5xx; then the
    ledger's commits, group sizes and verifier; then errors by code and EMF extraction errors; then
    webhook deliveries."""
    widgets: list[Widget] = []
    for i, svc in enumerate(SERVICES):
        x = i * 8
        widgets.append(_graph(f"{svc} requests / min", [_app(REQUESTS, svc, label=REQUESTS)], x, y))
        widgets.append(
            _graph(
                f"{svc} latency p50 / p99 (ms)",
                [_app(LATENCY, svc, stat="p50", label="p50"), _app(LATENCY, svc, stat="p99", label="p99")],
                x,
                y + 6,
                stat="p99",
            )
        )
        widgets.append(
            _graph(
                f"{svc} 5xx",
                [
                    _app(SERVER_ERRORS, svc, id="errors", label=f"{SERVER_ERRORS} / min"),
                    _app(REQUESTS, svc, id="requests", visible=False),
                    [{"expression": "100 * FILL(errors, 0) / requests", "label": "% of requests", "yAxis": "right"}],
                ],
                x,
                y + 12,
            )
        )
    widgets += [
        _graph("ledger transfers committed / min", [_app(TRANSFERS_COMMITTED, "ledger")], 0, y + 18),
        _graph(
            "ledger group-commit size (requests per transaction)",
            [
                _app(GROUP_SIZE, "ledger", stat="Average", label="average"),
                _app(GROUP_SIZE, "ledger", stat="Maximum", label="max"),
            ],
            8,
            y + 18,
            stat="Average",
        ),
        _graph(
            "ledger verifier: discrepancies (must be 0), failed runs, reports",
            [
                _app(VERIFIER_DISCREPANCIES, "ledger", stat="Maximum", label=VERIFIER_DISCREPANCIES),
                _app(VERIFIER_RUN_FAILURES, "ledger", stat="Sum", label=VERIFIER_RUN_FAILURES),
                # Reports per minute: 0 for long is what LedgerVerifierSilentAlarm pages on.
                _app(VERIFIER_DISCREPANCIES, "ledger", stat="SampleCount", label="reports", yAxis="right"),
            ],
            16,
            y + 18,
            stat="Maximum",
        ),
        _graph(
            "errors by service and code / min",
            [
                [
                    {
                        "expression": f"SEARCH('{{{NAMESPACE},Code,{SERVICE_DIMENSION}}} "
                        f"MetricName=\"{ERRORS}\"', 'Sum', 60)",
                    }
                ]
            ],
            0,
            y + 24,
            width=16,
        ),
        _graph(
            "EMF extraction errors (metrics dropped)",
            [
                ["AWS/Logs", metric, "LogGroupName", f"/fintech/${{{ENV_PARAM}}}/{svc}"]
                for svc in SERVICES
                for metric in ("EMFValidationErrors", "EMFParsingErrors")
            ],
            16,
            y + 24,
        ),
        _graph(
            "ledger webhooks: failing endpoints (alarm > 0), failed attempts / min",
            [
                _app(WEBHOOK_ENDPOINTS_FAILING, "ledger", stat="Maximum", label=WEBHOOK_ENDPOINTS_FAILING),
                _app(WEBHOOK_DELIVERY_FAILURES, "ledger", stat="Sum", label=WEBHOOK_DELIVERY_FAILURES, yAxis="right"),
            ],
            0,
            y + 30,
            stat="Maximum",
        ),
    ]
    return widgets


def alarm_widget(alarms: Sequence[str], y: int) -> Widget:
    """The state of every alarm of the tier (logical ids, resolved to ARNs by ``Fn::Sub``)."""
    return {
        "type": "alarm",
        "x": 0,
        "y": y,
        "width": 24,
        "height": 6,
        "properties": {
            "title": "Alarms",
            "alarms": [f"${{{name}.Arn}}" for name in sorted(alarms)],
            "sortBy": "stateUpdatedTimestamp",
        },
    }


def dashboard_body(
    platform: PlatformConfig, app_metrics: Sequence[str], alarms: Sequence[str] = (), slo_alarms: Sequence[str] = ()
) -> str:
    """The dashboard JSON (an ``Fn::Sub`` string): alarm states, the SLO row (``stacks.slo``), then the
    ALB, the application rows, containers and the data tier; ``app_metrics`` adds one graph per further
    EMF metric at the end."""
    top = 6 if alarms else 0
    slo = slo_widgets(top, list(slo_alarms)) if slo_alarms else []
    top += 6 if slo else 0
    app_rows = 36
    infra = top + 6 + app_rows
    elb = "AWS/ApplicationELB"
    lb = ["LoadBalancer", "${Alb}"]
    widgets: list[Widget] = [alarm_widget(alarms, 0)] if alarms else []
    widgets += slo
    widgets += [
        _graph(
            "ALB requests and 5XX",
            [[elb, "RequestCount", *lb], [elb, "HTTPCode_ELB_5XX_Count", *lb], [elb, "HTTPCode_Target_5XX_Count", *lb]],
            0,
            top,
        ),
        _graph("ALB target response time p99", [[elb, "TargetResponseTime", *lb]], 8, top, stat="p99"),
        _graph(
            "Gateway targets healthy / unhealthy",
            [
                [elb, "HealthyHostCount", "TargetGroup", "${TargetGroup}", *lb],
                [elb, "UnHealthyHostCount", "TargetGroup", "${TargetGroup}", *lb],
            ],
            16,
            top,
            stat="Maximum",
        ),
    ]
    widgets += application_widgets(top + 6)
    for i, svc in enumerate(SERVICES):
        dims = ["ClusterName", "${Cluster}", "ServiceName", f"${{{svc.capitalize()}Service}}"]
        widgets.append(
            _graph(
                f"{svc} CPU / memory",
                [["AWS/ECS", "CPUUtilization", *dims], ["AWS/ECS", "MemoryUtilization", *dims]],
                i * 8,
                infra,
                stat="Average",
            )
        )
        widgets.append(
            _graph(
                f"{svc} running tasks",
                [["ECS/ContainerInsights", "RunningTaskCount", *dims]],
                i * 8,
                infra + 6,
                stat="Average",
            )
        )
    db = ["DBClusterIdentifier", "${Db}"]
    widgets += [
        _graph(
            "Aurora CPU / connections",
            [["AWS/RDS", "CPUUtilization", *db], ["AWS/RDS", "DatabaseConnections", *db]],
            0,
            infra + 12,
            stat="Maximum",
        ),
        _graph("Aurora freeable memory", [["AWS/RDS", "FreeableMemory", *db]], 8, infra + 12, stat="Minimum"),
        _graph(
            "Redis CPU / evictions (primary)",
            [
                ["AWS/ElastiCache", "EngineCPUUtilization", "CacheClusterId", "${Redis}-001"],
                ["AWS/ElastiCache", "Evictions", "CacheClusterId", "${Redis}-001"],
            ],
            16,
            infra + 12,
            stat="Maximum",
        ),
        _graph(
            "DynamoDB throttles",
            [
                ["AWS/DynamoDB", f"{kind}ThrottleEvents", "TableName", f"${{{tbl.replace('-', '')}Table}}"]
                for tbl in TABLES
                for kind in ("Read", "Write")
            ],
            0,
            infra + 18,
        ),
    ]
    widgets += app_metric_widgets(app_metrics, platform.metrics_namespace, infra + 24)
    return json.dumps({"widgets": widgets}, sort_keys=True, separators=(",", ":"))
