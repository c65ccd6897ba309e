"""Compute tier, migration part: the one-off task that applies the ledger's SQL migrations, and the
DSN both it and the ledger service use.

Invariants:
- This is the only task that can read the Aurora master password, and only in its one container,
  which serves nothing (no port, no ECS service). It connects as the master user, which migration
  0005 needs to create the roles. From 0005 on, the runner switches to ``ledger_migrate``
  (``SET ROLE``), so every schema object belongs to that role, and the ledger service connects as
  the DML-only ``ledger_app`` with IAM authentication.
- The secret is resolved when the task starts, and a migration task is started afresh for every
  run, so the 7-day rotation of the master password never leaves it with a stale value.
- TLS with the server verified (``sslmode=verify-full``) against the RDS CA bundle in the image.
"""

from __future__ import annotations

from troposphere import Ref, Region, Sub, Template, ecs

from stacks.common import ENV_PARAM, tags
from stacks.config import PlatformConfig
from stacks.naming import DataExports, SecurityExports, import_value

MIGRATION_CONTAINER = "ledger-migrate"


def database_url(t: Template, platform: PlatformConfig, user: str) -> Sub:
    """DSN of the ledger database as ``user``: TLS with the server verified (``verify-full``)."""
    return Sub(
        f"postgresql://{user}@${{Host}}:{platform.database_port}/{platform.database_name}"
        f"?sslmode=verify-full&sslrootcert={platform.rds_ca_bundle_path}",
        Host=import_value(t, DataExports.CLUSTER_ENDPOINT),
    )


def build_migration_task(t: Template, platform: PlatformConfig, log_group: object) -> ecs.TaskDefinition:
    """Add the task definition ``<env>-ledger-migrate`` (run it with ``aws ecs run-task``, see
    docs/runbooks.md "Apply database migrations"); it logs to the ledger's group."""
    master = import_value(t, DataExports.MASTER_SECRET_ARN)
    container = ecs.ContainerDefinition(
        Name=MIGRATION_CONTAINER,
        Image=Ref("ContainerImage"),
        Command=["python", "-m", "services.ledger.migrate"],
        Essential=True,
        ReadonlyRootFilesystem=True,
        User=platform.container_user,
        Environment=[
            ecs.Environment(Name="DATABASE_URL", Value=database_url(t, platform, platform.database_master_username)),
        ],
        # asyncpg, like libpq, takes the password from PGPASSWORD when the DSN has none.
        Secrets=[ecs.Secret(Name="PGPASSWORD", ValueFrom=Sub("${Arn}:password::", Arn=master))],
        MountPoints=[ecs.MountPoint(SourceVolume="tmp", ContainerPath="/tmp", ReadOnly=False)],
        LogConfiguration=ecs.LogConfiguration(
            LogDriver="awslogs",
            Options={"awslogs-group": log_group, "awslogs-region": Region, "awslogs-stream-prefix": "migrate"},
        ),
        StopTimeout=30,
    )
    return t.add_resource(
        ecs.TaskDefinition(
            "LedgerMigrateTaskDefinition",
            Family=Sub(f"${{{ENV_PARAM}}}-ledger-migrate"),
            RequiresCompatibilities=["FARGATE"],
            NetworkMode="awsvpc",
            Cpu="256",
            Memory="512",
            RuntimePlatform=ecs.RuntimePlatform(OperatingSystemFamily="LINUX", CpuArchitecture="X86_64"),
            # No task role: the migration calls no AWS API.
            ExecutionRoleArn=import_value(t, SecurityExports.EXECUTION_ROLE_ARN),
            ContainerDefinitions=[container],
            Volumes=[ecs.Volume(Name="tmp")],
            Tags=tags(platform, Service="ledger-migrate"),
        )
    )
