"""Compute tier, services half: the ECS cluster, the Service Connect namespace, one task definition,
service, log group and autoscaling policy per service."""

from __future__ import annotations

from troposphere import GetAtt, Join, Ref, Region, Sub, Template, ecs, servicediscovery
from troposphere import applicationautoscaling as aas

from stacks.common import ENV_PARAM, log_group, sizing, tags
from stacks.compute_alb import Edge
from stacks.compute_migrate import build_migration_task, database_url
from stacks.config import PlatformConfig, ServiceSpec
from stacks.naming import ComputeExports, DataExports, NetworkExports, SecurityExports, add_export, import_value
from stacks.redis_acl import KEY_PREFIX as REDIS_KEY_PREFIX
from stacks.redis_acl import USERS

REDIS_USERS = {user.name: user for user in USERS}
"""The services that use Redis, each as its own Redis user (by service name)."""

TRACE_SAMPLE_RATIO = "0.05"
"""Share of public requests traced (``OTEL_TRACES_SAMPLER_ARG``; the gateway decides, the internal
services follow). docs/performance.md measures what a ratio costs; ADR 0050 explains the choice."""

WEBHOOK_ENVIRONMENT = {"WEBHOOK_REQUIRE_HTTPS": "true", "WEBHOOK_ALLOW_PRIVATE_URLS": "false"}
"""The ledger's webhook settings in AWS (shared/settings/ledger.py; docs/webhooks.md): https only, no
private, loopback or link-local destinations, whatever the defaults are."""

INDEXED_SPAN_ATTRIBUTES = ("ledger.transfer_id", "ledger.operation", "ledger.group.size")
"""Span attributes the collector turns into X-Ray annotations, searchable in filter expressions as
``annotation.ledger_transfer_id = "..."`` (docs/runbooks.md)."""

COLLECTOR_CONFIG = f"""\
extensions:
  health_check:
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 100
    spike_limit_mib: 25
  batch:
    timeout: 1s
exporters:
  awsxray:
    indexed_attributes: [{", ".join(INDEXED_SPAN_ATTRIBUTES)}]
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [awsxray]
"""
"""The ADOT sidecar's configuration: OTLP/gRPC from the app container on the task's loopback only,
to X-Ray. Traces only: the metrics are EMF lines on stdout, extracted by CloudWatch Logs."""


def _environment(t: Template, platform: PlatformConfig, svc: ServiceSpec) -> list[ecs.Environment]:
    ports = {s.name: s.port for s in platform.services}
    values: dict[str, object] = {
        "BIND_HOST": "0.0.0.0",
        "GATEWAY_PORT": str(ports["gateway"]),
        "LEDGER_PORT": str(ports["ledger"]),
        "SESSION_PORT": str(ports["session"]),
        # Service Connect client aliases: the DNS name is the service name.
        "LEDGER_URL": f"http://ledger:{ports['ledger']}",
        "SESSION_URL": f"http://session:{ports['session']}",
        "AWS_REGION": Region,
        "DYNAMODB_TABLE_PREFIX": import_value(t, DataExports.TABLE_PREFIX),
        "RATE_LIMIT_PER_SECOND": sizing("RateLimitPerSecond"),
        "RATE_LIMIT_BURST": sizing("RateLimitBurst"),
        "SESSION_TTL_SECONDS": sizing("SessionTtlSeconds"),
        # Tracing (shared/tracing.py): OTLP/gRPC to the sidecar, X-Ray ids and header, sampled.
        "OTEL_EXPORTER_OTLP_ENDPOINT": platform.otlp_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": TRACE_SAMPLE_RATIO,
        "OTEL_SERVICE_NAME": svc.name,
        "OTEL_RESOURCE_ATTRIBUTES": Sub(f"deployment.environment=${{{ENV_PARAM}}}"),
    }
    # INTERNAL_TOKEN is still injected (it is what a task accepts before its first read); the task
    # re-reads the rotating secret while it runs (shared/internal_token.py, ADR 0107).
    values["INTERNAL_TOKEN_SECRET_ARN"] = import_value(t, SecurityExports.INTERNAL_TOKEN_SECRET_ARN)
    if svc.name in REDIS_USERS:
        # No password in the URL: each new connection authenticates as the service's own Redis user
        # with its secret's current password, re-read while the task runs, so a rotation needs no
        # restart (shared/redis_client.py, ADR 0107). The user's ACL covers keys under this prefix
        # only (stacks/redis_acl.py, ADR 0110).
        values["REDIS_URL"] = Sub(
            f"rediss://${{Host}}:{platform.redis_port}/0", Host=import_value(t, DataExports.REDIS_ENDPOINT)
        )
        values["REDIS_USERNAME"] = REDIS_USERS[svc.name].name
        values["REDIS_AUTH_SECRET_ARN"] = import_value(t, DataExports.redis_secret_arn(svc.name))
        values["REDIS_KEY_PREFIX"] = REDIS_KEY_PREFIX
    if svc.name == "ledger":
        # The DML-only role, no password anywhere: every new connection signs a 15-minute IAM token
        # (shared/credentials.py), so no rotation can leave a running task with a stale one; and
        # the server's certificate is verified against the RDS CA bundle in the image (ADR 0107).
        values["DATABASE_URL"] = database_url(t, platform, platform.database_app_username)
        values["DATABASE_IAM_AUTH"] = "true"
        # Webhooks (issue 12): only https URLs, never ones resolving to private, loopback or
        # link-local addresses. The ledger's security group lets its tasks out on 443 only
        # (stacks/security.py); these make the service refuse anything else before it connects.
        values.update(WEBHOOK_ENVIRONMENT)
    return [ecs.Environment(Name=name, Value=values[name]) for name in sorted(values)]


