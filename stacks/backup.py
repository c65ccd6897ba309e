"""Backup tier: AWS Backup of the ledger's stores (Aurora, DynamoDB) into a locked vault, copied to a
vault of the same name in a second region.

One template serves both regions (``BackupCopyRegion`` tells them apart):
- deployed in the copy region (``AWS::Region`` equals ``BackupCopyRegion``) it holds only that
  region's key and locked vault, the destination of the copies;
- deployed anywhere else (the primary region) it also holds the plan, its selection and its role.

Invariants:
- Recovery points live only in vaults under a vault lock (compliance mode once ``ChangeableForDays``
  has passed: nobody, the account root included, can delete one before its retention ends or shorten
  the lock) whose access policy also refuses deletion and lifecycle changes while the lock is still
  changeable.
- Every rule copies to the other region with the same retention, so losing a region, or the
  primary vault, loses no recovery point.
- The selection is by resource type and by the tags every data-tier resource carries (Application,
  Environment), so this tier imports nothing and can be deployed where the data stack does not
  exist (the copy region).
"""

from __future__ import annotations

import json

from awacs import aws as iam
from awacs.aws import Deny, PolicyDocument, Principal, Statement
from troposphere import Condition as CfnCondition
from troposphere import Equals, GetAtt, Not, Parameter, Ref, Sub, Template, backup
from troposphere import iam as iam_res

from stacks.common import ENV_PARAM, RETAIN_EXCEPT_ON_CREATE, kms_key, new_template, role_trust, sizing, tags
from stacks.config import PlatformConfig

COPY_REGION_PARAM = "BackupCopyRegion"
IS_COPY_REGION = "IsBackupCopyRegion"
IS_PRIMARY_REGION = "IsBackupPrimaryRegion"
VAULT_LOCK_CHANGEABLE_DAYS = 3
"""Grace period (the minimum AWS allows) after which the vault lock becomes immutable (compliance mode)."""
RULES = (
    # (rule name, schedule, retention sizing key): after Aurora's backup window (02:00-03:00 UTC) and
    # the Redis snapshot (03:00-04:00 UTC), so the jobs do not compete.
    ("Daily", "cron(0 4 * * ? *)", "BackupDailyRetentionDays"),
    ("Monthly", "cron(0 5 1 * ? *)", "BackupMonthlyRetentionDays"),
)
SELECTED_ARNS = (
    "arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:cluster:*",
    "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*",
)
"""Resource types the plan backs up (narrowed to this application and environment by tags)."""


def vault_name() -> Sub:
    """Name of the vault in both regions: ``fintech-<env>``."""
    return Sub(f"fintech-${{{ENV_PARAM}}}")


def _document(policy: PolicyDocument) -> dict[str, object]:
    # troposphere types AccessPolicy as JSON (a dict or a string), not as an awacs document.
    return dict(json.loads(policy.to_json()))


def _vault(t: Template, platform: PlatformConfig) -> backup.BackupVault:
    key = kms_key(t, platform, "BackupKey", "Encrypts the recovery points of this region's backup vault")
    everyone = Principal("*")
    return t.add_resource(
        backup.BackupVault(
            "BackupVault",
            BackupVaultName=vault_name(),
            EncryptionKeyArn=GetAtt(key, "Arn"),
            LockConfiguration=backup.LockConfigurationType(
                MinRetentionDays=sizing("BackupDailyRetentionDays"),
                MaxRetentionDays=sizing("BackupMonthlyRetentionDays"),
                ChangeableForDays=VAULT_LOCK_CHANGEABLE_DAYS,
            ),
            AccessPolicy=_document(
                PolicyDocument(
                    Version="2012-10-17",
                    Statement=[
                        Statement(
                            Sid="NoEarlyDeletion",
                            Effect=Deny,
                            Principal=everyone,
                            Action=[
                                iam.Action("backup", "DeleteRecoveryPoint"),
                                iam.Action("backup", "UpdateRecoveryPointLifecycle"),
                            ],
                            Resource=["*"],
                        )
                    ],
                )
            ),
            BackupVaultTags=dict(platform.tags) | {"Environment": Ref(ENV_PARAM)},
            DeletionPolicy=RETAIN_EXCEPT_ON_CREATE,
            UpdateReplacePolicy="Retain",
        )
    )


