"""Issue 13, item 5: stacks that can be retried. A failed first create leaves nothing with a fixed
name behind (``RetainExceptOnCreate``, or ``Snapshot`` which deletes after a final snapshot), so a
rerun does not stop on "already exists"; and the DynamoDB tables, which deletion protection keeps a
rollback from deleting, are created after everything in their stack that can still fail."""

from __future__ import annotations

from stacks.data import TABLES_AFTER
from tests.stacks.conftest import Json, props

NAME_PROPERTIES = {
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::S3::Bucket": "BucketName",
    "AWS::RDS::DBCluster": "DBClusterIdentifier",
    "AWS::ElastiCache::ReplicationGroup": "ReplicationGroupId",
    "AWS::Backup::BackupVault": "BackupVaultName",
}
"""Stateful types and the property that gives them a fixed name."""


def test_no_resource_with_a_fixed_name_is_plainly_retained(templates: dict[str, Json]) -> None:
    named = 0
    for tier, t in templates.items():
        for name, res in t["Resources"].items():
            prop = NAME_PROPERTIES.get(res["Type"])
            if prop is None or prop not in props(res):
                continue
            named += 1
            assert res.get("DeletionPolicy") in ("RetainExceptOnCreate", "Snapshot"), f"{tier}.{name}"
            assert res.get("UpdateReplacePolicy") in ("Retain", "Snapshot"), f"{tier}.{name}"
    assert named >= 15


def test_kms_keys_are_retained_except_on_create(templates: dict[str, Json]) -> None:
    for tier, t in templates.items():
        for name, res in t["Resources"].items():
            if res["Type"] == "AWS::KMS::Key":
                assert res["DeletionPolicy"] == "RetainExceptOnCreate", f"{tier}.{name}"


def test_buckets_with_generated_names_stay_retained(templates: dict[str, Json]) -> None:
    # A generated name cannot collide on a rerun, and deleting a bucket that already holds objects
    # (or is under Object Lock) would fail the rollback itself.
    for tier, t in templates.items():
        for name, res in t["Resources"].items():
            if res["Type"] == "AWS::S3::Bucket":
                assert "BucketName" not in props(res), f"{tier}.{name}"
                assert res["DeletionPolicy"] == "Retain", f"{tier}.{name}"


def test_dynamodb_tables_are_created_after_everything_that_can_fail_later(templates: dict[str, Json]) -> None:
    data = templates["data"]["Resources"]
    assert set(TABLES_AFTER) <= set(data)
    for name, res in data.items():
        if res["Type"] == "AWS::DynamoDB::Table":
            assert props(res)["DeletionProtectionEnabled"] is True
            assert set(res["DependsOn"]) == set(TABLES_AFTER), name
    slow = {"AWS::RDS::DBInstance", "AWS::ElastiCache::ReplicationGroup", "AWS::SecretsManager::RotationSchedule"}
    assert {n for n, r in data.items() if r["Type"] in slow} <= set(TABLES_AFTER)
