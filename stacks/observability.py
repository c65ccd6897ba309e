"""Observability tier: the encrypted alarm topic, the alarms, the ``FinTech-Operations`` dashboard and
the EventBridge rules that forward ECS service errors.

AWS-native alarms live here; the alarms on the services' application (EMF) metrics, whose names come
from ``shared.metrics``, live in :mod:`stacks.app_alarms`, the SLOs and their burn-rate alarms in
:mod:`stacks.slo`, and the dashboard in :mod:`stacks.dashboard`.
Their thresholds come from the typed per-environment config through the ``EnvironmentSizing`` mapping.
"""

from __future__ import annotations

from collections.abc import Sequence

from awacs import aws as iam
from awacs.aws import Allow, Condition, PolicyDocument, Principal, Statement
from troposphere import Equals, Not, Parameter, Ref, Sub, Template, cloudwatch, events, sns

from shared.metrics import SERVICES
from stacks.app_alarms import add_app_alarms
from stacks.common import new_template, same_account, tags
from stacks.config import PlatformConfig
from stacks.dashboard import dashboard_body
from stacks.naming import ComputeExports, DataExports, NetworkExports, SecurityExports, import_value
from stacks.network import second_nat_gateway
from stacks.ops_alarms import add_ops_alarms, redis_node_ids
from stacks.security import TABLES
from stacks.slo import add_slo_alarms


def _alarm(
    t: Template,
    topic: sns.Topic,
    title: str,
    description: str,
    *,
    namespace: str = "",
    metric: str = "",
    dimensions: dict[str, object] | None = None,
    statistic: str = "Sum",
    threshold: float,
    comparison: str = "GreaterThanThreshold",
    periods: int = 3,
    period: int = 60,
    missing: str = "notBreaching",
    metrics: list[cloudwatch.MetricDataQuery] | None = None,
) -> cloudwatch.Alarm:
    props: dict[str, object] = dict(
        AlarmDescription=description,
        AlarmActions=[Ref(topic)],
        OKActions=[Ref(topic)],
        TreatMissingData=missing,
        Threshold=threshold,
        ComparisonOperator=comparison,
        EvaluationPeriods=periods,
        DatapointsToAlarm=periods,
    )
    if metrics is not None:
        props["Metrics"] = metrics
    else:
        props.update(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[cloudwatch.MetricDimension(Name=k, Value=v) for k, v in (dimensions or {}).items()],
            Period=period,
        )
        if statistic.startswith("p"):
            props["ExtendedStatistic"] = statistic
        else:
            props["Statistic"] = statistic
    alarm: cloudwatch.Alarm = t.add_resource(cloudwatch.Alarm(title, **props))
    return alarm


def _query(
    qid: str, namespace: str, metric: str, dims: dict[str, object], stat: str = "Maximum"
) -> cloudwatch.MetricDataQuery:
    return cloudwatch.MetricDataQuery(
        Id=qid,
        ReturnData=False,
        MetricStat=cloudwatch.MetricStat(
            Metric=cloudwatch.Metric(
                Namespace=namespace,
                MetricName=metric,
                Dimensions=[cloudwatch.MetricDimension(Name=k, Value=v) for k, v in dims.items()],
            ),
            Period=60,
            Stat=stat,
        ),
    )


