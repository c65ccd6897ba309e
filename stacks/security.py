"""Security tier: KMS keys, security groups, the internal-token secret, the ECS IAM roles and the
image registry (``stacks.security_registry``)."""

from __future__ import annotations

from awacs import aws as iam
from awacs.aws import Allow, Condition, PolicyDocument, Principal, Statement
from troposphere import GetAtt, Ref, Sub, Template, ec2
from troposphere import iam as iam_res

from stacks.common import (
    ENV_PARAM,
    checkov_skip,
    kms_key,
    logs_service_statement,
    new_template,
    role_trust,
    same_account,
    tags,
)
from stacks.config import PlatformConfig
from stacks.naming import NetworkExports, SecurityExports, add_export, import_value
from stacks.rotation import rotated_secret
from stacks.security_registry import build_registry

TABLES = ("tenants", "api-keys", "sessions")
"""DynamoDB tables of the session service (``<prefix><table>``)."""


SESSION_DYNAMODB_ACTIONS = ("GetItem", "PutItem", "UpdateItem", "DescribeTable")
"""Exactly the DynamoDB calls services/session/store.py makes (DescribeTable: its readiness check);
a test derives them from that file, so a new call there fails until it is granted here."""


def table_prefix() -> Sub:
    """DYNAMODB_TABLE_PREFIX of an environment: ``fintech-<env>-``."""
    return Sub(f"fintech-${{{ENV_PARAM}}}-")


def _service_statement(
    sid: str, service: str, extra: dict[str, object] | None = None, actions: tuple[str, ...] = ()
) -> Statement:
    conditions: list[iam.ConditionElement] = [iam.StringEquals(same_account())]
    if extra:
        conditions.append(iam.StringLike(extra))
    return Statement(
        Sid=sid,
        Effect=Allow,
        Principal=Principal("Service", service),
        Action=[iam.Action("kms", a) for a in (actions or ("Decrypt", "GenerateDataKey*"))],
        Resource=["*"],
        Condition=Condition(conditions),
    )


def _keys(t: Template, platform: PlatformConfig) -> dict[str, object]:
    data = kms_key(
        t,
        platform,
        "DataKey",
        "Encrypts Aurora, Performance Insights, DynamoDB, Redis and the platform's secrets; "
        "principals use it through IAM policies (the account statement delegates to IAM)",
    )
    logs = kms_key(t, platform, "LogsKey", "Encrypts the CloudWatch log groups", [logs_service_statement()])
    alerts = kms_key(
        t,
        platform,
        "AlertsKey",
        "Encrypts the alarm SNS topic",
        [
            _service_statement("CloudWatchAlarms", "cloudwatch.amazonaws.com"),
            _service_statement("EventBridgeRules", "events.amazonaws.com"),
        ],
    )
    audit = kms_key(
        t,
        platform,
        "AuditKey",
        "Encrypts CloudTrail logs and AWS Config deliveries",
        [
            _service_statement(
                "CloudTrail",
                "cloudtrail.amazonaws.com",
                {
                    "kms:EncryptionContext:aws:cloudtrail:arn": Sub(
                        "arn:${AWS::Partition}:cloudtrail:*:${AWS::AccountId}:trail/*"
                    )
                },
            ),
            # CloudTrail describes the key when the trail is created or updated (no encryption context).
            _service_statement("CloudTrailDescribeKey", "cloudtrail.amazonaws.com", actions=("DescribeKey",)),
            _service_statement("AwsConfig", "config.amazonaws.com"),
        ],
    )
    values = {
        "data": GetAtt(data, "Arn"),
        "logs": GetAtt(logs, "Arn"),
        "alerts": GetAtt(alerts, "Arn"),
        "audit": GetAtt(audit, "Arn"),
    }
    add_export(t, SecurityExports.DATA_KEY_ARN, values["data"])
    add_export(t, SecurityExports.LOGS_KEY_ARN, values["logs"])
    add_export(t, SecurityExports.ALERTS_KEY_ARN, values["alerts"])
    add_export(t, SecurityExports.AUDIT_KEY_ARN, values["audit"])
    return values


