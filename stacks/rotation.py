"""Secrets Manager rotation for the secrets no hosted rotation Lambda covers.

The internal service token and the Redis users' passwords are random strings, not database
users, so ``HostedRotationLambda`` (database engines only) does not apply. One small inline Lambda
rotates them all: it generates a new ``token``; when ``REDIS_USER_ID`` is set, it gives that
ElastiCache RBAC user two passwords, the current token and the new one, before the new one becomes
current (``setSecret``), and waits until the user is active again. Old and new tokens are thus both
valid until the next rotation, as ElastiCache's ``ROTATE`` strategy kept them for the AUTH token
before (ADR 0110). The services re-read their secrets while they run (ADR 0107), so no task needs a
restart.
"""

from __future__ import annotations

from awacs import aws as iam
from awacs.aws import Allow, PolicyDocument, Statement
from troposphere import GetAtt, Ref, Sub, Template, awslambda, secretsmanager
from troposphere import iam as iam_res

from stacks.common import ENV_PARAM, RETAIN_EXCEPT_ON_CREATE, checkov_skip, log_group, role_trust, tags
from stacks.config import PlatformConfig

ROTATION_CODE = """\
import json, os, time
import boto3
sm = boto3.client("secretsmanager")
USER = os.environ.get("REDIS_USER_ID", "")
def _wait(ec):
    for _ in range(20):  # two waits of at most 400 s fit the 900 s timeout
        if ec.describe_users(UserId=USER)["Users"][0]["Status"] == "active":
            return
        time.sleep(20)
    raise RuntimeError("redis user %s is not active" % USER)
def handler(event, _context):
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    if token not in stages:
        raise ValueError("version %s is not staged for rotation" % token)
    if "AWSCURRENT" in stages[token]:
        return
    if step == "createSecret":
        try:
            sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
            return
        except sm.exceptions.ResourceNotFoundException:
            pass
        value = json.loads(sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
        value["token"] = sm.get_random_password(
            PasswordLength=64, ExcludePunctuation=True)["RandomPassword"]
        sm.put_secret_value(SecretId=arn, ClientRequestToken=token,
                            SecretString=json.dumps(value), VersionStages=["AWSPENDING"])
    elif step == "setSecret" and USER:
        pending = json.loads(sm.get_secret_value(
            SecretId=arn, VersionId=token, VersionStage="AWSPENDING")["SecretString"])
        current = json.loads(sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
        ec = boto3.client("elasticache")
        _wait(ec)
        # Both: tasks that have not re-read the secret yet keep opening connections (ADR 0110).
        ec.modify_user(UserId=USER, AuthenticationMode={
            "Type": "password", "Passwords": [current["token"], pending["token"]]})
        _wait(ec)
    elif step == "finishSecret":
        current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
        sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT",
                                       MoveToVersionId=token, RemoveFromVersionId=current)
"""


