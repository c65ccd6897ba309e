"""Issue 13, item 7: operations. Prod requires an alarm subscriber; every Redis node is monitored;
alarms for Aurora replica lag and connections and for Redis memory; secret rotation failures page."""

from __future__ import annotations

from stacks.config import PLATFORM
from tests.stacks.conftest import Json, env_values, props, resources


def _alarms(templates: dict[str, Json]) -> dict[str, Json]:
    return resources(templates["observability"], "AWS::CloudWatch::Alarm")


def test_prod_cannot_be_deployed_without_an_alarm_subscriber(templates: dict[str, Json]) -> None:
    t = templates["observability"]
    rule = t["Rules"]["ProdNeedsAnAlarmSubscriber"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "EnvironmentName"}, "prod"]}
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    (subscription,) = resources(t, "AWS::SNS::Subscription").values()
    assert props(subscription)["Endpoint"] == {"Ref": "AlarmEmail"}


def test_every_redis_node_of_the_largest_environment_is_in_every_redis_alarm(templates: dict[str, Json]) -> None:
    nodes = 1 + max(env.redis_replicas for env in PLATFORM.environments)
    expected = {f"${{Group}}-{i:03d}" for i in range(1, nodes + 1)}
    redis_alarms = 0
    for name, alarm in _alarms(templates).items():
        queries = props(alarm).get("Metrics", [])
        metrics = [q["MetricStat"]["Metric"] for q in queries if "MetricStat" in q]
        if not metrics or metrics[0]["Namespace"] != "AWS/ElastiCache":
            continue
        redis_alarms += 1
        covered = {m["Dimensions"][0]["Value"]["Fn::Sub"][0] for m in metrics}
        assert covered == expected, name
        (worst,) = [q for q in queries if q.get("ReturnData")]
        assert worst["Expression"] == "MAX([" + ", ".join(f"n{i}" for i in range(nodes)) + "])", name
    assert redis_alarms == 3  # evictions, engine CPU, memory


def test_aurora_replica_lag_and_connections_alarms(templates: dict[str, Json]) -> None:
    t = templates["observability"]
    alarms = _alarms(templates)
    lag = props(alarms["AuroraReplicaLagAlarm"])
    assert (lag["Namespace"], lag["MetricName"]) == ("AWS/RDS", "AuroraReplicaLagMaximum")
    assert lag["Threshold"] <= 5000  # milliseconds
    connections = props(alarms["AuroraConnectionsAlarm"])
    assert connections["MetricName"] == "DatabaseConnections"
    thresholds = env_values(t, connections["Threshold"])
    gib = {"db.t4g.medium": 4, "db.r7g.large": 16}
    for env, threshold in zip(PLATFORM.environments, thresholds, strict=True):
        max_connections = gib[env.aurora_instance_class] * 1024**3 // 9_531_392
        assert 0.5 * max_connections <= threshold < max_connections, env.name
    for alarm in (lag, connections):
        assert alarm["Dimensions"][0]["Name"] == "DBClusterIdentifier"


def test_secret_rotation_failures_go_to_the_alarm_topic(templates: dict[str, Json]) -> None:
    rule = resources(templates["observability"], "AWS::Events::Rule")["SecretRotationFailedRule"]
    pattern = props(rule)["EventPattern"]
    assert pattern["source"] == ["aws.secretsmanager"]
    assert sorted(pattern["detail"]["eventName"]) == ["RotationAbandoned", "RotationFailed"]
    assert props(rule)["Targets"][0]["Arn"] == {"Ref": "AlarmTopic"}


def test_redis_never_evicts_so_security_state_never_makes_room(templates: dict[str, Json]) -> None:
    # ADR 0108: every key has a TTL, so any eviction policy could drop a revocation marker.
    data = templates["data"]
    (group,) = resources(data, "AWS::ElastiCache::ReplicationGroup").values()
    params = data["Resources"][props(group)["CacheParameterGroupName"]["Ref"]]
    assert params["Type"] == "AWS::ElastiCache::ParameterGroup"
    assert props(params)["Properties"] == {"maxmemory-policy": "noeviction"}
    major = PLATFORM.redis_engine_version.split(".")[0]
    assert props(params)["CacheParameterGroupFamily"] == f"redis{major}"
    assert "RedisMemoryAlarm" in _alarms(templates)  # pages before writes are refused