def _security_groups(t: Template, platform: PlatformConfig) -> None:
    vpc = import_value(t, NetworkExports.VPC_ID)
    groups: dict[str, ec2.SecurityGroup] = {}
    for name, description in (
        ("Alb", "Public ALB: HTTPS (and HTTP that only redirects) from the internet"),
        ("Gateway", "Gateway tasks"),
        ("Ledger", "Ledger tasks"),
        ("Session", "Session tasks"),
        ("Database", "Aurora PostgreSQL"),
        ("Redis", "ElastiCache Redis"),
    ):
        groups[name] = t.add_resource(
            ec2.SecurityGroup(
                f"{name}SecurityGroup",
                GroupDescription=description,
                VpcId=vpc,
                SecurityGroupEgress=[
                    ec2.SecurityGroupRule(
                        IpProtocol="-1",
                        CidrIp="127.0.0.1/32",
                        Description="Placeholder that removes the default allow-all egress",
                    )
                ],
                Tags=tags(platform, Name=Sub(f"${{{ENV_PARAM}}}-{name.lower()}")),
            )
        )

    def ingress_cidr(title: str, group: str, port: int, description: str) -> ec2.SecurityGroupIngress:
        return t.add_resource(
            ec2.SecurityGroupIngress(
                title,
                GroupId=Ref(groups[group]),
                IpProtocol="tcp",
                FromPort=port,
                ToPort=port,
                CidrIp="0.0.0.0/0",
                Description=description,
            )
        )

    def allow(source: str, target: str, port: int, description: str) -> None:
        t.add_resource(
            ec2.SecurityGroupIngress(
                f"{target}From{source}Ingress",
                GroupId=Ref(groups[target]),
                SourceSecurityGroupId=Ref(groups[source]),
                IpProtocol="tcp",
                FromPort=port,
                ToPort=port,
                Description=description,
            )
        )
        t.add_resource(
            ec2.SecurityGroupEgress(
                f"{source}To{target}Egress",
                GroupId=Ref(groups[source]),
                DestinationSecurityGroupId=Ref(groups[target]),
                IpProtocol="tcp",
                FromPort=port,
                ToPort=port,
                Description=description,
            )
        )

    ingress_cidr("AlbHttpsIngress", "Alb", 443, "HTTPS from the internet")
    http = ingress_cidr("AlbHttpIngress", "Alb", 80, "HTTP from the internet; the listener only redirects to HTTPS")
    checkov_skip(http, ("CKV_AWS_260", "Port 80 only answers a 301 redirect to HTTPS (HttpListener)."))
    gw, ledger, session = (platform.service(n).port for n in ("gateway", "ledger", "session"))
    allow("Alb", "Gateway", gw, "ALB to gateway tasks")
    allow("Gateway", "Ledger", ledger, "Gateway to ledger through Service Connect")
    allow("Gateway", "Session", session, "Gateway to session through Service Connect")
    allow("Ledger", "Database", platform.database_port, "Ledger to Aurora PostgreSQL")
    allow("Gateway", "Redis", platform.redis_port, "Gateway to Redis (idempotency, rate limits)")
    allow("Session", "Redis", platform.redis_port, "Session to Redis (session cache)")
    # The only egress to addresses outside the VPC: TCP 443, for every service. The ledger's rule
    # also carries its webhook deliveries to tenant URLs (issue 12: egress on 443 only), through
    # the NAT gateway of its AZ. A second rule with the same protocol, port and CIDR would be a
    # duplicate EC2 refuses, so this one says so (same logical id: a description updates in
    # place). The VPC has no IPv6 CIDR, hence no ::/0 rule. The ledger's task definition sets
    # WEBHOOK_REQUIRE_HTTPS and WEBHOOK_ALLOW_PRIVATE_URLS (stacks/compute_services.py).
    https_purposes = {
        "Gateway": "HTTPS to AWS APIs (VPC endpoints, gateway endpoints, NAT)",
        "Ledger": "HTTPS to AWS APIs (VPC endpoints, gateway endpoints, NAT) and webhook delivery "
        "to tenant endpoints on the internet through NAT (issue 12)",
        "Session": "HTTPS to AWS APIs (VPC endpoints, gateway endpoints, NAT)",
    }
    for svc, description in https_purposes.items():
        t.add_resource(
            ec2.SecurityGroupEgress(
                f"{svc}HttpsEgress",
                GroupId=Ref(groups[svc]),
                IpProtocol="tcp",
                FromPort=443,
                ToPort=443,
                CidrIp="0.0.0.0/0",
                Description=description,
            )
        )
    add_export(t, SecurityExports.ALB_SG, Ref(groups["Alb"]))
    add_export(t, SecurityExports.DATABASE_SG, Ref(groups["Database"]))
    add_export(t, SecurityExports.REDIS_SG, Ref(groups["Redis"]))
    for svc in ("gateway", "ledger", "session"):
        add_export(t, SecurityExports.service_sg(svc), Ref(groups[svc.capitalize()]))


