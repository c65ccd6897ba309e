"""infrastructure.md checklist, Observability and governance: each item is one test on the JSON."""

from __future__ import annotations

import json

from tests.stacks.conftest import Json, all_resources, props, resources

STATEFUL = (
    "AWS::RDS::DBCluster",
    "AWS::RDS::DBInstance",
    "AWS::DynamoDB::Table",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::KMS::Key",
    "AWS::S3::Bucket",
    "AWS::SecretsManager::Secret",
    "AWS::Logs::LogGroup",
)


def test_sns_topic_encrypted_with_kms(templates: dict[str, Json]) -> None:
    (topic,) = resources(templates["observability"], "AWS::SNS::Topic").values()
    assert props(topic)["KmsMasterKeyId"]["Fn::ImportValue"]["Fn::Sub"] == "${SecurityStack}-AlertsKeyArn"


def _alarms(templates: dict[str, Json]) -> dict[str, Json]:
    return resources(templates["observability"], "AWS::CloudWatch::Alarm")


def _metrics(alarm: Json) -> set[str]:
    p = props(alarm)
    if "MetricName" in p:
        return {f"{p['Namespace']}/{p['MetricName']}"}
    return {
        f"{q['MetricStat']['Metric']['Namespace']}/{q['MetricStat']['Metric']['MetricName']}"
        for q in p["Metrics"]
        if "MetricStat" in q
    }


def test_every_alarm_has_alarm_and_ok_actions_and_treat_missing_data(templates: dict[str, Json]) -> None:
    # An alarm without actions is allowed only as an input of a composite alarm that notifies (the SLO
    # burn-rate windows, stacks/slo.py): every alarm condition still reaches someone.
    composites = resources(templates["observability"], "AWS::CloudWatch::CompositeAlarm")
    notifying_inputs = {
        arn["Fn::GetAtt"][0]
        for c in composites.values()
        if props(c).get("AlarmActions") and props(c).get("OKActions")
        for arn in props(c)["AlarmRule"]["Fn::Sub"][1].values()
    }
    for name, alarm in _alarms(templates).items():
        p = props(alarm)
        assert p["TreatMissingData"], name
        assert (p.get("AlarmActions") and p.get("OKActions")) or name in notifying_inputs, name


def test_alarms_cover_alb_ecs_aurora_redis_dynamodb_and_nat(templates: dict[str, Json]) -> None:
    alarms = _alarms(templates)
    covered = [m for a in alarms.values() for m in _metrics(a)]
    for metric in (
        "AWS/ApplicationELB/HTTPCode_ELB_5XX_Count",
        "AWS/ApplicationELB/HTTPCode_Target_5XX_Count",
        "AWS/ApplicationELB/UnHealthyHostCount",
        "AWS/RDS/CPUUtilization",
        "AWS/RDS/FreeableMemory",
        "AWS/ElastiCache/Evictions",
        "AWS/ElastiCache/EngineCPUUtilization",
        "AWS/DynamoDB/ReadThrottleEvents",
        "AWS/DynamoDB/WriteThrottleEvents",
        "AWS/NATGateway/ErrorPortAllocation",
    ):
        assert metric in covered, metric
    (p99,) = [a for a in alarms.values() if props(a).get("MetricName") == "TargetResponseTime"]
    assert props(p99)["ExtendedStatistic"] == "p99"
    assert covered.count("AWS/NATGateway/ErrorPortAllocation") == 2  # one per NAT gateway


def test_ecs_cpu_and_memory_alarms_per_service(templates: dict[str, Json]) -> None:
    alarms = _alarms(templates).values()
    for service in ("gateway", "ledger", "session"):
        for metric in ("CPUUtilization", "MemoryUtilization"):
            matching = [
                a
                for a in alarms
                if props(a).get("MetricName") == metric
                and props(a)["Namespace"] == "AWS/ECS"
                and any(
                    d["Name"] == "ServiceName" and service.capitalize() in json.dumps(d["Value"])
                    for d in props(a)["Dimensions"]
                )
            ]
            assert len(matching) == 1, (service, metric)


