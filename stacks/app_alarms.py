"""Application alarms of the observability tier, on the services' EMF metrics.

Metric names, namespace and service names come from ``shared.metrics`` (the module the services emit
with), thresholds from the typed per-environment config (``stacks.config.EnvironmentConfig``, read
through the ``EnvironmentSizing`` mapping). Every alarm notifies the alarm topic on ALARM and on OK.
How each one treats missing data is a decision, documented on the alarm and in docs/runbooks.md:

``LedgerVerifierDiscrepanciesAlarm`` (``VerifierDiscrepancies`` > 0), missing data **ignore**
    A ledger process runs the verifier every 300 s and reports the result once, as a gauge in the
    next metrics flush (gauges are forgotten after each flush). Only a verifier result may raise or clear this alarm:
    silence must neither clear a real discrepancy (``notBreaching`` would) nor raise a money alarm that
    is not about money (``breaching`` would, and an operator freezing writes because the verifier was
    redeployed is an outage we caused). Silence is its own alarm, the next one.
``LedgerVerifierSilentAlarm`` (no ``VerifierDiscrepancies`` data point at all), missing data **breaching**
    Missing data *is* the condition: no ledger process has reported a verifier result for
    ``verifier_silence_minutes`` (ledger scaled to 0 or crash-looping, ``VERIFIER_INTERVAL_SECONDS=0``,
    metrics disabled, EMF extraction broken). The verifier is the one check that money is intact, so
    its absence pages.
``LedgerVerifierFailingAlarm`` (the ledger logs "verifier run failed" in 3 consecutive 5-minute windows), **notBreaching**
    A failing run reports nothing, so the silence alarm follows after ``verifier_silence_minutes``;
    this metric filter on the ledger's "verifier run failed" log line names the cause sooner. No
    failure line means no failure.
``<Service>ServerErrorRateAlarm`` (5xx % of requests), **notBreaching**
    ``Requests`` is absent in a minute without traffic and ``ServerErrors`` in a minute without 5xx: no
    data means nothing failed. A service that serves nothing at all is caught by the health, ALB and
    ECS alarms, and an internal service that is down shows up as the gateway's 503s.
``LedgerLatencyP99Alarm``, **notBreaching**
    No requests, no latency. Percentiles are computed from the (sampled) values of the EMF lines.
``WebhookEndpointsFailingAlarm`` (``WebhookEndpointsFailing`` > 0), missing data **ignore**
    Every ledger process counts the endpoints in ``failing`` state every 30 s (all tenants, so the
    maximum is the count). Only a count may raise or clear it: silence (no ledger task) must not
    clear an endpoint that is still failing, and is the health and verifier-silence alarms' to
    report. A tenant's receiver being down is usually the tenant's to fix; the alarm tells the
    operator to check that it is not the ledger's egress, and to tell the tenant.
"""

from __future__ import annotations

from troposphere import Ref, Sub, Template, cloudwatch, logs, sns

from shared.metrics import (
    LATENCY,
    NAMESPACE,
    REQUESTS,
    SERVER_ERRORS,
    SERVICES,
    VERIFIER_DISCREPANCIES,
    WEBHOOK_ENDPOINTS_FAILING,
)
from stacks.common import ENV_PARAM, sizing

SERVICE_DIMENSION = "Service"
"""EMF dimension every application metric carries (``shared.metrics`` writes it as a literal)."""

VERIFIER_RUN_FAILURES = "VerifierRunFailures"
"""Metric the ``LedgerVerifierFailuresMetricFilter`` derives from the ledger's log (not an EMF metric:
``shared.metrics`` has no verifier-run counter yet)."""

VERIFIER_FAILURE_LOGGER = "services.ledger.runtime"
VERIFIER_FAILURE_MESSAGE = "verifier run failed"
"""The ledger's log line (logger and message) when a verifier run raises; a test pins both to the source."""

VERIFIER_TOLERANCE = 0
"""Discrepancies tolerated: none, in every environment (a threshold that is not a tuning knob)."""

VERIFIER_FAILURE_WINDOW_SECONDS = 300
"""One verifier attempt per ledger process per window (``VERIFIER_INTERVAL_SECONDS`` default)."""

FAILING_ENDPOINTS_TOLERANCE = 0
"""Failing webhook endpoints tolerated: none. A failing endpoint receives nothing until someone
acts, whatever the environment, so this is not a tuning knob either."""


def service_log_group_name(service: str) -> Sub:
    """Name of ``service``'s log group, as the compute tier creates it (a test checks they agree)."""
    return Sub(f"/fintech/${{{ENV_PARAM}}}/{service}")


def _dimensions(service: str) -> list[cloudwatch.MetricDimension]:
    return [cloudwatch.MetricDimension(Name=SERVICE_DIMENSION, Value=service)]


def _stat(qid: str, metric: str, service: str, stat: str) -> cloudwatch.MetricDataQuery:
    return cloudwatch.MetricDataQuery(
        Id=qid,
        ReturnData=False,
        MetricStat=cloudwatch.MetricStat(
            Metric=cloudwatch.Metric(Namespace=NAMESPACE, MetricName=metric, Dimensions=_dimensions(service)),
            Period=60,
            Stat=stat,
        ),
    )


def _add(t: Template, topic: sns.Topic, title: str, description: str, **props: object) -> cloudwatch.Alarm:
    return t.add_resource(
        cloudwatch.Alarm(
            title,
            AlarmDescription=description,
            AlarmActions=[Ref(topic)],
            OKActions=[Ref(topic)],
            **props,
        )
    )


