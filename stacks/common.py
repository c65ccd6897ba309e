"""Building blocks shared by the tier modules: template skeleton, sizing lookups, tags, KMS keys,
log groups, buckets and checkov skip metadata."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import fields

from awacs import aws as iam
from awacs.aws import Allow, Condition, Deny, PolicyDocument, Principal, Statement
from troposphere import AWSObject, FindInMap, GetAtt, Parameter, Ref, Sub, Tags, Template, s3
from troposphere import kms as kms_res
from troposphere import logs as logs_res

from stacks.config import EnvironmentConfig, PlatformConfig, ServiceSizing

ENV_PARAM = "EnvironmentName"
SIZING_MAP = "EnvironmentSizing"
RETAIN_EXCEPT_ON_CREATE = "RetainExceptOnCreate"
"""DeletionPolicy of the retained resources that have a fixed name (log groups, tables, named
secrets) and of the KMS keys: retained like ``Retain`` once their stack has been created, but deleted
when the stack's first create rolls back, so a rerun does not stop on "already exists" (ADR 0104).
Only ``DeletionPolicy`` accepts it; their ``UpdateReplacePolicy`` stays ``Retain``."""

KMS_ALL = iam.Action("kms", "*")
KMS_USE = [
    iam.Action("kms", "Encrypt"),
    iam.Action("kms", "Decrypt"),
    iam.Action("kms", "ReEncrypt*"),
    iam.Action("kms", "GenerateDataKey*"),
    iam.Action("kms", "DescribeKey"),
]


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def sizing_rows(platform: PlatformConfig) -> dict[str, dict[str, object]]:
    """The ``EnvironmentSizing`` mapping: one row per environment, one CamelCase key per field."""
    rows: dict[str, dict[str, object]] = {}
    for env in platform.environments:
        row: dict[str, object] = {}
        for f in fields(EnvironmentConfig):
            value = getattr(env, f.name)
            if f.name == "name" or not f.metadata.get("mapping", True):
                continue
            if isinstance(value, ServiceSizing):
                for sf in fields(ServiceSizing):
                    row[_camel(f.name) + _camel(sf.name)] = getattr(value, sf.name)
            else:
                row[_camel(f.name)] = value
        rows[env.name] = row
    return rows


def sizing(key: str) -> FindInMap:
    """The current environment's value of sizing ``key`` (e.g. ``AuroraInstanceClass``)."""
    return FindInMap(SIZING_MAP, Ref(ENV_PARAM), key)


def new_template(platform: PlatformConfig, tier: str, description: str, *, with_sizing: bool = True) -> Template:
    """A template with the description, the ``EnvironmentName`` parameter and the sizing mapping."""
    template = Template(Description=f"FinTech ledger platform - {tier} tier: {description}")
    template.set_version("2010-09-09")
    template.add_parameter(
        Parameter(
            ENV_PARAM,
            Type="String",
            AllowedValues=platform.environment_names(),
            Description="Environment this stack belongs to; selects its row of the EnvironmentSizing "
            "mapping and prefixes resource names.",
        )
    )
    if with_sizing:
        template.add_mapping(SIZING_MAP, sizing_rows(platform))
    return template


def tags(platform: PlatformConfig, **extra: str) -> Tags:
    """Standard tags (application, owner, environment) plus ``extra``."""
    values: dict[str, object] = dict(platform.tags)
    values["Environment"] = Ref(ENV_PARAM)
    values.update(extra)
    return Tags(**values)


def checkov_skip(resource: AWSObject, *skips: tuple[str, str]) -> None:
    """Record checkov skips, each ``(check id, reason)``, in the resource's own Metadata."""
    metadata = dict(getattr(resource, "Metadata", {}) or {})
    metadata["checkov"] = {"skip": [{"id": cid, "comment": reason} for cid, reason in skips]}
    resource.Metadata = metadata


