"""Issue 13, item 4: backups and audit. An AWS Backup plan for Aurora and DynamoDB into a locked
vault, copied to a second region; S3 Object Lock (compliance mode) on the CloudTrail bucket; AWS
Config rules, with a parameter that skips the recorder where an organisation already records."""

from __future__ import annotations

import json

from stacks.compliance_rules import MANAGED_RULES
from stacks.config import PLATFORM
from tests.stacks.conftest import Json, env_values, props, resources


def _one(t: Json, rtype: str) -> Json:
    (res,) = resources(t, rtype).values()
    return res


def test_vault_is_locked_encrypted_with_its_own_key_and_refuses_deletion(templates: dict[str, Json]) -> None:
    t = templates["backup"]
    vault = _one(t, "AWS::Backup::BackupVault")
    p = props(vault)
    assert p["EncryptionKeyArn"] == {"Fn::GetAtt": ["BackupKey", "Arn"]}
    lock = p["LockConfiguration"]
    assert lock["ChangeableForDays"] == 3  # then compliance mode: immutable even for the root user
    assert env_values(t, lock["MinRetentionDays"]) == [e.backup_daily_retention_days for e in PLATFORM.environments]
    assert env_values(t, lock["MaxRetentionDays"]) == [e.backup_monthly_retention_days for e in PLATFORM.environments]
    (deny,) = json.loads(p["AccessPolicy"])["Statement"]  # troposphere writes the JSON policy as a string
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert set(deny["Action"]) == {"backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle"}
    assert "Condition" not in vault  # the vault (and its key) exist in both regions


def test_plan_backs_up_daily_and_monthly_and_copies_every_point_to_the_copy_region(
    templates: dict[str, Json],
) -> None:
    t = templates["backup"]
    plan = _one(t, "AWS::Backup::BackupPlan")
    rules = props(plan)["BackupPlan"]["BackupPlanRule"]
    assert [r["RuleName"] for r in rules] == ["Daily", "Monthly"]
    for rule in rules:
        assert rule["TargetBackupVault"] == {"Ref": "BackupVault"}
        (copy,) = rule["CopyActions"]
        arn = copy["DestinationBackupVaultArn"]["Fn::Sub"]
        assert ":backup:${BackupCopyRegion}:${AWS::AccountId}:backup-vault:fintech-${EnvironmentName}" in arn
        assert copy["Lifecycle"] == rule["Lifecycle"]  # the copy lives as long as the original
    lock = props(_one(t, "AWS::Backup::BackupVault"))["LockConfiguration"]
    # Every retention fits the vault lock, or the lock would refuse the recovery points.
    kept = [env_values(t, r["Lifecycle"]["DeleteAfterDays"]) for r in rules]
    lows, highs = env_values(t, lock["MinRetentionDays"]), env_values(t, lock["MaxRetentionDays"])
    for per_env in kept:
        assert all(lo <= days <= hi for days, lo, hi in zip(per_env, lows, highs, strict=True))


def test_selection_is_aurora_and_dynamodb_of_this_application_and_environment(templates: dict[str, Json]) -> None:
    t = templates["backup"]
    selection = props(_one(t, "AWS::Backup::BackupSelection"))["BackupSelection"]
    arns = [r["Fn::Sub"] for r in selection["Resources"]]
    assert ":rds:" in arns[0] and ":dynamodb:" in arns[1] and len(arns) == 2
    assert arns[0].endswith(":cluster:*") and arns[1].endswith(":table/*")
    tags = {c["ConditionKey"]: c["ConditionValue"] for c in selection["Conditions"]["StringEquals"]}
    assert tags == {
        "aws:ResourceTag/Application": "fintech-ledger",
        "aws:ResourceTag/Environment": {"Ref": "EnvironmentName"},
    }
    # ... and the data tier's cluster and tables carry exactly those tags, so the selection finds them.
    data = templates["data"]
    for rtype in ("AWS::RDS::DBCluster", "AWS::DynamoDB::Table"):
        for name, res in resources(data, rtype).items():
            carried = {tag["Key"]: tag["Value"] for tag in props(res)["Tags"]}
            assert carried["Application"] == "fintech-ledger", name
            assert carried["Environment"] == {"Ref": "EnvironmentName"}, name