def _secrets(t: Template, svc: ServiceSpec) -> list[ecs.Secret]:
    internal = import_value(t, SecurityExports.INTERNAL_TOKEN_SECRET_ARN)
    secrets = [ecs.Secret(Name="INTERNAL_TOKEN", ValueFrom=Sub("${Arn}:token::", Arn=internal))]
    return secrets


def _task_definition(t: Template, platform: PlatformConfig, svc: ServiceSpec, group: object) -> ecs.TaskDefinition:
    key = svc.name.capitalize()

    def logging(prefix: str) -> ecs.LogConfiguration:
        return ecs.LogConfiguration(
            LogDriver="awslogs",
            Options={"awslogs-group": group, "awslogs-region": Region, "awslogs-stream-prefix": prefix},
        )

    app = ecs.ContainerDefinition(
        Name=svc.name,
        Image=Ref("ContainerImage"),
        Command=["python", "-m", svc.module],
        Essential=True,
        ReadonlyRootFilesystem=True,
        User=platform.container_user,
        PortMappings=[ecs.PortMapping(Name=svc.name, ContainerPort=svc.port, Protocol="tcp", AppProtocol="http")],
        Environment=_environment(t, platform, svc),
        Secrets=_secrets(t, svc),
        HealthCheck=ecs.HealthCheck(
            Command=[
                "CMD",
                "python",
                "-c",
                f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{svc.port}/health/live', timeout=3)",
            ],
            Interval=15,
            Timeout=5,
            Retries=3,
            StartPeriod=30,
        ),
        MountPoints=[ecs.MountPoint(SourceVolume="tmp", ContainerPath="/tmp", ReadOnly=False)],
        DependsOn=[ecs.ContainerDependency(ContainerName="otel-collector", Condition="START")],
        LogConfiguration=logging("app"),
        StopTimeout=30,
    )
    collector = ecs.ContainerDefinition(
        Name="otel-collector",
        # This account's registry: the pull-through cache of ECR Public (stacks/security_registry.py).
        Image=Sub("${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/${AdotImage}"),
        # The configuration travels in the task definition (no file to bake into an image).
        Command=["--config=env:AOT_CONFIG_CONTENT"],
        Environment=[ecs.Environment(Name="AOT_CONFIG_CONTENT", Value=COLLECTOR_CONFIG)],
        Essential=False,
        ReadonlyRootFilesystem=True,
        User=platform.container_user,
        HealthCheck=ecs.HealthCheck(Command=["CMD", "/healthcheck"], Interval=30, Timeout=5, Retries=3, StartPeriod=15),
        LogConfiguration=logging("otel"),
        MemoryReservation=64,
    )
    return t.add_resource(
        ecs.TaskDefinition(
            f"{key}TaskDefinition",
            Family=Sub(f"${{{ENV_PARAM}}}-{svc.name}"),
            RequiresCompatibilities=["FARGATE"],
            NetworkMode="awsvpc",
            Cpu=sizing(f"{key}Cpu"),
            Memory=sizing(f"{key}Memory"),
            RuntimePlatform=ecs.RuntimePlatform(OperatingSystemFamily="LINUX", CpuArchitecture="X86_64"),
            ExecutionRoleArn=import_value(t, SecurityExports.EXECUTION_ROLE_ARN),
            TaskRoleArn=import_value(t, SecurityExports.task_role_arn(svc.name)),
            ContainerDefinitions=[app, collector],
            Volumes=[ecs.Volume(Name="tmp")],
            Tags=tags(platform, Service=svc.name),
        )
    )


