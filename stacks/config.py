"""Typed configuration of the platform's infrastructure.

One :class:`EnvironmentConfig` per environment (``dev``, ``prod``) holds every number that differs
between environments (instance classes, task counts, retention days). The templates are built once
for all environments: each tier carries the sizing of every environment in a CloudFormation
``Mappings`` section and picks its row with the ``EnvironmentName`` parameter, so the artifact that
was reviewed and tested is the one that is deployed everywhere (see docs/adr/0100-*).

Values that must not differ between environments (ports, CIDRs, service names) live in
:class:`PlatformConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.metrics import NAMESPACE

INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "secretsmanager", "kms", "sts", "xray")
"""Every interface VPC endpoint the network tier can create (infrastructure.md's list)."""

NETWORK_SHAPE = {"mapping": False}
"""Field metadata: shapes the network tier's resources (through CloudFormation conditions on
``EnvironmentName``), so it is not a row of the ``EnvironmentSizing`` mapping."""

VERIFIER_FIRST_REPORT_MINUTES = 6
"""Minutes until a freshly started ledger task first reports ``VerifierDiscrepancies``: it sleeps
``VERIFIER_INTERVAL_SECONDS`` (default 300 s) before its first run, then the metrics flush every 60 s."""


@dataclass(frozen=True)
class ServiceSizing:
    """Fargate sizing and scaling of one service in one environment."""

    cpu: int
    """Task CPU units (256 = 0.25 vCPU); a valid Fargate CPU value."""

    memory: int
    """Task memory in MiB; must be a valid Fargate pairing with ``cpu``."""

    desired_count: int
    """Tasks the ECS service starts with (autoscaling moves it between min and max)."""

    min_tasks: int
    """Autoscaling floor; at least 2 so one task per AZ survives an AZ loss."""

    max_tasks: int
    """Autoscaling ceiling."""


@dataclass(frozen=True)
class EnvironmentConfig:
    """Everything that differs between two environments of the platform."""

    name: str
    """Environment name: the ``--env`` of the deploy script and the prefix of every stack name."""

    aurora_instance_class: str
    """DB instance class of each of the two Aurora PostgreSQL instances."""

    aurora_backup_retention_days: int
    """Days of Aurora automated backups (and of point-in-time recovery); at least 7."""

    performance_insights_retention_days: int
    """Days Performance Insights keeps its data (7 is the free tier; 731 the maximum)."""

    aurora_connections_alarm: int
    """``AuroraConnectionsAlarm`` threshold: about 80% of the instance class's default max_connections
    (Aurora PostgreSQL: memory / 9,531,392 bytes; 4 GiB ~ 450, 16 GiB ~ 1,800)."""

    redis_node_type: str
    """ElastiCache node type of every Redis node."""

    redis_replicas: int
    """Read replicas next to the Redis primary; at least 1 for Multi-AZ automatic failover."""

    redis_snapshot_retention_days: int
    """Days ElastiCache keeps the daily Redis snapshots."""

    log_retention_days: int
    """Retention of every CloudWatch log group (a value CloudWatch Logs accepts)."""

    audit_retention_days: int
    """Days CloudTrail and AWS Config objects stay in their buckets before expiring."""

    alb_log_retention_days: int
    """Days ALB access logs stay in their bucket before expiring."""

    audit_object_lock_days: int
    """Days S3 Object Lock (compliance mode) keeps each CloudTrail object immutable, even for the
    account root; at most ``audit_retention_days``."""

    backup_daily_retention_days: int
    """Days AWS Backup keeps the daily recovery points of Aurora and DynamoDB (and their cross-region
    copies); also the vault lock's minimum retention."""

    backup_monthly_retention_days: int
    """Days AWS Backup keeps the monthly recovery points; also the vault lock's maximum retention."""

    waf_rate_limit_per_5_minutes: int
    """Requests one client IP may send in any 5 minutes before the WAF rate rule blocks it."""

    rate_limit_per_second: int
    """RATE_LIMIT_PER_SECOND given to the gateway: sustained requests per tenant per second."""

    rate_limit_burst: int
    """RATE_LIMIT_BURST given to the gateway: requests a tenant may send at once."""

    session_ttl_seconds: int
    """SESSION_TTL_SECONDS: lifetime of a session token."""

    server_error_rate_percent: float
    """Application alarm ``<Service>ServerErrorRateAlarm``: 5xx responses (EMF ``ServerErrors``) as a
    percentage of requests (EMF ``Requests``) above which 3 of 5 minutes put a service in ALARM."""

    server_error_min_requests_per_minute: int
    """Minutes in which a service served fewer requests than this never breach the 5xx-rate alarm: one
    5xx among three requests is noise, and a service that serves nothing is caught by the health,
    ALB and ECS alarms instead."""

    ledger_latency_p99_ms: int
    """Application alarm ``LedgerLatencyP99Alarm``: ledger p99 request latency (EMF ``Latency``, ms)
    above which 5 consecutive minutes put it in ALARM. Below the ALB's 1 s p99 alarm, so a slow ledger
    (or a slow Aurora behind it) is named before the whole API is slow."""

    verifier_silence_minutes: int
    """Application alarm ``LedgerVerifierSilentAlarm``: minutes without a single ``VerifierDiscrepancies``
    data point before it fires. Must exceed the first report of a freshly started ledger task
    (``VERIFIER_INTERVAL_SECONDS`` 300 s + one metrics interval 60 s) plus a rolling deployment, so a
    routine release does not page."""

    gateway: ServiceSizing
    """Sizing of the public gateway service."""

    ledger: ServiceSizing
    """Sizing of the internal ledger service."""

    session: ServiceSizing
    """Sizing of the internal session service."""

    nat_gateways: int = field(default=2, metadata=NETWORK_SHAPE)
    """NAT gateways for the private-app subnets: 2, one per AZ, each AZ's route table to its own
    (infrastructure.md; the default of every environment), or 1, in the first AZ, for both route
    tables. One saves a NAT gateway's hourly charge, but the second AZ's tasks then reach the
    internet across AZs and lose it with the first AZ (docs/ha_backup.md). For dev only."""

    interface_endpoints: tuple[str, ...] = field(default=INTERFACE_ENDPOINTS, metadata=NETWORK_SHAPE)
    """Interface VPC endpoints created (a subset of :data:`INTERFACE_ENDPOINTS`; default all). AWS
    API calls to a service without one go out through the NAT gateway instead: they still work,
    over TLS, but pay NAT data processing and leave the VPC. For dev only."""

    def __post_init__(self) -> None:
        if self.nat_gateways not in (1, 2):
            raise ValueError(f"{self.name}: nat_gateways must be 1 or 2 (one per AZ)")
        unknown = set(self.interface_endpoints) - set(INTERFACE_ENDPOINTS)
        if unknown or len(set(self.interface_endpoints)) != len(self.interface_endpoints):
            raise ValueError(f"{self.name}: interface_endpoints must be distinct names of {INTERFACE_ENDPOINTS}")
        if self.name == "prod" and (
            self.nat_gateways != 2 or set(self.interface_endpoints) != set(INTERFACE_ENDPOINTS)
        ):
            # Production keeps infrastructure.md's network: an AZ loss must not take egress away.
            raise ValueError("prod keeps one NAT gateway per AZ and every interface endpoint")
        if not 0 < self.server_error_rate_percent <= 100:
            raise ValueError(f"{self.name}: server_error_rate_percent must be in (0, 100]")
        if self.server_error_min_requests_per_minute < 1 or self.ledger_latency_p99_ms < 1:
            raise ValueError(f"{self.name}: alarm thresholds must be positive")
        if not self.audit_object_lock_days <= self.audit_retention_days:
            raise ValueError(f"{self.name}: audit_object_lock_days must not exceed audit_retention_days")
        if not 7 <= self.backup_daily_retention_days <= self.backup_monthly_retention_days:
            # 7: the vault lock's minimum retention must be at least 1 day, and a week of dailies is the floor.
            raise ValueError(f"{self.name}: need 7 <= backup_daily_retention_days <= backup_monthly_retention_days")
        if not VERIFIER_FIRST_REPORT_MINUTES < self.verifier_silence_minutes <= 1440:
            # 1440: an alarm evaluates at most one day of one-minute periods.
            raise ValueError(
                f"{self.name}: verifier_silence_minutes must exceed {VERIFIER_FIRST_REPORT_MINUTES} "
                "(a fresh ledger task's first verifier report) and be at most 1440"
            )

    def service(self, name: str) -> ServiceSizing:
        """The sizing of service ``name`` (``gateway``, ``ledger`` or ``session``)."""
        sizing = getattr(self, name)
        if not isinstance(sizing, ServiceSizing):
            raise KeyError(name)
        return sizing


@dataclass(frozen=True)
class ServiceSpec:
    """Facts about one service that hold in every environment."""

    name: str
    """Service name: ECS service, task family suffix, Service Connect DNS name."""

    port: int
    """Container port the service listens on."""

    public: bool
    """True for the one service the ALB forwards to."""

    module: str
    """Python module the container runs (``python -m <module>``)."""


@dataclass(frozen=True)
class PlatformConfig:
    """The whole platform: environment-independent facts plus one sizing row per environment."""

    environments: tuple[EnvironmentConfig, ...]
    """Every environment the templates can be deployed as (the ``EnvironmentName`` allowed values)."""

    services: tuple[ServiceSpec, ...] = (
        ServiceSpec("gateway", 8000, True, "services.gateway"),
        ServiceSpec("ledger", 8001, False, "services.ledger"),
        ServiceSpec("session", 8002, False, "services.session"),
    )
    """The three services, all run from the same image."""

    vpc_cidr: str = "10.40.0.0/16"
    """CIDR of the VPC."""

    public_subnet_cidrs: tuple[str, str] = ("10.40.0.0/24", "10.40.1.0/24")
    """Public subnets (ALB, NAT gateways), one per AZ."""

    app_subnet_cidrs: tuple[str, str] = ("10.40.16.0/20", "10.40.32.0/20")
    """Private application subnets (Fargate tasks, interface endpoints), one per AZ."""

    data_subnet_cidrs: tuple[str, str] = ("10.40.64.0/24", "10.40.65.0/24")
    """Private data subnets (Aurora, Redis), one per AZ, with no route to the internet."""

    database_name: str = "ledger"
    """Name of the ledger database created in Aurora."""

    database_master_username: str = "ledger_admin"
    """Aurora master user name; its password is managed by RDS in Secrets Manager."""

    database_port: int = 5432
    """PostgreSQL port."""

    database_app_username: str = "ledger_app"
    """The DML-only role the ledger service connects as, with IAM database authentication (created
    by migration 0005; ``services.ledger.migrate.APP_ROLE``). Only the one-off migration task uses
    the master user."""

    rds_ca_bundle_path: str = "/etc/ssl/certs/rds-global-bundle.pem"
    """Where the image holds the RDS CA bundle (Dockerfile); ``sslrootcert`` of ``sslmode=verify-full``."""

    redis_port: int = 6379
    """Redis port."""

    aurora_engine_version: str = "16.9"
    """Aurora PostgreSQL engine version."""

    aurora_monitoring_interval_seconds: int = 30
    """Enhanced monitoring granularity of the Aurora instances (1, 5, 10, 15, 30 or 60). The same in
    every environment: it is cheap, and a literal lets static checks see it is enabled."""

    redis_engine_version: str = "7.1"
    """Redis engine version."""

    cpu_target_percent: int = 70
    """Target of the CPU target-tracking scaling policy of every service."""

    image_repository_name: str = "fintech-ledger"
    """Default ECR repository the task execution role may pull from."""

    adot_image: str = "ecr-public/aws-observability/aws-otel-collector:v0.43.1"
    """Default image of the AWS Distro for OpenTelemetry sidecar, as a path in this account's registry:
    the ECR Public pull-through cache (``stacks.security_registry``), never a public registry."""

    otlp_endpoint: str = "http://127.0.0.1:4317"
    """OTEL_EXPORTER_OTLP_ENDPOINT of the application containers (the ADOT sidecar)."""

    container_user: str = "10001:10001"
    """Non-root uid:gid every container runs as (the Dockerfile creates this user)."""

    metrics_namespace: str = NAMESPACE
    """CloudWatch namespace of the application (EMF) metrics: ``shared.metrics.NAMESPACE``."""

    dashboard_name: str = "FinTech-Operations"
    """Name of the operations dashboard."""

    tags: tuple[tuple[str, str], ...] = field(
        default=(("Application", "fintech-ledger"), ("ManagedBy", "cloudformation"))
    )
    """Tags on every taggable resource (plus ``Environment``)."""

    def environment(self, name: str) -> EnvironmentConfig:
        """The environment called ``name``; KeyError when there is none."""
        for env in self.environments:
            if env.name == name:
                return env
        raise KeyError(f"unknown environment {name!r}; known: {', '.join(self.environment_names())}")

    def environment_names(self) -> list[str]:
        """Names of every environment, in declaration order."""
        return [env.name for env in self.environments]

    def service(self, name: str) -> ServiceSpec:
        """The service called ``name``."""
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)


