"""Compliance tier: a multi-region CloudTrail trail (its bucket under S3 Object Lock, compliance mode),
the AWS Config recorder with its bucket (skipped with ``CreateConfigRecorder=false`` where an
organisation already records) and the AWS Config rules of ``stacks.compliance_rules``."""

from __future__ import annotations

from awacs import aws as iam
from awacs.aws import Allow, Condition, PolicyDocument, Principal, Statement
from troposphere import GetAtt, Ref, Sub, Template, cloudtrail
from troposphere import config as cfg
from troposphere import iam as iam_res

from stacks.common import (
    ENV_PARAM,
    bucket_policy,
    checkov_skip,
    log_group,
    new_template,
    role_trust,
    secure_bucket,
    sizing,
    tags,
)
from stacks.compliance_rules import CREATE_RECORDER, add_config_rules, add_recorder_parameter
from stacks.config import PlatformConfig
from stacks.naming import SecurityExports, import_value


def _trail(t: Template, platform: PlatformConfig, audit_key: object, access_logs: object) -> None:
    trail_name = Sub(f"${{{ENV_PARAM}}}-fintech-trail")
    trail_arn = Sub(
        f"arn:${{AWS::Partition}}:cloudtrail:${{AWS::Region}}:${{AWS::AccountId}}:trail/${{{ENV_PARAM}}}-fintech-trail"
    )
    bucket = secure_bucket(
        t,
        platform,
        "TrailBucket",
        expire_days=sizing("AuditRetentionDays"),
        kms_key_arn=audit_key,
        access_log_bucket=access_logs,  # type: ignore[arg-type]
        # Log-file validation proves tampering after the fact; Object Lock prevents it.
        object_lock_days=sizing("AuditObjectLockDays"),
    )
    service = Principal("Service", "cloudtrail.amazonaws.com")
    source = Condition(iam.StringEquals({"aws:SourceArn": trail_arn}))
    policy = bucket_policy(
        t,
        "TrailBucketPolicy",
        bucket,
        [
            Statement(
                Sid="CloudTrailAclCheck",
                Effect=Allow,
                Principal=service,
                Action=[iam.Action("s3", "GetBucketAcl")],
                Resource=[GetAtt(bucket, "Arn")],
                Condition=source,
            ),
            Statement(
                Sid="CloudTrailWrite",
                Effect=Allow,
                Principal=service,
                Action=[iam.Action("s3", "PutObject")],
                Resource=[Sub("${TrailBucket.Arn}/AWSLogs/${AWS::AccountId}/*")],
                Condition=Condition(
                    [iam.StringEquals({"aws:SourceArn": trail_arn, "s3:x-amz-acl": "bucket-owner-full-control"})]
                ),
            ),
        ],
    )
    group = log_group(
        t,
        "TrailLogGroup",
        Sub(f"/fintech/${{{ENV_PARAM}}}/cloudtrail"),
        import_value(t, SecurityExports.LOGS_KEY_ARN),
        platform,
    )
    role = t.add_resource(
        iam_res.Role(
            "TrailLogsRole",
            Description="Lets CloudTrail deliver events to its log group",
            AssumeRolePolicyDocument=role_trust("cloudtrail.amazonaws.com"),
            Policies=[
                iam_res.Policy(
                    PolicyName="deliver-trail-events",
                    PolicyDocument=PolicyDocument(
                        Version="2012-10-17",
                        Statement=[
                            Statement(
                                Effect=Allow,
                                Action=[iam.Action("logs", "CreateLogStream"), iam.Action("logs", "PutLogEvents")],
                                Resource=[Sub("${TrailLogGroup.Arn}")],
                            )
                        ],
                    ),
                )
            ],
            Tags=tags(platform),
        )
    )
    trail = cloudtrail.Trail(
        "Trail",
        DependsOn=[policy.title],
        TrailName=trail_name,
        IsLogging=True,
        IsMultiRegionTrail=True,
        IncludeGlobalServiceEvents=True,
        EnableLogFileValidation=True,
        KMSKeyId=audit_key,
        S3BucketName=Ref(bucket),
        CloudWatchLogsLogGroupArn=GetAtt(group, "Arn"),
        CloudWatchLogsRoleArn=GetAtt(role, "Arn"),
        Tags=tags(platform),
    )
    t.add_resource(trail)


