"""Data tier: Aurora PostgreSQL (two instances over two AZs), the DynamoDB tables of the session
service and the ElastiCache Redis replication group with one RBAC user per service (``stacks.data_redis``).

Invariants: every resource with a fixed name can be created again after a failed first create
(``RetainExceptOnCreate`` or ``Snapshot``, ADR 0104); the DynamoDB tables, deletion-protected, are
created after everything else so that no rollback of the first create has to delete one."""

from __future__ import annotations

from awacs import aws as iam
from awacs.aws import Allow, PolicyDocument, Statement
from troposphere import GetAtt, GetAZs, Ref, Select, Sub, Template, dynamodb, rds
from troposphere import iam as iam_res

from stacks.common import ENV_PARAM, RETAIN_EXCEPT_ON_CREATE, log_group, new_template, role_trust, sizing, tags
from stacks.config import PlatformConfig
from stacks.data_redis import redis, rotation_schedules
from stacks.naming import DataExports, NetworkExports, SecurityExports, add_export, import_value
from stacks.security import TABLES, table_prefix

TABLE_KEYS = {"tenants": "tenant_id", "api-keys": "key_id", "sessions": "token_hash"}
"""Partition key (a string) of each DynamoDB table."""
SESSION_TTL_ATTRIBUTE = "expires_at_epoch"
TABLES_AFTER = ("DatabaseInstanceA", "DatabaseInstanceB", "RedisReplicationGroup", *rotation_schedules())
"""What the DynamoDB tables wait for: every resource of this tier whose creation can fail late."""


def _aurora(t: Template, platform: PlatformConfig) -> None:
    data_key = import_value(t, SecurityExports.DATA_KEY_ARN)
    logs_key = import_value(t, SecurityExports.LOGS_KEY_ARN)
    cluster_id = Sub(f"${{{ENV_PARAM}}}-ledger")
    subnets = t.add_resource(
        rds.DBSubnetGroup(
            "DatabaseSubnetGroup",
            DBSubnetGroupDescription="Private data subnets of both AZs",
            SubnetIds=[import_value(t, ref) for ref in NetworkExports.DATA_SUBNETS],
            Tags=tags(platform),
        )
    )
    params = t.add_resource(
        rds.DBClusterParameterGroup(
            "DatabaseClusterParameters",
            Description="Ledger Aurora PostgreSQL: TLS only, statement logging of slow queries",
            Family="aurora-postgresql16",
            Parameters={
                "rds.force_ssl": "1",
                "log_min_duration_statement": "500",
                "log_connections": "1",
                "log_disconnections": "1",
            },
            Tags=tags(platform),
        )
    )
    # RDS creates /aws/rds/cluster/<id>/postgresql on first export; creating it here first gives it
    # our KMS key and retention.
    logs = log_group(
        t,
        "DatabaseLogGroup",
        Sub(f"/aws/rds/cluster/${{{ENV_PARAM}}}-ledger/postgresql"),
        logs_key,
        platform,
    )
    cluster = t.add_resource(
        rds.DBCluster(
            "DatabaseCluster",
            DependsOn=[logs.title],
            DBClusterIdentifier=cluster_id,
            Engine="aurora-postgresql",
            EngineVersion=platform.aurora_engine_version,
            DatabaseName=platform.database_name,
            Port=platform.database_port,
            MasterUsername=platform.database_master_username,
            ManageMasterUserPassword=True,
            MasterUserSecret=rds.MasterUserSecret(KmsKeyId=data_key),
            StorageEncrypted=True,
            KmsKeyId=data_key,
            DeletionProtection=True,
            BackupRetentionPeriod=sizing("AuroraBackupRetentionDays"),
            PreferredBackupWindow="02:00-03:00",
            PreferredMaintenanceWindow="sun:04:00-sun:05:00",
            CopyTagsToSnapshot=True,
            EnableIAMDatabaseAuthentication=True,
            EnableCloudwatchLogsExports=["postgresql"],
            DBClusterParameterGroupName=Ref(params),
            DBSubnetGroupName=Ref(subnets),
            VpcSecurityGroupIds=[import_value(t, SecurityExports.DATABASE_SG)],
            Tags=tags(platform),
            DeletionPolicy="Snapshot",
            UpdateReplacePolicy="Snapshot",
        )
    )
    monitoring = t.add_resource(
        iam_res.Role(
            "DatabaseMonitoringRole",
            Description="Lets RDS enhanced monitoring publish OS metrics",
            AssumeRolePolicyDocument=role_trust("monitoring.rds.amazonaws.com"),
            ManagedPolicyArns=[
                Sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole")
            ],
            Tags=tags(platform),
        )
    )
    for index, suffix in enumerate(("A", "B")):
        t.add_resource(
            rds.DBInstance(
                f"DatabaseInstance{suffix}",
                DBClusterIdentifier=Ref(cluster),
                DBInstanceClass=sizing("AuroraInstanceClass"),
                Engine="aurora-postgresql",
                AvailabilityZone=Select(index, GetAZs("")),
                DBSubnetGroupName=Ref(subnets),
                PubliclyAccessible=False,
                AutoMinorVersionUpgrade=True,
                EnablePerformanceInsights=True,
                PerformanceInsightsKMSKeyId=data_key,
                PerformanceInsightsRetentionPeriod=sizing("PerformanceInsightsRetentionDays"),
                MonitoringInterval=platform.aurora_monitoring_interval_seconds,
                MonitoringRoleArn=GetAtt(monitoring, "Arn"),
                Tags=tags(platform),
                # The data lives in the cluster (Snapshot policy); an instance is compute only.
                DeletionPolicy="Delete",
                UpdateReplacePolicy="Delete",
            )
        )
    # The execution role may read this exact secret (for the one-off migration task's PGPASSWORD);
    # granted here because this tier creates the secret and the security tier cannot name it.
    t.add_resource(
        iam_res.PolicyType(
            "MasterSecretReadPolicy",
            PolicyName="read-aurora-master-secret",
            Roles=[import_value(t, SecurityExports.EXECUTION_ROLE_NAME)],
            PolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    Statement(
                        Effect=Allow,
                        Action=[iam.Action("secretsmanager", "GetSecretValue")],
                        Resource=[GetAtt(cluster, "MasterUserSecret.SecretArn")],
                    )
                ],
            ),
        )
    )
    add_export(t, DataExports.CLUSTER_ID, Ref(cluster))
    add_export(t, DataExports.CLUSTER_ENDPOINT, GetAtt(cluster, "Endpoint.Address"))
    add_export(t, DataExports.MASTER_SECRET_ARN, GetAtt(cluster, "MasterUserSecret.SecretArn"))


