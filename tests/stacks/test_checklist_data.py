"""infrastructure.md checklist, Data: each item is one test on the synthesized JSON."""

from __future__ import annotations

from tests.stacks.conftest import Json, env_values, props, resources


def test_aurora_cluster_encryption_protection_backups_iam_auth_logs_and_snapshot_policies(
    templates: dict[str, Json],
) -> None:
    t = templates["data"]
    (cluster,) = resources(t, "AWS::RDS::DBCluster").values()
    p = props(cluster)
    assert p["Engine"] == "aurora-postgresql"
    assert p["StorageEncrypted"] is True and "KmsKeyId" in p
    assert p["DeletionProtection"] is True
    assert min(env_values(t, p["BackupRetentionPeriod"])) >= 7
    assert p["CopyTagsToSnapshot"] is True
    assert p["EnableIAMDatabaseAuthentication"] is True
    assert p["EnableCloudwatchLogsExports"] == ["postgresql"]
    assert cluster["DeletionPolicy"] == "Snapshot" and cluster["UpdateReplacePolicy"] == "Snapshot"
    params = t["Resources"][p["DBClusterParameterGroupName"]["Ref"]]
    assert props(params)["Parameters"]["rds.force_ssl"] == "1"


def test_aurora_has_two_instances_in_two_azs_with_performance_insights_monitoring_and_no_public_access(
    templates: dict[str, Json],
) -> None:
    instances = resources(templates["data"], "AWS::RDS::DBInstance").values()
    assert len(instances) == 2
    assert sorted(props(i)["AvailabilityZone"]["Fn::Select"][0] for i in instances) == [0, 1]
    for instance in instances:
        p = props(instance)
        assert p["EnablePerformanceInsights"] is True and "PerformanceInsightsKMSKeyId" in p
        assert p["MonitoringInterval"] > 0 and "MonitoringRoleArn" in p
        assert p["PubliclyAccessible"] is False


def test_dynamodb_tables_on_demand_pitr_customer_key_deletion_protection_and_retain(
    templates: dict[str, Json],
) -> None:
    tables = resources(templates["data"], "AWS::DynamoDB::Table")
    names = {props(t)["TableName"]["Fn::Sub"]: t for t in tables.values()}
    keys = {"tenants": "tenant_id", "api-keys": "key_id", "sessions": "token_hash"}
    assert set(names) == {f"fintech-${{EnvironmentName}}-{name}" for name in keys}
    for name, table in names.items():
        p = props(table)
        assert p["BillingMode"] == "PAY_PER_REQUEST"
        assert p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert p["SSESpecification"]["SSEType"] == "KMS" and "KMSMasterKeyId" in p["SSESpecification"]
        assert p["DeletionProtectionEnabled"] is True
        # Retained once created; deleted only when the first create rolls back (issue 13, ADR 0104).
        assert table["DeletionPolicy"] == "RetainExceptOnCreate" and table["UpdateReplacePolicy"] == "Retain"
        (key,) = p["KeySchema"]
        assert key == {"AttributeName": keys[name.rsplit("}-", 1)[1]], "KeyType": "HASH"}


def test_dynamodb_sessions_table_has_the_ttl_attribute(templates: dict[str, Json]) -> None:
    table = resources(templates["data"], "AWS::DynamoDB::Table")["SessionsTable"]
    assert props(table)["TimeToLiveSpecification"] == {"AttributeName": "expires_at_epoch", "Enabled": True}


def test_redis_encrypted_auth_token_from_secret_multi_az_failover_replica_snapshots(
    templates: dict[str, Json],
) -> None:
    t = templates["data"]
    (group,) = resources(t, "AWS::ElastiCache::ReplicationGroup").values()
    p = props(group)
    assert p["TransitEncryptionEnabled"] is True and p["AtRestEncryptionEnabled"] is True and "KmsKeyId" in p
    # Authentication by RBAC users whose passwords come from secrets (test_checklist_redis_users.py).
    assert "AuthToken" not in p and p["UserGroupIds"] == [{"Ref": "RedisUserGroup"}]
    assert p["MultiAZEnabled"] is True and p["AutomaticFailoverEnabled"] is True
    assert min(env_values(t, p["ReplicasPerNodeGroup"])) >= 1
    assert min(env_values(t, p["SnapshotRetentionLimit"])) >= 1
    assert group["DeletionPolicy"] == "Snapshot" and group["UpdateReplacePolicy"] == "Snapshot"