def test_dashboard_fintech_operations_covers_the_services_the_alb_and_the_data_tier(templates: dict[str, Json]) -> None:
    (dashboard,) = resources(templates["observability"], "AWS::CloudWatch::Dashboard").values()
    assert props(dashboard)["DashboardName"] == "FinTech-Operations"
    body = json.loads(props(dashboard)["DashboardBody"]["Fn::Sub"][0])
    text = json.dumps(body)
    for needle in (
        "${GatewayService}",
        "${LedgerService}",
        "${SessionService}",
        "AWS/ApplicationELB",
        "AWS/RDS",
        "AWS/ElastiCache",
        "AWS/DynamoDB",
    ):
        assert needle in text, needle


def test_eventbridge_rule_sends_ecs_service_action_errors_and_warnings_to_sns(templates: dict[str, Json]) -> None:
    rules = resources(templates["observability"], "AWS::Events::Rule").values()
    (rule,) = [r for r in rules if props(r)["EventPattern"]["detail-type"] == ["ECS Service Action"]]
    assert props(rule)["EventPattern"]["source"] == ["aws.ecs"]
    assert sorted(props(rule)["EventPattern"]["detail"]["eventType"]) == ["ERROR", "WARN"]
    assert props(rule)["Targets"][0]["Arn"] == {"Ref": "AlarmTopic"}


def test_cloudtrail_multi_region_global_events_validation_kms_and_cloudwatch_logs(templates: dict[str, Json]) -> None:
    (trail,) = resources(templates["compliance"], "AWS::CloudTrail::Trail").values()
    p = props(trail)
    assert p["IsMultiRegionTrail"] is True and p["IncludeGlobalServiceEvents"] is True
    assert p["EnableLogFileValidation"] is True and "KMSKeyId" in p
    assert "CloudWatchLogsLogGroupArn" in p and "CloudWatchLogsRoleArn" in p


def test_cloudtrail_bucket_versioned_public_access_blocked_and_retained(templates: dict[str, Json]) -> None:
    t = templates["compliance"]
    (trail,) = resources(t, "AWS::CloudTrail::Trail").values()
    bucket = t["Resources"][props(trail)["S3BucketName"]["Ref"]]
    assert props(bucket)["VersioningConfiguration"]["Status"] == "Enabled"
    assert all(props(bucket)["PublicAccessBlockConfiguration"].values())
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"


def test_aws_config_records_all_supported_and_global_types_with_a_delivery_channel(templates: dict[str, Json]) -> None:
    t = templates["compliance"]
    (recorder,) = resources(t, "AWS::Config::ConfigurationRecorder").values()
    assert props(recorder)["RecordingGroup"] == {"AllSupported": True, "IncludeGlobalResourceTypes": True}
    (channel,) = resources(t, "AWS::Config::DeliveryChannel").values()
    assert "S3BucketName" in props(channel)


def test_every_log_group_has_retention_and_kms_key(templates: dict[str, Json]) -> None:
    groups = all_resources(templates, "AWS::Logs::LogGroup")
    assert len(groups) >= 8
    for name, group in groups.items():
        assert "RetentionInDays" in props(group) and "KmsKeyId" in props(group), name


def test_every_stateful_resource_sets_deletion_and_update_replace_policies(templates: dict[str, Json]) -> None:
    for rtype in STATEFUL:
        for name, res in all_resources(templates, rtype).items():
            assert "DeletionPolicy" in res and "UpdateReplacePolicy" in res, name


def test_application_metrics_hook_adds_one_dashboard_graph_per_metric() -> None:
    from stacks import observability
    from stacks.config import PLATFORM

    body = observability.build(PLATFORM, app_metrics=("Requests", "Latency")).to_dict()
    dashboard = body["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    titles = [w["properties"]["title"] for w in json.loads(dashboard)["widgets"]]
    assert "Requests" in titles and "Latency" in titles
