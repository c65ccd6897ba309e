"""Stack names, export names and the helpers that produce and consume cross-stack references.

Every export is named ``${AWS::StackName}-<Name>`` by the tier that owns it; every consumer imports it
as ``Fn::ImportValue(Sub("${<Tier>Stack}-<Name>"))`` where ``<Tier>Stack`` is a parameter holding the
producing stack's name. Both sides use the same :class:`ExportRef` constant below, so no tier spells
out another tier's export names (see docs/adr/0101-*).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from troposphere import Export, ImportValue, Output, Parameter, Sub, Template

TIERS: tuple[str, ...] = ("network", "security", "data", "compute", "observability", "compliance", "backup")
"""Every tier, in dependency (deploy) order."""


class Tier(StrEnum):
    NETWORK = "network"
    SECURITY = "security"
    DATA = "data"
    COMPUTE = "compute"
    OBSERVABILITY = "observability"
    COMPLIANCE = "compliance"
    BACKUP = "backup"

    @property
    def parameter(self) -> str:
        """Logical name of the parameter that carries this tier's stack name (``NetworkStack``)."""
        return f"{self.value.capitalize()}Stack"


def stack_name(environment: str, tier: str) -> str:
    """The CloudFormation stack name of ``tier`` in ``environment``: ``<env>-<tier>``."""
    return f"{environment}-{tier}"


@dataclass(frozen=True)
class ExportRef:
    """One exported output: the tier that owns it and its name (unique in that tier)."""

    tier: Tier
    name: str
    description: str

    def export_name(self, stack: str) -> str:
        """The concrete export name once the producing stack is called ``stack``."""
        return f"{stack}-{self.name}"


def add_export(template: Template, ref: ExportRef, value: object) -> None:
    """Add ``ref`` as an output of ``template`` exported as ``${AWS::StackName}-<Name>``."""
    template.add_output(
        Output(
            ref.name,
            Description=ref.description,
            Value=value,
            Export=Export(Sub(f"${{AWS::StackName}}-{ref.name}")),
        )
    )


def stack_parameter(template: Template, tier: Tier) -> str:
    """Ensure ``template`` has the ``<Tier>Stack`` parameter; return its logical name."""
    title = tier.parameter
    if title not in template.parameters:
        template.add_parameter(
            Parameter(
                title,
                Type="String",
                AllowedPattern="^[A-Za-z][A-Za-z0-9-]{0,127}$",
                Description=f"Name of the deployed {tier.value} stack whose exports this stack imports "
                f"(the deploy script passes <env>-{tier.value}).",
            )
        )
    return title


def import_value(template: Template, ref: ExportRef) -> ImportValue:
    """``Fn::ImportValue`` of ``ref``, adding the producing tier's stack parameter when missing."""
    param = stack_parameter(template, ref.tier)
    return ImportValue(Sub(f"${{{param}}}-{ref.name}"))


def _ref(tier: Tier, name: str, description: str) -> ExportRef:
    return ExportRef(tier, name, description)


class NetworkExports:
    VPC_ID = _ref(Tier.NETWORK, "VpcId", "VPC id")
    PUBLIC_SUBNETS = (
        _ref(Tier.NETWORK, "PublicSubnetAId", "Public subnet in the first AZ"),
        _ref(Tier.NETWORK, "PublicSubnetBId", "Public subnet in the second AZ"),
    )
    APP_SUBNETS = (
        _ref(Tier.NETWORK, "AppSubnetAId", "Private application subnet in the first AZ"),
        _ref(Tier.NETWORK, "AppSubnetBId", "Private application subnet in the second AZ"),
    )
    DATA_SUBNETS = (
        _ref(Tier.NETWORK, "DataSubnetAId", "Private data subnet in the first AZ"),
        _ref(Tier.NETWORK, "DataSubnetBId", "Private data subnet in the second AZ"),
    )
    NAT_GATEWAYS = (
        _ref(Tier.NETWORK, "NatGatewayAId", "NAT gateway in the first AZ"),
        _ref(Tier.NETWORK, "NatGatewayBId", "NAT gateway in the second AZ"),
    )