def _verifier(t: Template, topic: sns.Topic) -> None:
    ledger = _dimensions("ledger")
    _add(
        t,
        topic,
        "LedgerVerifierDiscrepanciesAlarm",
        "Money integrity: the ledger verifier found discrepancies (counters, history, balance, limits or "
        "expiry). Runbook: 'VerifierDiscrepancies > 0'. Missing data keeps the state: only a verifier "
        "result raises or clears it; silence is LedgerVerifierSilentAlarm.",
        Namespace=NAMESPACE,
        MetricName=VERIFIER_DISCREPANCIES,
        Dimensions=ledger,
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        DatapointsToAlarm=1,
        Threshold=VERIFIER_TOLERANCE,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="ignore",
    )
    _add(
        t,
        topic,
        "LedgerVerifierSilentAlarm",
        "No ledger process has reported a verifier result (VerifierDiscrepancies) for the configured "
        "number of minutes: nobody is checking that money is intact. Runbook: 'VerifierDiscrepancies > 0'. "
        "Missing data is the condition, so it counts as breaching.",
        Namespace=NAMESPACE,
        MetricName=VERIFIER_DISCREPANCIES,
        Dimensions=ledger,
        Statistic="SampleCount",
        Period=60,
        EvaluationPeriods=sizing("VerifierSilenceMinutes"),
        DatapointsToAlarm=sizing("VerifierSilenceMinutes"),
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching",
    )
    t.add_resource(
        logs.MetricFilter(
            "LedgerVerifierFailuresMetricFilter",
            LogGroupName=service_log_group_name("ledger"),
            FilterPattern=f'{{ ($.logger = "{VERIFIER_FAILURE_LOGGER}") && ($.message = "{VERIFIER_FAILURE_MESSAGE}") }}',
            MetricTransformations=[
                logs.MetricTransformation(
                    MetricNamespace=NAMESPACE,
                    MetricName=VERIFIER_RUN_FAILURES,
                    MetricValue="1",
                    Unit="Count",
                    Dimensions=[logs.Dimension(Key=SERVICE_DIMENSION, Value="$.service")],
                )
            ],
        )
    )
    _add(
        t,
        topic,
        "LedgerVerifierFailingAlarm",
        "Verifier runs have failed in 3 consecutive 5-minute windows (log line 'verifier run failed'); the "
        "VerifierDiscrepancies gauge may be stale. Runbook: 'VerifierDiscrepancies > 0'. No failure line "
        "means no failure (notBreaching).",
        Namespace=NAMESPACE,
        MetricName=VERIFIER_RUN_FAILURES,
        Dimensions=ledger,
        Statistic="Sum",
        Period=VERIFIER_FAILURE_WINDOW_SECONDS,
        EvaluationPeriods=3,
        DatapointsToAlarm=3,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )


def _server_errors(t: Template, topic: sns.Topic, service: str) -> None:
    rate = cloudwatch.MetricDataQuery(
        Id="rate",
        Label="5xx % of requests",
        ReturnData=True,
        Expression=Sub(
            "IF(requests >= ${MinRequests}, 100 * FILL(errors, 0) / requests, 0)",
            MinRequests=sizing("ServerErrorMinRequestsPerMinute"),
        ),
    )
    _add(
        t,
        topic,
        f"{service.capitalize()}ServerErrorRateAlarm",
        f"{service}: 5xx responses (EMF {SERVER_ERRORS}) above the configured percentage of {REQUESTS} in 3 of "
        "5 minutes (minutes below the configured request volume count as 0 %). Runbook: 'Service 5xx'. "
        "No data means no traffic or no 5xx (notBreaching).",
        Metrics=[
            _stat("errors", SERVER_ERRORS, service, "Sum"),
            _stat("requests", REQUESTS, service, "Sum"),
            rate,
        ],
        EvaluationPeriods=5,
        DatapointsToAlarm=3,
        Threshold=sizing("ServerErrorRatePercent"),
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )


def _ledger_latency(t: Template, topic: sns.Topic) -> None:
    _add(
        t,
        topic,
        "LedgerLatencyP99Alarm",
        "Ledger p99 request latency (EMF Latency, ms) above the configured threshold for 5 consecutive "
        "minutes. Runbook: 'Ledger latency p99'. No requests means no latency (notBreaching).",
        Namespace=NAMESPACE,
        MetricName=LATENCY,
        Dimensions=_dimensions("ledger"),
        ExtendedStatistic="p99",
        Period=60,
        EvaluationPeriods=5,
        DatapointsToAlarm=5,
        Threshold=sizing("LedgerLatencyP99Ms"),
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        # EMF carries at most 100 sampled values per task and minute, fewer than the 1,000 samples
        # CloudWatch deems enough for a p99; "ignore" would therefore never evaluate this alarm.
        EvaluateLowSampleCountPercentile="evaluate",
    )


def _webhooks(t: Template, topic: sns.Topic) -> None:
    _add(
        t,
        topic,
        "WebhookEndpointsFailingAlarm",
        "At least one webhook endpoint is failing: its deliveries failed for WEBHOOK_GIVE_UP_SECONDS and "
        "have stopped until it is enabled again (EMF WebhookEndpointsFailing, all tenants). Runbook: "
        "'A webhook endpoint is failing'. Missing data keeps the state: only a count raises or clears it.",
        Namespace=NAMESPACE,
        MetricName=WEBHOOK_ENDPOINTS_FAILING,
        Dimensions=_dimensions("ledger"),
        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=1,
        DatapointsToAlarm=1,
        Threshold=FAILING_ENDPOINTS_TOLERANCE,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="ignore",
    )


def add_app_alarms(t: Template, topic: sns.Topic) -> None:
    """Add the application alarms (and the verifier-failure metric filter) to ``t``."""
    _verifier(t, topic)
    for service in SERVICES:
        _server_errors(t, topic, service)
    _ledger_latency(t, topic)
    _webhooks(t, topic)
