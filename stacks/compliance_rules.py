"""Compliance tier, rules part: the ``CreateConfigRecorder`` switch and the AWS managed Config rules
that watch, continuously, the properties the checklist tests prove at synth time.

Invariants:
- The rules exist whether or not this stack creates the recorder. With ``CreateConfigRecorder=false``
  they are evaluated by the recorder the organisation already runs in the region (AWS allows one
  recorder per region, so creating a second one would fail the stack).
- AWS refuses a rule while no recorder exists, so every rule waits for this stack's recorder when
  there is one. ``DependsOn`` cannot be conditional, so the rules depend on a wait-condition handle
  whose metadata references the recorder only under the condition.
"""

from __future__ import annotations

from troposphere import Equals, If, Parameter, Ref, Sub, Template, cloudformation
from troposphere import config as cfg

from stacks.common import ENV_PARAM

CREATE_RECORDER_PARAM = "CreateConfigRecorder"
CREATE_RECORDER = "CreateConfigRecorderCondition"

MANAGED_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # (AWS managed rule identifier, resource types it is scoped to; () = periodic, account-wide)
    ("MULTI_REGION_CLOUD_TRAIL_ENABLED", ()),
    ("CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED", ()),
    ("CLOUD_TRAIL_ENCRYPTION_ENABLED", ()),
    ("CMK_BACKING_KEY_ROTATION_ENABLED", ()),
    ("VPC_FLOW_LOGS_ENABLED", ()),
    ("RDS_STORAGE_ENCRYPTED", ("AWS::RDS::DBInstance",)),
    ("RDS_INSTANCE_PUBLIC_ACCESS_CHECK", ("AWS::RDS::DBInstance",)),
    ("RDS_CLUSTER_DELETION_PROTECTION_ENABLED", ("AWS::RDS::DBCluster",)),
    ("DYNAMODB_PITR_ENABLED", ("AWS::DynamoDB::Table",)),
    ("ELASTICACHE_REPL_GRP_ENCRYPTED_AT_REST", ()),
    ("ELASTICACHE_REPL_GRP_ENCRYPTED_IN_TRANSIT", ()),
    # Redis authenticates RBAC users, never a shared AUTH token (ADR 0110).
    ("ELASTICACHE_RBAC_AUTH_ENABLED", ()),
    ("S3_BUCKET_PUBLIC_READ_PROHIBITED", ("AWS::S3::Bucket",)),
    ("S3_BUCKET_SSL_REQUESTS_ONLY", ("AWS::S3::Bucket",)),
    ("SECRETSMANAGER_ROTATION_ENABLED_CHECK", ("AWS::SecretsManager::Secret",)),
    ("SECRETSMANAGER_SCHEDULED_ROTATION_SUCCESS_CHECK", ("AWS::SecretsManager::Secret",)),
    ("ALB_WAF_ENABLED", ("AWS::ElasticLoadBalancingV2::LoadBalancer",)),
    ("CLOUDWATCH_LOG_GROUP_ENCRYPTED", ()),
    ("ECS_CONTAINERS_READONLY_ACCESS", ("AWS::ECS::TaskDefinition",)),
    ("ECS_CONTAINERS_NONPRIVILEGED", ("AWS::ECS::TaskDefinition",)),
    ("BACKUP_RECOVERY_POINT_ENCRYPTED", ("AWS::Backup::RecoveryPoint",)),
    ("BACKUP_RECOVERY_POINT_MANUAL_DELETION_DISABLED", ("AWS::Backup::BackupVault",)),
)
"""The platform's controls as AWS managed rules: audit trail, keys, network, data stores, edge,
containers and backups."""


def add_recorder_parameter(t: Template) -> None:
    t.add_parameter(
        Parameter(
            CREATE_RECORDER_PARAM,
            Type="String",
            AllowedValues=["true", "false"],
            Default="true",
            Description="false where the organisation already runs an AWS Config recorder in this account and "
            "region (only one is allowed): this stack then creates no recorder, delivery channel or Config "
            "bucket, and its Config rules use the existing recorder.",
        )
    )
    t.add_condition(CREATE_RECORDER, Equals(Ref(CREATE_RECORDER_PARAM), "true"))


def _rule_name(identifier: str) -> Sub:
    return Sub(f"fintech-${{{ENV_PARAM}}}-{identifier.lower().replace('_', '-')}")


def add_config_rules(t: Template, recorder: cfg.ConfigurationRecorder, channel: cfg.DeliveryChannel) -> None:
    """Add every rule of ``MANAGED_RULES``, each created after this stack's recorder when it has one."""
    ready = t.add_resource(
        cloudformation.WaitConditionHandle(
            "ConfigRecorderReady",
            Metadata={
                "Recorder": If(CREATE_RECORDER, Ref(recorder), "the organisation's"),
                "DeliveryChannel": If(CREATE_RECORDER, Ref(channel), "the organisation's"),
            },
        )
    )
    for identifier, resource_types in MANAGED_RULES:
        title = "".join(part.capitalize() for part in identifier.split("_")) + "Rule"
        rule = cfg.ConfigRule(
            title,
            DependsOn=[ready.title],
            ConfigRuleName=_rule_name(identifier),
            Description=f"AWS managed rule {identifier}",
            Source=cfg.Source(Owner="AWS", SourceIdentifier=identifier),
        )
        if resource_types:
            rule.Scope = cfg.Scope(ComplianceResourceTypes=list(resource_types))
        t.add_resource(rule)
