"""Service level objectives as code: the two SLOs of docs/hld.md and their multi-window burn-rate alarms.

SLOs (the same in every environment: they are the promise, not a tuning knob):

``availability``: 99.9 % of public requests over 30 days are answered without a 5xx
    Good and bad come from the gateway's EMF (``Requests``, ``ServerErrors``; ``/health/`` is not
    counted, ``shared/web.py``) **plus** the ALB's own 5xx (``HTTPCode_ELB_5XX_Count``). Those are
    public requests that never reached a gateway process, so they are added to both the bad count and
    the total. Without them a gateway that is down entirely would emit nothing and burn no budget.
``latency``: 99 % of the gateway's requests over 30 days are answered within 250 ms (p99 <= 250 ms)
    The share within the threshold is the percentile rank ``PR(:250)`` of the gateway's EMF
    ``TransferLatency``: ``POST /v1/transfers`` alone (``shared/metrics.py``), so reads and
    batches do not dilute it.

Burn-rate alarms follow the multi-window, multi-burn-rate scheme of the SRE workbook. A burn rate
is the bad share divided by the error budget (100 % - objective), so 1.0 spends the budget in
exactly 30 days.

- **fast**: burn > 14.4 over 1 h **and** over 5 min. That is 2 % of the month's budget in an hour,
  and the short window makes the alarm clear within minutes of recovery.
- **slow**: burn > 6 over 6 h **and** over 30 min. That is 5 % of the budget in 6 hours.

CloudWatch requires every metric of one alarm to share a period, so each window is its own metric
alarm (``Slo<Name>Burn<window>Alarm``). Those alarms have **no actions**. Each pair feeds one
composite alarm (``Slo<Name><Speed>BurnAlarm``), which pages on ALARM and on OK. So the invariant is
that every alarm condition notifies someone, either directly or through exactly one composite
(``tests/stacks/test_checklist_slo.py`` checks it).
A window below the volume floor (``ServerErrorMinRequestsPerMinute`` x its minutes) reads as burn 0.
A handful of requests is not a rate, and silence is caught by the health, ALB and ECS alarms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from troposphere import GetAtt, Ref, Sub, Template, cloudwatch, sns

from shared.metrics import NAMESPACE, REQUESTS, SERVER_ERRORS, TRANSFER_LATENCY
from stacks.app_alarms import SERVICE_DIMENSION
from stacks.common import sizing
from stacks.naming import ComputeExports, import_value

SLO_PERIOD_DAYS = 30
AVAILABILITY_OBJECTIVE = 99.9
"""Percent of public requests answered without a 5xx (the seed's "> 99.9 % availability")."""
LATENCY_OBJECTIVE = 99.0
"""Percent of the gateway's ``POST /v1/transfers`` within ``LATENCY_THRESHOLD_MS``: the p99."""
LATENCY_THRESHOLD_MS = 250
"""p99 target of the gateway. The bench's p99 is 35-58 ms on a saturated 2-core machine
(docs/performance.md), so 250 ms leaves room for Aurora's commit latency and a deployment. It is
below the ledger's own p99 alarm (500 ms in prod) and far below the ALB's 1 s alarm."""
LATENCY_METRIC = TRANSFER_LATENCY
GATEWAY = "gateway"
ELB_5XX = "HTTPCode_ELB_5XX_Count"


@dataclass(frozen=True)
class Speed:
    """One burn-rate alarm: ``burn`` exceeded over both ``long_s`` and ``short_s``."""

    name: str
    burn: float
    long_s: int
    short_s: int


SPEEDS = (Speed("Fast", 14.4, 3600, 300), Speed("Slow", 6.0, 21600, 1800))
SLOS = {"Availability": AVAILABILITY_OBJECTIVE, "Latency": LATENCY_OBJECTIVE}
RUNBOOK = {"Availability": "SLO availability burn", "Latency": "SLO latency burn"}
"""The docs/runbooks.md section of each SLO's alarms."""


def window_name(seconds: int) -> str:
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


def window_alarm_title(slo: str, seconds: int) -> str:
    return f"Slo{slo}Burn{window_name(seconds)}Alarm"


def composite_title(slo: str, speed: Speed) -> str:
    return f"Slo{slo}{speed.name}BurnAlarm"


def budget_percent(slo: str) -> float:
    """The error budget, in percent of requests: 100 - objective."""
    return round(100 - SLOS[slo], 6)


def _stat(qid: str, namespace: str, metric: str, dims: Mapping[str, object], stat: str, period: int) -> cloudwatch.MetricDataQuery:  # fmt: skip
    return cloudwatch.MetricDataQuery(
        Id=qid,
        ReturnData=False,
        MetricStat=cloudwatch.MetricStat(
            Metric=cloudwatch.Metric(
                Namespace=namespace,
                MetricName=metric,
                Dimensions=[cloudwatch.MetricDimension(Name=k, Value=v) for k, v in dims.items()],
            ),
            Period=period,
            Stat=stat,
        ),
    )


def _expr(qid: str, expression: object, label: str = "", returned: bool = False) -> cloudwatch.MetricDataQuery:
    extra = {"Label": label} if label else {}
    return cloudwatch.MetricDataQuery(Id=qid, Expression=expression, ReturnData=returned, **extra)


def burn_queries(t: Template, slo: str, period: int) -> list[cloudwatch.MetricDataQuery]:
    """The metric-math queries whose returned value is ``slo``'s burn rate over ``period`` seconds."""
    gw = {SERVICE_DIMENSION: GATEWAY}
    floor = f"${{MinRequests}} * {period // 60}"
    if slo == "Availability":
        alb = {"LoadBalancer": import_value(t, ComputeExports.ALB_FULL_NAME)}
        queries = [
            _stat("errors", NAMESPACE, SERVER_ERRORS, gw, "Sum", period),
            _stat("requests", NAMESPACE, REQUESTS, gw, "Sum", period),
            _stat("elb", "AWS/ApplicationELB", ELB_5XX, alb, "Sum", period),
            _expr("total", "FILL(requests, 0) + FILL(elb, 0)"),
            _expr("bad", "FILL(errors, 0) + FILL(elb, 0)"),
        ]
        burn = f"IF(total >= {floor}, 100 * bad / total / {budget_percent(slo):g}, 0)"
    else:
        queries = [
            _stat("within", NAMESPACE, LATENCY_METRIC, gw, f"PR(:{LATENCY_THRESHOLD_MS})", period),
            _stat("requests", NAMESPACE, REQUESTS, gw, "Sum", period),
        ]
        burn = f"IF(FILL(requests, 0) >= {floor}, (100 - within) / {budget_percent(slo):g}, 0)"
    label = f"{slo} burn rate over {window_name(period)}"
    return [*queries, _expr("burn", Sub(burn, MinRequests=sizing("ServerErrorMinRequestsPerMinute")), label, True)]


def _window_alarm(t: Template, slo: str, speed: Speed, period: int) -> cloudwatch.Alarm:
    return t.add_resource(
        cloudwatch.Alarm(
            window_alarm_title(slo, period),
            AlarmDescription=f"SLO {slo.lower()}: burn rate over {window_name(period)} above {speed.burn:g} "
            f"(an input of {composite_title(slo, speed)}, which pages; no actions of its own). "
            f"Runbook: '{RUNBOOK[slo]}'. No data means no traffic (notBreaching).",
            Metrics=burn_queries(t, slo, period),
            EvaluationPeriods=1,
            DatapointsToAlarm=1,
            Threshold=speed.burn,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
        )
    )


def add_slo_alarms(t: Template, topic: sns.Topic) -> list[str]:
    """Add every window alarm and the composite burn-rate alarms to ``t``; return the composites' titles."""
    composites = []
    for slo, objective in SLOS.items():
        for speed in SPEEDS:
            long, short = (_window_alarm(t, slo, speed, p) for p in (speed.long_s, speed.short_s))
            title = composite_title(slo, speed)
            budget_share = speed.burn * speed.long_s / (SLO_PERIOD_DAYS * 86400) * 100
            t.add_resource(
                cloudwatch.CompositeAlarm(
                    title,
                    AlarmDescription=f"SLO {slo.lower()} ({objective:g} % over {SLO_PERIOD_DAYS} days): the error "
                    f"budget burns {speed.burn:g}x too fast over {window_name(speed.long_s)} and over "
                    f"{window_name(speed.short_s)} ({budget_share:.0f} % of the month's budget in "
                    f"{window_name(speed.long_s)}). Runbook: '{RUNBOOK[slo]}'.",
                    AlarmRule=Sub(
                        'ALARM("${Long}") AND ALARM("${Short}")', Long=GetAtt(long, "Arn"), Short=GetAtt(short, "Arn")
                    ),
                    ActionsEnabled=True,
                    AlarmActions=[Ref(topic)],
                    OKActions=[Ref(topic)],
                )
            )
            composites.append(title)
    return composites


def _row(metric: str, dims: Sequence[object], **options: object) -> list[object]:
    return [NAMESPACE, metric, *dims, options] if options else [NAMESPACE, metric, *dims]


def slo_widgets(y: int, composites: list[str]) -> list[dict[str, object]]:
    """The dashboard's SLO row at ``y``: each SLO over time against its objective, both over the
    dashboard's time range, and the state of the burn-rate alarms."""
    gw = [SERVICE_DIMENSION, GATEWAY]
    availability: list[object] = [
        _row(SERVER_ERRORS, gw, id="errors", visible=False, stat="Sum"),
        _row(REQUESTS, gw, id="requests", visible=False, stat="Sum"),
        ["AWS/ApplicationELB", ELB_5XX, "LoadBalancer", "${Alb}", {"id": "elb", "visible": False, "stat": "Sum"}],
        [{"expression": "100 - 100 * (FILL(errors, 0) + FILL(elb, 0)) / (FILL(requests, 0) + FILL(elb, 0))",
          "label": "% without 5xx", "id": "availability"}],
    ]  # fmt: skip
    latency: list[object] = [
        _row(LATENCY_METRIC, gw, stat=f"PR(:{LATENCY_THRESHOLD_MS})", label=f"% within {LATENCY_THRESHOLD_MS} ms")
    ]

    def graph(title: str, metrics: list[object], objective: float, x: int, single: bool = False) -> dict[str, object]:
        properties: dict[str, object] = {"title": title, "region": "${AWS::Region}", "period": 300, "metrics": metrics}
        if single:
            properties.update(view="singleValue", setPeriodToTimeRange=True)
        else:
            properties.update(
                view="timeSeries", annotations={"horizontal": [{"label": "objective", "value": objective}]}
            )
        return {"type": "metric", "x": x, "y": y, "width": 6, "height": 6, "properties": properties}

    return [
        graph(f"SLO availability: % of public requests without 5xx (objective {AVAILABILITY_OBJECTIVE:g})",
              availability, AVAILABILITY_OBJECTIVE, 0),
        graph(f"SLO latency: % of gateway requests within {LATENCY_THRESHOLD_MS} ms (objective {LATENCY_OBJECTIVE:g})",
              latency, LATENCY_OBJECTIVE, 6),
        graph("SLOs over the dashboard's time range", [*availability, *latency], 0, 12, single=True),
        {"type": "alarm", "x": 18, "y": y, "width": 6, "height": 6,
         "properties": {"title": "SLO burn-rate alarms", "alarms": [f"${{{name}.Arn}}" for name in sorted(composites)],
                        "sortBy": "stateUpdatedTimestamp"}},
    ]  # fmt: skip