class SecurityExports:
    DATA_KEY_ARN = _ref(Tier.SECURITY, "DataKeyArn", "KMS key of the data stores and secrets")
    LOGS_KEY_ARN = _ref(Tier.SECURITY, "LogsKeyArn", "KMS key of the CloudWatch log groups")
    ALERTS_KEY_ARN = _ref(Tier.SECURITY, "AlertsKeyArn", "KMS key of the alarm SNS topic")
    AUDIT_KEY_ARN = _ref(Tier.SECURITY, "AuditKeyArn", "KMS key of CloudTrail and AWS Config")
    ALB_SG = _ref(Tier.SECURITY, "AlbSecurityGroupId", "Security group of the public ALB")
    DATABASE_SG = _ref(Tier.SECURITY, "DatabaseSecurityGroupId", "Security group of Aurora")
    REDIS_SG = _ref(Tier.SECURITY, "RedisSecurityGroupId", "Security group of Redis")
    EXECUTION_ROLE_ARN = _ref(Tier.SECURITY, "ExecutionRoleArn", "ECS task execution role")
    EXECUTION_ROLE_NAME = _ref(Tier.SECURITY, "ExecutionRoleName", "ECS task execution role name (for policies)")
    INTERNAL_TOKEN_SECRET_ARN = _ref(
        Tier.SECURITY, "InternalTokenSecretArn", "Secret holding the service-to-service credential"
    )

    @staticmethod
    def service_sg(service: str) -> ExportRef:
        return _ref(
            Tier.SECURITY,
            f"{service.capitalize()}SecurityGroupId",
            f"Security group of the {service} tasks",
        )

    @staticmethod
    def task_role_arn(service: str) -> ExportRef:
        return _ref(Tier.SECURITY, f"{service.capitalize()}TaskRoleArn", f"Task role of {service}")


class DataExports:
    CLUSTER_ID = _ref(Tier.DATA, "AuroraClusterId", "Aurora cluster identifier")
    CLUSTER_ENDPOINT = _ref(Tier.DATA, "AuroraEndpoint", "Aurora writer endpoint address")
    MASTER_SECRET_ARN = _ref(Tier.DATA, "AuroraMasterSecretArn", "RDS-managed secret of the Aurora master user")
    REDIS_GROUP_ID = _ref(Tier.DATA, "RedisReplicationGroupId", "Redis replication group id")
    REDIS_ENDPOINT = _ref(Tier.DATA, "RedisPrimaryEndpoint", "Redis primary endpoint address (follows failovers)")
    TABLE_PREFIX = _ref(Tier.DATA, "DynamoTablePrefix", "Prefix of the DynamoDB table names")

    @staticmethod
    def table_name(table: str) -> ExportRef:
        title = "".join(part.capitalize() for part in table.split("-"))
        return _ref(Tier.DATA, f"{title}TableName", f"Name of the {table} DynamoDB table")

    @staticmethod
    def redis_secret_arn(user: str) -> ExportRef:
        return _ref(
            Tier.DATA, f"Redis{user.capitalize()}SecretArn", f"Secret holding the password of the {user} Redis user"
        )


class ComputeExports:
    CLUSTER_NAME = _ref(Tier.COMPUTE, "EcsClusterName", "ECS cluster name")
    CLUSTER_ARN = _ref(Tier.COMPUTE, "EcsClusterArn", "ECS cluster ARN")
    ALB_FULL_NAME = _ref(Tier.COMPUTE, "AlbFullName", "ALB full name (CloudWatch dimension)")
    ALB_DNS = _ref(Tier.COMPUTE, "AlbDnsName", "ALB DNS name (point the API record here)")
    TARGET_GROUP_FULL_NAME = _ref(Tier.COMPUTE, "GatewayTargetGroupFullName", "Gateway target group full name")

    @staticmethod
    def service_name(service: str) -> ExportRef:
        return _ref(Tier.COMPUTE, f"{service.capitalize()}ServiceName", f"ECS service name of {service}")