DEV = EnvironmentConfig(
    name="dev",
    aurora_instance_class="db.t4g.medium",
    aurora_connections_alarm=350,
    aurora_backup_retention_days=7,
    performance_insights_retention_days=7,
    redis_node_type="cache.t4g.small",
    redis_replicas=1,
    redis_snapshot_retention_days=7,
    log_retention_days=365,
    audit_retention_days=400,
    alb_log_retention_days=90,
    audit_object_lock_days=30,
    backup_daily_retention_days=14,
    backup_monthly_retention_days=35,
    waf_rate_limit_per_5_minutes=2000,
    rate_limit_per_second=100,
    rate_limit_burst=200,
    session_ttl_seconds=900,
    server_error_rate_percent=5.0,
    server_error_min_requests_per_minute=20,
    ledger_latency_p99_ms=800,
    verifier_silence_minutes=15,
    gateway=ServiceSizing(cpu=512, memory=1024, desired_count=2, min_tasks=2, max_tasks=4),
    ledger=ServiceSizing(cpu=512, memory=1024, desired_count=2, min_tasks=2, max_tasks=4),
    session=ServiceSizing(cpu=256, memory=512, desired_count=2, min_tasks=2, max_tasks=4),
)
"""A small but complete environment: same topology as prod (2 AZs, 2 of everything), small sizes."""