def build_services(t: Template, platform: PlatformConfig, edge: Edge, logs_key: object) -> None:
    """Add the cluster, Service Connect namespace, services and autoscaling to ``t``."""
    namespace = t.add_resource(
        servicediscovery.HttpNamespace(
            "ServiceConnectNamespace",
            Name=Sub(f"${{{ENV_PARAM}}}.fintech.internal"),
            Description="Service Connect namespace of the gateway, ledger and session services",
            Tags=tags(platform),
        )
    )
    cluster = t.add_resource(
        ecs.Cluster(
            "Cluster",
            ClusterName=Sub(f"${{{ENV_PARAM}}}-fintech"),
            ClusterSettings=[ecs.ClusterSetting(Name="containerInsights", Value="enhanced")],
            ServiceConnectDefaults=ecs.ServiceConnectDefaults(Namespace=GetAtt(namespace, "Arn")),
            Tags=tags(platform),
        )
    )
    add_export(t, ComputeExports.CLUSTER_NAME, Ref(cluster))
    add_export(t, ComputeExports.CLUSTER_ARN, GetAtt(cluster, "Arn"))
    app_subnets = [import_value(t, ref) for ref in NetworkExports.APP_SUBNETS]
    internal: list[str] = []
    ordered = sorted(platform.services, key=lambda s: s.public)  # internal services first
    for svc in ordered:
        key = svc.name.capitalize()
        group = log_group(t, f"{key}LogGroup", Sub(f"/fintech/${{{ENV_PARAM}}}/{svc.name}"), logs_key, platform)
        task = _task_definition(t, platform, svc, Ref(group))
        connect = ecs.ServiceConnectConfiguration(
            Enabled=True,
            Namespace=GetAtt(namespace, "Arn"),
            LogConfiguration=ecs.LogConfiguration(
                LogDriver="awslogs",
                Options={"awslogs-group": Ref(group), "awslogs-region": Region, "awslogs-stream-prefix": "connect"},
            ),
        )
        if not svc.public:
            connect.Services = [
                ecs.ServiceConnectService(
                    PortName=svc.name,
                    DiscoveryName=svc.name,
                    ClientAliases=[ecs.ServiceConnectClientAlias(DnsName=svc.name, Port=svc.port)],
                )
            ]
        props: dict[str, object] = dict(
            ServiceName=svc.name,
            Cluster=Ref(cluster),
            TaskDefinition=Ref(task),
            LaunchType="FARGATE",
            PlatformVersion="LATEST",
            DesiredCount=sizing(f"{key}DesiredCount"),
            DeploymentConfiguration=ecs.DeploymentConfiguration(
                DeploymentCircuitBreaker=ecs.DeploymentCircuitBreaker(Enable=True, Rollback=True),
                MinimumHealthyPercent=100,
                MaximumPercent=200,
            ),
            HealthCheckGracePeriodSeconds=60,
            NetworkConfiguration=ecs.NetworkConfiguration(
                AwsvpcConfiguration=ecs.AwsvpcConfiguration(
                    AssignPublicIp="DISABLED",
                    Subnets=app_subnets,
                    SecurityGroups=[import_value(t, SecurityExports.service_sg(svc.name))],
                )
            ),
            ServiceConnectConfiguration=connect,
            EnableECSManagedTags=True,
            PropagateTags="SERVICE",
            EnableExecuteCommand=False,
            Tags=tags(platform, Service=svc.name),
        )
        depends = list(internal)
        if svc.public:
            props["LoadBalancers"] = [
                ecs.LoadBalancer(ContainerName=svc.name, ContainerPort=svc.port, TargetGroupArn=Ref(edge.target_group))
            ]
            depends.append(edge.listener_rule.title)
        service = ecs.Service(f"{key}Service", **props)
        if depends:
            service.DependsOn = depends
        t.add_resource(service)
        internal.append(service.title)
        add_export(t, ComputeExports.service_name(svc.name), GetAtt(service, "Name"))
        if svc.name == "ledger":
            build_migration_task(t, platform, Ref(group))
        target = t.add_resource(
            aas.ScalableTarget(
                f"{key}ScalableTarget",
                ServiceNamespace="ecs",
                ScalableDimension="ecs:service:DesiredCount",
                ResourceId=Join("/", ["service", Ref(cluster), GetAtt(service, "Name")]),
                MinCapacity=sizing(f"{key}MinTasks"),
                MaxCapacity=sizing(f"{key}MaxTasks"),
            )
        )
        t.add_resource(
            aas.ScalingPolicy(
                f"{key}CpuScalingPolicy",
                PolicyName=Sub(f"${{{ENV_PARAM}}}-{svc.name}-cpu"),
                PolicyType="TargetTrackingScaling",
                ScalingTargetId=Ref(target),
                TargetTrackingScalingPolicyConfiguration=aas.TargetTrackingScalingPolicyConfiguration(
                    PredefinedMetricSpecification=aas.PredefinedMetricSpecification(
                        PredefinedMetricType="ECSServiceAverageCPUUtilization"
                    ),
                    TargetValue=float(platform.cpu_target_percent),
                    ScaleInCooldown=120,
                    ScaleOutCooldown=60,
                ),
            )
        )