def _alarms(t: Template, platform: PlatformConfig, topic: sns.Topic) -> None:
    alb = import_value(t, ComputeExports.ALB_FULL_NAME)
    tg = import_value(t, ComputeExports.TARGET_GROUP_FULL_NAME)
    cluster = import_value(t, ComputeExports.CLUSTER_NAME)
    elb = "AWS/ApplicationELB"
    _alarm(
        t,
        topic,
        "AlbElb5xxAlarm",
        "The ALB itself answers 5XX (no healthy target, overload)",
        namespace=elb,
        metric="HTTPCode_ELB_5XX_Count",
        dimensions={"LoadBalancer": alb},
        threshold=10,
    )
    _alarm(
        t,
        topic,
        "AlbTarget5xxAlarm",
        "Gateway tasks answer 5XX",
        namespace=elb,
        metric="HTTPCode_Target_5XX_Count",
        dimensions={"LoadBalancer": alb},
        threshold=10,
    )
    _alarm(
        t,
        topic,
        "UnhealthyHostsAlarm",
        "At least one gateway target fails /health/ready",
        namespace=elb,
        metric="UnHealthyHostCount",
        dimensions={"LoadBalancer": alb, "TargetGroup": tg},
        statistic="Maximum",
        threshold=0,
        periods=2,
    )
    _alarm(
        t,
        topic,
        "TargetResponseTimeP99Alarm",
        "p99 latency of the gateway above 1 s",
        namespace=elb,
        metric="TargetResponseTime",
        dimensions={"LoadBalancer": alb},
        statistic="p99",
        threshold=1.0,
        periods=5,
    )
    for svc in SERVICES:
        name = import_value(t, ComputeExports.service_name(svc))
        for metric, short in (("CPUUtilization", "Cpu"), ("MemoryUtilization", "Memory")):
            _alarm(
                t,
                topic,
                f"{svc.capitalize()}{short}Alarm",
                f"{svc} tasks: average {metric} above 85%",
                namespace="AWS/ECS",
                metric=metric,
                dimensions={"ClusterName": cluster, "ServiceName": name},
                statistic="Average",
                threshold=85,
                periods=5,
                missing="breaching",
            )
    db = import_value(t, DataExports.CLUSTER_ID)
    _alarm(
        t,
        topic,
        "AuroraCpuAlarm",
        "Aurora CPU above 80%",
        namespace="AWS/RDS",
        metric="CPUUtilization",
        dimensions={"DBClusterIdentifier": db},
        statistic="Maximum",
        threshold=80,
        periods=5,
    )
    _alarm(
        t,
        topic,
        "AuroraFreeableMemoryAlarm",
        "Aurora freeable memory below 256 MiB",
        namespace="AWS/RDS",
        metric="FreeableMemory",
        dimensions={"DBClusterIdentifier": db},
        statistic="Minimum",
        threshold=256 * 1024 * 1024,
        comparison="LessThanThreshold",
        periods=5,
    )
    # Every node the largest environment has (prod: a primary and two replicas), not just two.
    nodes = redis_node_ids(t, platform)
    for title, metric, threshold, desc in (
        ("RedisEvictionsAlarm", "Evictions", 0, "Redis evicts keys (memory full)"),
        ("RedisCpuAlarm", "EngineCPUUtilization", 80, "Redis engine CPU above 80%"),
    ):
        queries = [_query(f"n{i}", "AWS/ElastiCache", metric, {"CacheClusterId": n}) for i, n in enumerate(nodes)]
        ids = ", ".join(q.Id for q in queries)
        queries.append(
            cloudwatch.MetricDataQuery(Id="worst", Expression=f"MAX([{ids}])", Label=metric, ReturnData=True)
        )
        _alarm(t, topic, title, desc + " on the primary or a replica", threshold=threshold, metrics=queries)
    throttles = []
    for i, table in enumerate(TABLES):
        name = import_value(t, DataExports.table_name(table))
        for kind in ("Read", "Write"):
            throttles.append(
                _query(f"{kind.lower()}{i}", "AWS/DynamoDB", f"{kind}ThrottleEvents", {"TableName": name}, stat="Sum")
            )
    ids = ", ".join(q.Id for q in throttles)
    throttles.append(
        cloudwatch.MetricDataQuery(Id="total", Expression=f"SUM([{ids}])", Label="Throttles", ReturnData=True)
    )
    _alarm(
        t,
        topic,
        "DynamoDbThrottlesAlarm",
        "DynamoDB throttles read or write requests",
        threshold=0,
        periods=2,
        metrics=throttles,
    )
    has_second, per_az = second_nat_gateway(t, platform)
    for i, ref in enumerate(NetworkExports.NAT_GATEWAYS):
        if i > 0 and not has_second:
            continue  # every environment runs one NAT gateway: the B export names the A one
        alarm = _alarm(
            t,
            topic,
            f"NatPortAllocationErrors{'AB'[i]}Alarm",
            f"NAT gateway {'AB'[i]} cannot allocate source ports",
            namespace="AWS/NATGateway",
            metric="ErrorPortAllocation",
            dimensions={"NatGatewayId": import_value(t, ref)},
            threshold=0,
            periods=1,
        )
        if i > 0 and per_az is not None:
            alarm.Condition = per_az  # where dev runs one NAT gateway, B would watch A twice