def _tables(t: Template, platform: PlatformConfig) -> None:
    data_key = import_value(t, SecurityExports.DATA_KEY_ARN)
    for table in TABLES:
        key = TABLE_KEYS[table]
        title = "".join(part.capitalize() for part in table.split("-")) + "Table"
        props: dict[str, object] = dict(
            TableName=Sub(f"fintech-${{{ENV_PARAM}}}-{table}"),
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[dynamodb.AttributeDefinition(AttributeName=key, AttributeType="S")],
            KeySchema=[dynamodb.KeySchema(AttributeName=key, KeyType="HASH")],
            PointInTimeRecoverySpecification=dynamodb.PointInTimeRecoverySpecification(PointInTimeRecoveryEnabled=True),
            SSESpecification=dynamodb.SSESpecification(SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=data_key),
            DeletionProtectionEnabled=True,
            Tags=tags(platform, Table=table),
        )
        if table == "sessions":
            props["TimeToLiveSpecification"] = dynamodb.TimeToLiveSpecification(
                AttributeName=SESSION_TTL_ATTRIBUTE, Enabled=True
            )
        resource = t.add_resource(
            dynamodb.Table(
                title,
                # Created last (TABLES_AFTER): with deletion protection on, a rollback of the first
                # create could not delete a table, so nothing that can still fail may come after one.
                DependsOn=list(TABLES_AFTER),
                DeletionPolicy=RETAIN_EXCEPT_ON_CREATE,
                UpdateReplacePolicy="Retain",
                **props,
            )
        )
        add_export(t, DataExports.table_name(table), Ref(resource))
    add_export(t, DataExports.TABLE_PREFIX, table_prefix())


def build(platform: PlatformConfig) -> Template:
    """The data tier template."""
    t = new_template(platform, "data", "Aurora PostgreSQL, DynamoDB tables and Redis")
    _aurora(t, platform)
    _tables(t, platform)
    redis(t, platform)
    return t