def account_root() -> Principal:
    return Principal("AWS", Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root"))


def same_account() -> dict[str, object]:
    return {"aws:SourceAccount": Ref("AWS::AccountId")}


def kms_key(
    template: Template,
    platform: PlatformConfig,
    title: str,
    description: str,
    service_statements: Sequence[Statement] = (),
) -> kms_res.Key:
    """A customer-managed key: rotated, retained, administered by the account, used by
    ``service_statements`` (each must carry conditions; no ``*`` principal is ever used)."""
    policy = PolicyDocument(
        Version="2012-10-17",
        Statement=[
            Statement(
                Sid="AccountAdministration",
                Effect=Allow,
                Principal=account_root(),
                Action=[KMS_ALL],
                Resource=["*"],
            ),
            *service_statements,
        ],
    )
    key = kms_res.Key(
        title,
        Description=description,
        EnableKeyRotation=True,
        PendingWindowInDays=30,
        KeyPolicy=policy,
        Tags=tags(platform),
        DeletionPolicy=RETAIN_EXCEPT_ON_CREATE,
        UpdateReplacePolicy="Retain",
    )
    template.add_resource(key)
    template.add_resource(
        kms_res.Alias(
            f"{title}Alias",
            AliasName=Sub(f"alias/fintech-${{{ENV_PARAM}}}-{_kebab(title)}"),
            TargetKeyId=Ref(key),
        )
    )
    return key


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def logs_service_statement() -> Statement:
    """Key policy statement letting CloudWatch Logs use a key for this account's log groups."""
    return Statement(
        Sid="CloudWatchLogs",
        Effect=Allow,
        Principal=Principal("Service", Sub("logs.${AWS::Region}.amazonaws.com")),
        Action=KMS_USE,
        Resource=["*"],
        Condition=Condition(
            iam.ArnLike(
                "kms:EncryptionContext:aws:logs:arn",
                Sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"),
            )
        ),
    )


def log_group(
    template: Template, title: str, name: object, kms_key_arn: object, platform: PlatformConfig
) -> logs_res.LogGroup:
    """A log group with KMS encryption and the environment's retention."""
    group = logs_res.LogGroup(
        title,
        LogGroupName=name,
        KmsKeyId=kms_key_arn,
        RetentionInDays=sizing("LogRetentionDays"),
        Tags=tags(platform),
        DeletionPolicy=RETAIN_EXCEPT_ON_CREATE,
        UpdateReplacePolicy="Retain",
    )
    return template.add_resource(group)


def deny_insecure_transport(bucket: s3.Bucket) -> Statement:
    """Bucket policy statement refusing every request not made over TLS."""
    return Statement(
        Sid="DenyInsecureTransport",
        Effect=Deny,
        Principal=Principal("*"),
        Action=[iam.Action("s3", "*")],
        Resource=[GetAtt(bucket, "Arn"), Sub("${Bucket}/*", Bucket=GetAtt(bucket, "Arn"))],
        Condition=Condition(iam.Bool("aws:SecureTransport", False)),
    )


def secure_bucket(
    template: Template,
    platform: PlatformConfig,
    title: str,
    *,
    expire_days: object,
    kms_key_arn: object | None,
    access_log_bucket: s3.Bucket | None,
    log_prefix: str = "",
    object_lock_days: object | None = None,
) -> s3.Bucket:
    """A private, versioned, encrypted, retained bucket with lifecycle expiry.

    Plain ``Retain`` (not ``RetainExceptOnCreate``): the bucket's name is generated, so a bucket left
    by a failed first create cannot block a rerun, while deleting one that already holds objects
    would fail the rollback itself.

    ``kms_key_arn`` None means SSE-S3 (for log destinations that do not support SSE-KMS).
    ``object_lock_days`` turns on S3 Object Lock in compliance mode with that default retention:
    no one, the account root included, can delete or overwrite an object version before it ends."""
    if kms_key_arn is None:
        encryption = s3.ServerSideEncryptionByDefault(SSEAlgorithm="AES256")
        rule = s3.ServerSideEncryptionRule(ServerSideEncryptionByDefault=encryption)
    else:
        encryption = s3.ServerSideEncryptionByDefault(SSEAlgorithm="aws:kms", KMSMasterKeyID=kms_key_arn)
        rule = s3.ServerSideEncryptionRule(ServerSideEncryptionByDefault=encryption, BucketKeyEnabled=True)
    props: dict[str, object] = dict(
        BucketEncryption=s3.BucketEncryption(ServerSideEncryptionConfiguration=[rule]),
        VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
        PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True
        ),
        OwnershipControls=s3.OwnershipControls(Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
        LifecycleConfiguration=s3.LifecycleConfiguration(
            Rules=[
                s3.LifecycleRule(
                    Id="ExpireOldObjects",
                    Status="Enabled",
                    ExpirationInDays=expire_days,
                    NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(NoncurrentDays=30),
                    AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(DaysAfterInitiation=7),
                )
            ]
        ),
        Tags=tags(platform),
    )
    if access_log_bucket is not None:
        props["LoggingConfiguration"] = s3.LoggingConfiguration(
            DestinationBucketName=Ref(access_log_bucket), LogFilePrefix=log_prefix or f"{title}/"
        )
    if object_lock_days is not None:
        props["ObjectLockEnabled"] = True
        props["ObjectLockConfiguration"] = s3.ObjectLockConfiguration(
            ObjectLockEnabled="Enabled",
            Rule=s3.ObjectLockRule(DefaultRetention=s3.DefaultRetention(Mode="COMPLIANCE", Days=object_lock_days)),
        )
    bucket = s3.Bucket(title, DeletionPolicy="Retain", UpdateReplacePolicy="Retain", **props)
    return template.add_resource(bucket)


def bucket_policy(
    template: Template, title: str, bucket: s3.Bucket, statements: Iterable[Statement]
) -> s3.BucketPolicy:
    document = PolicyDocument(Version="2012-10-17", Statement=[deny_insecure_transport(bucket), *statements])
    return template.add_resource(s3.BucketPolicy(title, Bucket=Ref(bucket), PolicyDocument=document))


def role_trust(service: str) -> PolicyDocument:
    """Trust policy letting ``service`` (e.g. ``ecs-tasks.amazonaws.com``) assume a role from this
    account only."""
    return PolicyDocument(
        Version="2012-10-17",
        Statement=[
            Statement(
                Effect=Allow,
                Principal=Principal("Service", service),
                Action=[iam.Action("sts", "AssumeRole")],
                Condition=Condition(iam.StringEquals(same_account())),
            )
        ],
    )