def rotated_secret(
    template: Template,
    platform: PlatformConfig,
    title: str,
    *,
    description: str,
    kms_key_arn: object,
    logs_key_arn: object,
    rotation_days: int,
    redis_user_id: object | None = None,
    name: object | None = None,
    depends_on: list[str] | None = None,
) -> secretsmanager.Secret:
    """A KMS-encrypted secret ``{"token": ...}`` with its rotation Lambda and schedule."""
    secret = template.add_resource(
        secretsmanager.Secret(
            title,
            **({"Name": name} if name is not None else {}),
            Description=description,
            KmsKeyId=kms_key_arn,
            GenerateSecretString=secretsmanager.GenerateSecretString(
                SecretStringTemplate="{}",
                GenerateStringKey="token",
                PasswordLength=64,
                ExcludePunctuation=True,
            ),
            Tags=tags(platform),
            DeletionPolicy=RETAIN_EXCEPT_ON_CREATE,
            UpdateReplacePolicy="Retain",
        )
    )
    group = log_group(
        template,
        f"{title}RotationLogGroup",
        Sub(f"/fintech/${{{ENV_PARAM}}}/rotation/{title}"),
        logs_key_arn,
        platform,
    )
    statements = [
        Statement(
            Effect=Allow,
            Action=[
                iam.Action("secretsmanager", "DescribeSecret"),
                iam.Action("secretsmanager", "GetSecretValue"),
                iam.Action("secretsmanager", "PutSecretValue"),
                iam.Action("secretsmanager", "UpdateSecretVersionStage"),
            ],
            Resource=[Ref(secret)],
        ),
        # GetRandomPassword acts on no resource; IAM only accepts "*" for it.
        Statement(Effect=Allow, Action=[iam.Action("secretsmanager", "GetRandomPassword")], Resource=["*"]),
        Statement(
            Effect=Allow,
            Action=[iam.Action("kms", "Decrypt"), iam.Action("kms", "GenerateDataKey")],
            Resource=[kms_key_arn],
        ),
        Statement(
            Effect=Allow,
            Action=[iam.Action("logs", "CreateLogStream"), iam.Action("logs", "PutLogEvents")],
            Resource=[GetAtt(group, "Arn")],
        ),
        Statement(
            Effect=Allow,
            Action=[iam.Action("xray", "PutTraceSegments"), iam.Action("xray", "PutTelemetryRecords")],
            Resource=["*"],
        ),
    ]
    environment: dict[str, object] = {}
    if redis_user_id is not None:
        environment["REDIS_USER_ID"] = redis_user_id
        statements.append(
            Statement(
                Effect=Allow,
                Action=[iam.Action("elasticache", "DescribeUsers"), iam.Action("elasticache", "ModifyUser")],
                Resource=[
                    Sub(
                        "arn:${AWS::Partition}:elasticache:${AWS::Region}:${AWS::AccountId}:user:${User}",
                        User=redis_user_id,
                    )
                ],
            )
        )
    role = template.add_resource(
        iam_res.Role(
            f"{title}RotationRole",
            Description=f"Rotation Lambda of {title}",
            AssumeRolePolicyDocument=role_trust("lambda.amazonaws.com"),
            Policies=[
                iam_res.Policy(
                    PolicyName="rotate-secret",
                    PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements),
                )
            ],
            Tags=tags(platform),
        )
    )
    function = awslambda.Function(
        f"{title}RotationFunction",
        Description=f"Rotates {title}",
        Runtime="python3.12",
        Handler="index.handler",
        Code=awslambda.Code(ZipFile=ROTATION_CODE),
        Role=GetAtt(role, "Arn"),
        Timeout=900,
        MemorySize=256,
        ReservedConcurrentExecutions=1,
        KmsKeyArn=kms_key_arn,
        TracingConfig=awslambda.TracingConfig(Mode="Active"),
        LoggingConfig=awslambda.LoggingConfig(LogGroup=Ref(group)),
        Tags=tags(platform),
    )
    if environment:
        function.Environment = awslambda.Environment(Variables=environment)
    checkov_skip(
        function,
        ("CKV_AWS_116", "Invoked synchronously by Secrets Manager, which retries and records failed rotations."),
        ("CKV_AWS_117", "Calls only regional AWS control-plane APIs; no VPC resource is reached."),
    )
    template.add_resource(function)
    permission = template.add_resource(
        awslambda.Permission(
            f"{title}RotationPermission",
            Action="lambda:InvokeFunction",
            FunctionName=GetAtt(function, "Arn"),
            Principal="secretsmanager.amazonaws.com",
            SourceAccount=Ref("AWS::AccountId"),
            SourceArn=Ref(secret),
        )
    )
    template.add_resource(
        secretsmanager.RotationSchedule(
            f"{title}RotationSchedule",
            DependsOn=[permission.title, *(depends_on or [])],
            SecretId=Ref(secret),
            RotationLambdaARN=GetAtt(function, "Arn"),
            RotationRules=secretsmanager.RotationRules(ScheduleExpression=f"rate({rotation_days} days)"),
        )
    )
    return secret
