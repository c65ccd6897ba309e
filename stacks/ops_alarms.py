"""Observability tier, operations part (issue 13, item 7): what pages besides the checklist's alarms.

- Aurora replica lag and connection count, so a failover target that lags, or a connection leak,
  pages before it becomes an outage.
- Redis memory on every node. A full Redis evicts keys (the evictions alarm fires afterwards), so
  this one fires before.
- Secret rotation failures. Secrets Manager reports ``RotationFailed`` and ``RotationAbandoned`` as
  service events, and an EventBridge rule sends them to the alarm topic. A failed rotation leaves
  the old secret in place, which is harmless once but must not go unnoticed until the next one.
- In prod the stack cannot be deployed without a subscriber to the alarm topic (a template rule).

Invariants: every alarm notifies the topic on ALARM and OK and sets TreatMissingData, as the
checklist requires of all alarms; every Redis node the largest environment can have is covered.
"""

from __future__ import annotations

from troposphere import Equals, Not, Ref, Sub, Template, cloudwatch, events, sns

from stacks.common import ENV_PARAM, sizing
from stacks.config import PlatformConfig
from stacks.naming import DataExports, import_value

ROTATION_EVENTS = ("RotationFailed", "RotationAbandoned")
PROD = "prod"


def redis_node_ids(t: Template, platform: PlatformConfig) -> list[Sub]:
    """CacheClusterIds of every node the replication group can have in any environment (primary and
    replicas: ``<group>-001`` ...); a node that does not exist in an environment has no data, and
    the MAX() over the nodes ignores it."""
    group = import_value(t, DataExports.REDIS_GROUP_ID)
    count = 1 + max(env.redis_replicas for env in platform.environments)
    return [Sub(f"${{Group}}-{i:03d}", Group=group) for i in range(1, count + 1)]


def _notify(topic: sns.Topic) -> dict[str, object]:
    return {"AlarmActions": [Ref(topic)], "OKActions": [Ref(topic)]}


def _worst_of_nodes(t: Template, platform: PlatformConfig, metric: str, stat: str) -> list[cloudwatch.MetricDataQuery]:
    queries = [
        cloudwatch.MetricDataQuery(
            Id=f"n{i}",
            ReturnData=False,
            MetricStat=cloudwatch.MetricStat(
                Metric=cloudwatch.Metric(
                    Namespace="AWS/ElastiCache",
                    MetricName=metric,
                    Dimensions=[cloudwatch.MetricDimension(Name="CacheClusterId", Value=node)],
                ),
                Period=60,
                Stat=stat,
            ),
        )
        for i, node in enumerate(redis_node_ids(t, platform))
    ]
    ids = ", ".join(q.Id for q in queries)
    queries.append(cloudwatch.MetricDataQuery(Id="worst", Expression=f"MAX([{ids}])", Label=metric, ReturnData=True))
    return queries


def add_ops_alarms(t: Template, platform: PlatformConfig, topic: sns.Topic) -> None:
    """Add the alarms, the rotation-failure rule and the prod subscription rule to ``t``."""
    db = import_value(t, DataExports.CLUSTER_ID)
    t.add_resource(
        cloudwatch.Alarm(
            "AuroraReplicaLagAlarm",
            AlarmDescription="Aurora reader more than 2 s behind the writer: a failover would start stale reads",
            Namespace="AWS/RDS",
            MetricName="AuroraReplicaLagMaximum",
            Dimensions=[cloudwatch.MetricDimension(Name="DBClusterIdentifier", Value=db)],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=5,
            DatapointsToAlarm=5,
            Threshold=2000,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            **_notify(topic),
        )
    )
    t.add_resource(
        cloudwatch.Alarm(
            "AuroraConnectionsAlarm",
            AlarmDescription="Aurora connections near the instance class's max_connections (a leak, or too many tasks)",
            Namespace="AWS/RDS",
            MetricName="DatabaseConnections",
            Dimensions=[cloudwatch.MetricDimension(Name="DBClusterIdentifier", Value=db)],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=5,
            DatapointsToAlarm=5,
            Threshold=sizing("AuroraConnectionsAlarm"),
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            **_notify(topic),
        )
    )
    t.add_resource(
        cloudwatch.Alarm(
            "RedisMemoryAlarm",
            AlarmDescription="Redis memory above 80% on the primary or a replica: evictions come next",
            Metrics=_worst_of_nodes(t, platform, "DatabaseMemoryUsagePercentage", "Maximum"),
            EvaluationPeriods=5,
            DatapointsToAlarm=5,
            Threshold=80,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            **_notify(topic),
        )
    )
    t.add_resource(
        events.Rule(
            "SecretRotationFailedRule",
            Description="Secrets Manager rotation failures (any platform secret) to the alarm topic",
            State="ENABLED",
            EventPattern={
                "source": ["aws.secretsmanager"],
                "detail-type": ["AWS Service Event via CloudTrail"],
                "detail": {"eventName": list(ROTATION_EVENTS)},
            },
            Targets=[events.Target(Id="AlarmTopic", Arn=Ref(topic))],
        )
    )
    t.add_rule(
        "ProdNeedsAnAlarmSubscriber",
        {
            "RuleCondition": Equals(Ref(ENV_PARAM), PROD),
            "Assertions": [
                {
                    "Assert": Not(Equals(Ref("AlarmEmail"), "")),
                    "AssertDescription": "prod pages someone: pass --parameter AlarmEmail=<on-call address>",
                }
            ],
        },
    )