def _plan(t: Template, platform: PlatformConfig, vault: backup.BackupVault) -> None:
    role = t.add_resource(
        iam_res.Role(
            "BackupRole",
            Condition=IS_PRIMARY_REGION,
            Description="AWS Backup: backs up and restores the selected Aurora cluster and DynamoDB tables",
            AssumeRolePolicyDocument=role_trust("backup.amazonaws.com"),
            ManagedPolicyArns=[
                Sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"),
                Sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores"),
            ],
            Tags=tags(platform),
        )
    )
    copy_vault = Sub(
        f"arn:${{AWS::Partition}}:backup:${{{COPY_REGION_PARAM}}}:${{AWS::AccountId}}:backup-vault:fintech-${{{ENV_PARAM}}}"
    )
    rules = []
    for name, schedule, retention in RULES:
        lifecycle = backup.LifecycleResourceType(DeleteAfterDays=sizing(retention))
        rules.append(
            backup.BackupRuleResourceType(
                RuleName=name,
                TargetBackupVault=Ref(vault),
                ScheduleExpression=schedule,
                StartWindowMinutes=60,
                CompletionWindowMinutes=480,
                Lifecycle=lifecycle,
                CopyActions=[backup.CopyActionResourceType(DestinationBackupVaultArn=copy_vault, Lifecycle=lifecycle)],
                RecoveryPointTags={"Rule": name},
            )
        )
    plan = t.add_resource(
        backup.BackupPlan(
            "BackupPlan",
            Condition=IS_PRIMARY_REGION,
            BackupPlan=backup.BackupPlanResourceType(BackupPlanName=vault_name(), BackupPlanRule=rules),
            BackupPlanTags=dict(platform.tags) | {"Environment": Ref(ENV_PARAM)},
        )
    )
    t.add_resource(
        backup.BackupSelection(
            "BackupSelection",
            Condition=IS_PRIMARY_REGION,
            BackupPlanId=Ref(plan),
            BackupSelection=backup.BackupSelectionResourceType(
                SelectionName="ledger-stores",
                IamRoleArn=GetAtt(role, "Arn"),
                Resources=[Sub(arn) for arn in SELECTED_ARNS],
                Conditions=backup.Conditions(
                    StringEquals=[
                        backup.ConditionParameter(
                            ConditionKey="aws:ResourceTag/Application",
                            ConditionValue=dict(platform.tags)["Application"],
                        ),
                        backup.ConditionParameter(
                            ConditionKey="aws:ResourceTag/Environment", ConditionValue=Ref(ENV_PARAM)
                        ),
                    ]
                ),
            ),
        )
    )


def build(platform: PlatformConfig) -> Template:
    """The backup tier template."""
    t = new_template(platform, "backup", "AWS Backup plan and locked vaults, copied to a second region")
    t.add_parameter(
        Parameter(
            COPY_REGION_PARAM,
            Type="String",
            AllowedPattern=r"^[a-z]{2}(-[a-z]+)+-\d$",
            Description="Region that holds the copy of every recovery point. Deploy this tier there first "
            "(it then creates only the destination vault), then in the primary region (plan and selection).",
        )
    )
    t.add_condition(IS_COPY_REGION, Equals(Ref("AWS::Region"), Ref(COPY_REGION_PARAM)))
    t.add_condition(IS_PRIMARY_REGION, Not(CfnCondition(IS_COPY_REGION)))
    vault = _vault(t, platform)
    _plan(t, platform, vault)
    return t