def _policy(name: str, statements: list[Statement]) -> iam_res.Policy:
    return iam_res.Policy(PolicyName=name, PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements))


def _secret_arn(pattern: str) -> Sub:
    return Sub(f"arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:{pattern}")


def _roles(
    t: Template,
    platform: PlatformConfig,
    keys: dict[str, object],
    internal_secret: object,
    registry: list[Statement],
) -> None:
    log_groups = Sub(
        f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/fintech/${{{ENV_PARAM}}}/*"
    )
    execution = t.add_resource(
        iam_res.Role(
            "ExecutionRole",
            Description="ECS task execution role: pulls the image, writes logs, reads the task secrets",
            AssumeRolePolicyDocument=role_trust("ecs-tasks.amazonaws.com"),
            Policies=[
                _policy(
                    "pull-log-read-secrets",
                    [
                        *registry,  # the service image and the collector (security_registry.py)
                        Statement(
                            Effect=Allow,
                            Action=[iam.Action("logs", "CreateLogStream"), iam.Action("logs", "PutLogEvents")],
                            Resource=[log_groups, Sub("${Groups}:*", Groups=log_groups)],
                        ),
                        Statement(
                            Effect=Allow,
                            Action=[iam.Action("secretsmanager", "GetSecretValue")],
                            # Exactly the internal token. The Aurora master secret (for the
                            # migration task) is granted by the data tier, which creates it
                            # (MasterSecretReadPolicy); the Redis token is read by the tasks.
                            Resource=[internal_secret],
                        ),
                        Statement(
                            Effect=Allow,
                            Action=[iam.Action("kms", "Decrypt")],
                            Resource=[keys["data"]],
                            Condition=Condition(
                                iam.StringEquals({"kms:ViaService": Sub("secretsmanager.${AWS::Region}.amazonaws.com")})
                            ),
                        ),
                    ],
                )
            ],
            Tags=tags(platform),
        )
    )
    add_export(t, SecurityExports.EXECUTION_ROLE_ARN, GetAtt(execution, "Arn"))
    add_export(t, SecurityExports.EXECUTION_ROLE_NAME, Ref(execution))

    telemetry = [
        # What the ADOT sidecar's awsxray exporter calls (compute_services.COLLECTOR_CONFIG); X-Ray
        # trace APIs have no resource-level permissions. Sampling is decided in the services
        # (ADR 0050), so no GetSamplingRules/GetSamplingTargets; the sidecar exports traces only
        # (EMF metrics go through stdout and the awslogs driver), so no CloudWatch Logs access.
        Statement(
            Effect=Allow,
            Action=[iam.Action("xray", "PutTraceSegments"), iam.Action("xray", "PutTelemetryRecords")],
            Resource=["*"],
        ),
    ]
    # The tables themselves, no index: the session service reads by key only (issue 13, item 9).
    tables = [
        Sub(
            f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/fintech-${{{ENV_PARAM}}}-{table}"
        )
        for table in TABLES
    ]
    dynamodb = [
        Statement(
            Effect=Allow,
            Action=[iam.Action("dynamodb", a) for a in SESSION_DYNAMODB_ACTIONS],
            Resource=tables,
        ),
        Statement(
            Effect=Allow,
            Action=[iam.Action("kms", "Decrypt"), iam.Action("kms", "GenerateDataKey")],
            Resource=[keys["data"]],
            Condition=Condition(iam.StringEquals({"kms:ViaService": Sub("dynamodb.${AWS::Region}.amazonaws.com")})),
        ),
    ]
    database = [
        # IAM database authentication as the DML-only role only (migration 0005); the cluster's
        # resource id is the data tier's, which comes later, hence the cluster-* pattern.
        Statement(
            Effect=Allow,
            Action=[iam.Action("rds-db", "connect")],
            Resource=[
                Sub(
                    "arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:dbuser:cluster-*/"
                    + platform.database_app_username
                )
            ],
        )
    ]

    def read_secrets(*secrets: object) -> list[Statement]:
        # Secrets a task reads itself while it runs (rotation without a restart, ADR 0107).
        return [
            Statement(
                Effect=Allow,
                Action=[iam.Action("secretsmanager", "GetSecretValue")],
                Resource=list(secrets),
            ),
            Statement(
                Effect=Allow,
                Action=[iam.Action("kms", "Decrypt")],
                Resource=[keys["data"]],
                Condition=Condition(
                    iam.StringEquals({"kms:ViaService": Sub("secretsmanager.${AWS::Region}.amazonaws.com")})
                ),
            ),
        ]

    # Each Redis user's password is a data tier secret (named by it; its ARN comes later), and each
    # service may read its own user's only (ADR 0110).
    def redis_secret(user: str) -> object:
        return _secret_arn(f"fintech/${{{ENV_PARAM}}}/redis-{user}-*")

    extra = {
        "gateway": read_secrets(internal_secret, redis_secret("gateway")),
        "ledger": database + read_secrets(internal_secret),
        "session": dynamodb + read_secrets(internal_secret, redis_secret("session")),
    }
    for svc in ("gateway", "ledger", "session"):
        statements = list(telemetry) + extra.get(svc, [])
        role = t.add_resource(
            iam_res.Role(
                f"{svc.capitalize()}TaskRole",
                Description=f"Task role of the {svc} service",
                AssumeRolePolicyDocument=role_trust("ecs-tasks.amazonaws.com"),
                Policies=[_policy(f"{svc}-task", statements)],
                Tags=tags(platform, Service=svc),
            )
        )
        add_export(t, SecurityExports.task_role_arn(svc), GetAtt(role, "Arn"))


def build(platform: PlatformConfig) -> Template:
    """The security tier template."""
    from troposphere import Parameter

    t = new_template(platform, "security", "KMS keys, security groups, secrets and IAM roles")
    t.add_parameter(
        Parameter(
            "ImageRepositoryName",
            Type="String",
            Default=platform.image_repository_name,
            AllowedPattern="^[a-z0-9][a-z0-9._/-]{1,255}$",
            Description="ECR repository holding the service image (created here unless CreateImageRepository "
            "is false); the execution role may pull only from it and from the collector's pull-through cache.",
        )
    )
    keys = _keys(t, platform)
    _security_groups(t, platform)
    secret = rotated_secret(
        t,
        platform,
        "InternalTokenSecret",
        description="INTERNAL_TOKEN: credential the internal service-to-service endpoints require",
        kms_key_arn=keys["data"],
        logs_key_arn=keys["logs"],
        rotation_days=90,
    )
    add_export(t, SecurityExports.INTERNAL_TOKEN_SECRET_ARN, Ref(secret))
    _roles(t, platform, keys, Ref(secret), build_registry(t, platform, keys["data"]))
    return t