def build(platform: PlatformConfig, app_metrics: Sequence[str] = ()) -> Template:
    """The observability tier template. The application rows and alarms always use ``shared.metrics``;
    ``app_metrics`` adds one further dashboard graph per named EMF metric."""
    t = new_template(platform, "observability", "alarm topic, alarms, dashboard and EventBridge rules")
    t.add_parameter(
        Parameter(
            "AlarmEmail",
            Type="String",
            Default="",
            AllowedPattern="^([^@\\s]+@[^@\\s]+)?$",
            Description="E-mail address (an on-call alias or a pager's e-mail endpoint) subscribed to the "
            "alarm topic; required in prod (rule ProdNeedsAnAlarmSubscriber), optional elsewhere.",
        )
    )
    t.add_condition("HasAlarmEmail", Not(Equals(Ref("AlarmEmail"), "")))
    topic = t.add_resource(
        sns.Topic(
            "AlarmTopic",
            DisplayName="FinTech alarms",
            KmsMasterKeyId=import_value(t, SecurityExports.ALERTS_KEY_ARN),
            Tags=tags(platform),
        )
    )
    t.add_resource(
        sns.TopicPolicy(
            "AlarmTopicPolicy",
            Topics=[Ref(topic)],
            PolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    Statement(
                        Sid="AlarmsAndRules",
                        Effect=Allow,
                        Principal=Principal("Service", ["cloudwatch.amazonaws.com", "events.amazonaws.com"]),
                        Action=[iam.Action("sns", "Publish")],
                        Resource=[Ref(topic)],
                        Condition=Condition(iam.StringEquals(same_account())),
                    )
                ],
            ),
        )
    )
    t.add_resource(
        sns.SubscriptionResource(
            "AlarmEmailSubscription",
            Condition="HasAlarmEmail",
            TopicArn=Ref(topic),
            Protocol="email",
            Endpoint=Ref("AlarmEmail"),
        )
    )
    _alarms(t, platform, topic)
    add_app_alarms(t, topic)
    add_ops_alarms(t, platform, topic)
    slo_alarms = add_slo_alarms(t, topic)
    # The dashboard lists every alarm the environment has for sure (a conditional one may not exist).
    alarms = [
        name
        for name, res in t.resources.items()
        if isinstance(res, cloudwatch.Alarm) and getattr(res, "Condition", None) is None
    ]
    variables: dict[str, object] = {
        "Alb": import_value(t, ComputeExports.ALB_FULL_NAME),
        "TargetGroup": import_value(t, ComputeExports.TARGET_GROUP_FULL_NAME),
        "Cluster": import_value(t, ComputeExports.CLUSTER_NAME),
        "Db": import_value(t, DataExports.CLUSTER_ID),
        "Redis": import_value(t, DataExports.REDIS_GROUP_ID),
    }
    for svc in SERVICES:
        variables[f"{svc.capitalize()}Service"] = import_value(t, ComputeExports.service_name(svc))
    for table in TABLES:
        variables[f"{table.replace('-', '')}Table"] = import_value(t, DataExports.table_name(table))
    t.add_resource(
        cloudwatch.Dashboard(
            "OperationsDashboard",
            DashboardName=platform.dashboard_name,
            DashboardBody=Sub(dashboard_body(platform, app_metrics, alarms, slo_alarms), **variables),
        )
    )
    cluster_arn = import_value(t, ComputeExports.CLUSTER_ARN)
    for title, detail_type, detail in (
        ("EcsServiceErrorsRule", "ECS Service Action", {"eventType": ["ERROR", "WARN"]}),
        ("EcsDeploymentFailedRule", "ECS Deployment State Change", {"eventName": ["SERVICE_DEPLOYMENT_FAILED"]}),
    ):
        t.add_resource(
            events.Rule(
                title,
                Description=f"{detail_type} events of the platform's cluster to the alarm topic",
                State="ENABLED",
                EventPattern={
                    "source": ["aws.ecs"],
                    "detail-type": [detail_type],
                    "detail": {**detail, "clusterArn": [cluster_arn]},
                },
                Targets=[events.Target(Id="AlarmTopic", Arn=Ref(topic))],
            )
        )
    return t