def test_plan_selection_and_role_exist_only_outside_the_copy_region(templates: dict[str, Json]) -> None:
    t = templates["backup"]
    assert t["Conditions"]["IsBackupCopyRegion"] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "BackupCopyRegion"}]
    }
    assert t["Conditions"]["IsBackupPrimaryRegion"] == {"Fn::Not": [{"Condition": "IsBackupCopyRegion"}]}
    conditional = {name: res.get("Condition") for name, res in t["Resources"].items()}
    for name in ("BackupPlan", "BackupSelection", "BackupRole"):
        assert conditional[name] == "IsBackupPrimaryRegion", name
    assert "Default" not in t["Parameters"]["BackupCopyRegion"]  # a copy region is never implicit
    assert not t.get("Outputs")  # nothing imports from it; nothing it holds is imported


def test_cloudtrail_bucket_has_object_lock_in_compliance_mode(templates: dict[str, Json]) -> None:
    t = templates["compliance"]
    trail = _one(t, "AWS::CloudTrail::Trail")
    bucket = t["Resources"][props(trail)["S3BucketName"]["Ref"]]
    p = props(bucket)
    assert p["ObjectLockEnabled"] is True
    assert p["VersioningConfiguration"]["Status"] == "Enabled"  # Object Lock requires it
    lock = p["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    retention = lock["Rule"]["DefaultRetention"]
    assert retention["Mode"] == "COMPLIANCE"
    assert env_values(t, retention["Days"]) == [e.audit_object_lock_days for e in PLATFORM.environments]
    for env in PLATFORM.environments:
        assert 0 < env.audit_object_lock_days <= env.audit_retention_days


def test_config_recorder_can_be_skipped_where_an_organisation_already_records(templates: dict[str, Json]) -> None:
    t = templates["compliance"]
    param = t["Parameters"]["CreateConfigRecorder"]
    assert param["AllowedValues"] == ["true", "false"] and param["Default"] == "true"
    assert t["Conditions"]["CreateConfigRecorderCondition"] == {"Fn::Equals": [{"Ref": "CreateConfigRecorder"}, "true"]}
    skipped = {name for name, res in t["Resources"].items() if res.get("Condition") == "CreateConfigRecorderCondition"}
    assert skipped == {"ConfigRecorder", "ConfigDeliveryChannel", "ConfigBucket", "ConfigBucketPolicy", "ConfigRole"}


def test_config_rules_cover_the_platform_and_wait_for_the_recorder_only_when_it_is_created(
    templates: dict[str, Json],
) -> None:
    t = templates["compliance"]
    rules = resources(t, "AWS::Config::ConfigRule")
    assert len(rules) == len(MANAGED_RULES) >= 15
    identifiers = {props(r)["Source"]["SourceIdentifier"] for r in rules.values()}
    for needed in (
        "CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED",
        "RDS_CLUSTER_DELETION_PROTECTION_ENABLED",
        "DYNAMODB_PITR_ENABLED",
        "S3_BUCKET_SSL_REQUESTS_ONLY",
        "SECRETSMANAGER_ROTATION_ENABLED_CHECK",
        "BACKUP_RECOVERY_POINT_MANUAL_DELETION_DISABLED",
    ):
        assert needed in identifiers, needed
    handle = t["Resources"]["ConfigRecorderReady"]
    assert handle["Type"] == "AWS::CloudFormation::WaitConditionHandle"
    assert handle["Metadata"]["Recorder"]["Fn::If"][:2] == ["CreateConfigRecorderCondition", {"Ref": "ConfigRecorder"}]
    for name, rule in rules.items():
        assert "Condition" not in rule, name
        assert rule["DependsOn"] == ["ConfigRecorderReady"], name
        assert props(rule)["Source"]["Owner"] == "AWS"
        assert props(rule)["ConfigRuleName"]["Fn::Sub"].startswith("fintech-${EnvironmentName}-"), name