PROD = EnvironmentConfig(
    name="prod",
    aurora_instance_class="db.r7g.large",
    aurora_connections_alarm=1400,
    aurora_backup_retention_days=35,
    performance_insights_retention_days=31,
    redis_node_type="cache.r7g.large",
    redis_replicas=2,
    redis_snapshot_retention_days=14,
    log_retention_days=731,
    audit_retention_days=2557,
    alb_log_retention_days=365,
    audit_object_lock_days=2557,
    backup_daily_retention_days=35,
    backup_monthly_retention_days=400,
    waf_rate_limit_per_5_minutes=20000,
    rate_limit_per_second=1000,
    rate_limit_burst=2000,
    session_ttl_seconds=900,
    server_error_rate_percent=1.0,
    server_error_min_requests_per_minute=60,
    ledger_latency_p99_ms=500,
    verifier_silence_minutes=15,
    gateway=ServiceSizing(cpu=1024, memory=2048, desired_count=3, min_tasks=3, max_tasks=12),
    # One vCPU per ledger task: a ledger process (WORKERS=1, one group commit) uses one core at most,
    # so a 2-vCPU task peaked at 50% CPU and never reached the 70% scale-out target. Smaller tasks,
    # more of them (docs/capacity.md).
    ledger=ServiceSizing(cpu=1024, memory=2048, desired_count=3, min_tasks=3, max_tasks=24),
    session=ServiceSizing(cpu=512, memory=1024, desired_count=3, min_tasks=3, max_tasks=8),
)
"""Production sizing."""

PLATFORM = PlatformConfig(environments=(DEV, PROD))
"""The configuration ``./scripts/synth`` and ``./scripts/deploy`` use."""