def _config(
    t: Template, platform: PlatformConfig, audit_key: object, access_logs: object
) -> tuple[cfg.ConfigurationRecorder, cfg.DeliveryChannel]:
    bucket = secure_bucket(
        t,
        platform,
        "ConfigBucket",
        expire_days=sizing("AuditRetentionDays"),
        kms_key_arn=audit_key,
        access_log_bucket=access_logs,  # type: ignore[arg-type]
    )
    service = Principal("Service", "config.amazonaws.com")
    account = Condition(iam.StringEquals({"aws:SourceAccount": Ref("AWS::AccountId")}))
    policy = bucket_policy(
        t,
        "ConfigBucketPolicy",
        bucket,
        [
            Statement(
                Sid="ConfigAclCheck",
                Effect=Allow,
                Principal=service,
                Action=[iam.Action("s3", "GetBucketAcl"), iam.Action("s3", "ListBucket")],
                Resource=[GetAtt(bucket, "Arn")],
                Condition=account,
            ),
            Statement(
                Sid="ConfigWrite",
                Effect=Allow,
                Principal=service,
                Action=[iam.Action("s3", "PutObject")],
                Resource=[Sub("${ConfigBucket.Arn}/AWSLogs/${AWS::AccountId}/Config/*")],
                Condition=Condition(
                    [
                        iam.StringEquals(
                            {"aws:SourceAccount": Ref("AWS::AccountId"), "s3:x-amz-acl": "bucket-owner-full-control"}
                        )
                    ]
                ),
            ),
        ],
    )
    role = t.add_resource(
        iam_res.Role(
            "ConfigRole",
            Description="AWS Config recorder role: reads resource configuration, delivers to its bucket",
            AssumeRolePolicyDocument=role_trust("config.amazonaws.com"),
            ManagedPolicyArns=[Sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AWS_ConfigRole")],
            Policies=[
                iam_res.Policy(
                    PolicyName="deliver-to-config-bucket",
                    PolicyDocument=PolicyDocument(
                        Version="2012-10-17",
                        Statement=[
                            Statement(
                                Effect=Allow,
                                Action=[iam.Action("s3", "PutObject")],
                                Resource=[Sub("${ConfigBucket.Arn}/AWSLogs/${AWS::AccountId}/Config/*")],
                                Condition=Condition(iam.StringEquals({"s3:x-amz-acl": "bucket-owner-full-control"})),
                            ),
                            Statement(
                                Effect=Allow,
                                Action=[iam.Action("s3", "GetBucketAcl")],
                                Resource=[GetAtt(bucket, "Arn")],
                            ),
                            Statement(
                                Effect=Allow,
                                Action=[iam.Action("kms", "Decrypt"), iam.Action("kms", "GenerateDataKey")],
                                Resource=[audit_key],
                            ),
                        ],
                    ),
                )
            ],
            Tags=tags(platform),
        )
    )
    recorder = t.add_resource(
        cfg.ConfigurationRecorder(
            "ConfigRecorder",
            RoleARN=GetAtt(role, "Arn"),
            RecordingGroup=cfg.RecordingGroup(AllSupported=True, IncludeGlobalResourceTypes=True),
        )
    )
    channel = t.add_resource(
        cfg.DeliveryChannel(
            "ConfigDeliveryChannel",
            DependsOn=[policy.title, recorder.title],
            S3BucketName=Ref(bucket),
            S3KmsKeyArn=audit_key,
            ConfigSnapshotDeliveryProperties=cfg.ConfigSnapshotDeliveryProperties(DeliveryFrequency="TwentyFour_Hours"),
        )
    )
    # An account whose organisation already records (one recorder per region is all AWS allows)
    # skips all of this; the rules below then evaluate with the organisation's recorder.
    for resource in (bucket, policy, role, recorder, channel):
        resource.Condition = CREATE_RECORDER
    return recorder, channel


def build(platform: PlatformConfig) -> Template:
    """The compliance tier template."""
    t = new_template(platform, "compliance", "CloudTrail, AWS Config and their buckets")
    audit_key = import_value(t, SecurityExports.AUDIT_KEY_ARN)
    access_logs = secure_bucket(
        t,
        platform,
        "AuditAccessLogsBucket",
        expire_days=sizing("AuditRetentionDays"),
        kms_key_arn=None,
        access_log_bucket=None,
    )
    checkov_skip(
        access_logs,
        ("CKV_AWS_18", "Server access log destination of the audit buckets; it cannot log to itself."),
    )
    bucket_policy(
        t,
        "AuditAccessLogsBucketPolicy",
        access_logs,
        [
            Statement(
                Sid="S3ServerAccessLogs",
                Effect=Allow,
                Principal=Principal("Service", "logging.s3.amazonaws.com"),
                Action=[iam.Action("s3", "PutObject")],
                Resource=[Sub("${AuditAccessLogsBucket.Arn}/*")],
                Condition=Condition(iam.StringEquals({"aws:SourceAccount": Ref("AWS::AccountId")})),
            )
        ],
    )
    _trail(t, platform, audit_key, access_logs)
    add_recorder_parameter(t)
    recorder, channel = _config(t, platform, audit_key, access_logs)
    add_config_rules(t, recorder, channel)
    return t
