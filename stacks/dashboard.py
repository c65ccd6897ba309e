"""The ``FinTech-Operations`` dashboard body: the three services, the ALB and the data tier.

Application (EMF) metrics plug in through :func:`app_metric_widgets`: the metric names from
``shared/metrics.py`` go in, one graph per metric comes out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from stacks.config import PlatformConfig
from stacks.security import TABLES

SERVICES = ("gateway", "ledger", "session")


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


def _graph(title: str, metrics: list[list[object]], x: int, y: int, stat: str = "Sum") -> dict[str, object]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 8,
        "height": 6,
        "properties": {"title": title, "region": "${AWS::Region}", "stat": stat, "period": 60, "metrics": metrics},
    }


def dashboard_body(platform: PlatformConfig, app_metrics: Sequence[str]) -> str:
    elb = "AWS/ApplicationELB"
    lb = ["LoadBalancer", "${Alb}"]
    widgets: list[dict[str, object]] = [
        _graph(
            "ALB requests and 5XX",
            [[elb, "RequestCount", *lb], [elb, "HTTPCode_ELB_5XX_Count", *lb], [elb, "HTTPCode_Target_5XX_Count", *lb]],
            0,
            0,
        ),
        _graph("ALB target response time p99", [[elb, "TargetResponseTime", *lb]], 8, 0, stat="p99"),
        _graph(
            "Gateway targets healthy / unhealthy",
            [
                [elb, "HealthyHostCount", "TargetGroup", "${TargetGroup}", *lb],
                [elb, "UnHealthyHostCount", "TargetGroup", "${TargetGroup}", *lb],
            ],
            16,
            0,
            stat="Maximum",
        ),
    ]
    for i, svc in enumerate(SERVICES):
        dims = ["ClusterName", "${Cluster}", "ServiceName", f"${{{svc.capitalize()}Service}}"]
        widgets.append(
            _graph(
                f"{svc} CPU / memory",
                [["AWS/ECS", "CPUUtilization", *dims], ["AWS/ECS", "MemoryUtilization", *dims]],
                i * 8,
                6,
                stat="Average",
            )
        )
        widgets.append(
            _graph(
                f"{svc} running tasks",
                [["ECS/ContainerInsights", "RunningTaskCount", *dims]],
                i * 8,
                12,
                stat="Average",
            )
        )
    db = ["DBClusterIdentifier", "${Db}"]
    widgets += [
        _graph(
            "Aurora CPU / connections",
            [["AWS/RDS", "CPUUtilization", *db], ["AWS/RDS", "DatabaseConnections", *db]],
            0,
            18,
            stat="Maximum",
        ),
        _graph("Aurora freeable memory", [["AWS/RDS", "FreeableMemory", *db]], 8, 18, stat="Minimum"),
        _graph(
            "Redis CPU / evictions (primary)",
            [
                ["AWS/ElastiCache", "EngineCPUUtilization", "CacheClusterId", "${Redis}-001"],
                ["AWS/ElastiCache", "Evictions", "CacheClusterId", "${Redis}-001"],
            ],
            16,
            18,
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
            24,
        ),
    ]
    widgets += app_metric_widgets(app_metrics, platform.metrics_namespace, 30)
    return json.dumps({"widgets": widgets}, sort_keys=True, separators=(",", ":"))
