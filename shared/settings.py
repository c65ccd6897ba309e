"""The one settings loader.

Every process reads its configuration here, once, from environment variables with local defaults
(docs/api.md section 1). In ``shared/`` and ``services/`` only these modules read ``os.environ``
too, for variables that are not in :class:`Settings` (tests/test_docs.py keeps this list exact):

- ``shared/serve.py``: ``SERVER``, which ASGI server runs the app (uvicorn or granian);
- ``shared/metrics.py``: ``METRICS_INTERVAL_SECONDS``, how often metrics are written out;
- ``shared/credentials.py``, ``shared/internal_token.py``: how credentials are delivered
  (``DATABASE_IAM_AUTH``, ``INTERNAL_TOKEN_SECRET_ARN``, ``INTERNAL_TOKEN_REFRESH_SECONDS``, a
  token's ``<NAME>_PREVIOUS``), next to the code that fetches and rotates them (ADR 0103, 0107).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be a number, got {raw!r}") from exc


def _env_str(name: str, default: str) -> str:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else raw


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


LOCAL_DYNAMODB_ENDPOINT = "http://127.0.0.1:8004"

LOCAL_INTERNAL_TOKEN = "local-internal-token-change-me"
"""The development default of ``INTERNAL_TOKEN``; :mod:`shared.serve` refuses it in AWS."""


def _dynamodb_endpoint() -> str | None:
    raw = os.environ.get("DYNAMODB_ENDPOINT_URL")
    if raw is not None:
        return raw or None  # set but empty: the regional AWS endpoint
    return None if os.environ.get("AWS_EXECUTION_ENV") else LOCAL_DYNAMODB_ENDPOINT


@dataclass(frozen=True, slots=True)
class Settings:
    """Configuration shared by the three services and the command-line tools."""

    gateway_port: int = field(default_factory=lambda: _env_int("GATEWAY_PORT", 8000))
    """TCP port of the public gateway (the only port the ALB reaches)."""

    ledger_port: int = field(default_factory=lambda: _env_int("LEDGER_PORT", 8001))
    """TCP port of the ledger service's internal API."""

    session_port: int = field(default_factory=lambda: _env_int("SESSION_PORT", 8002))
    """TCP port of the session service's internal API."""

    bind_host: str = field(default_factory=lambda: _env_str("BIND_HOST", "127.0.0.1"))
    """Address the services listen on. ``0.0.0.0`` in containers, loopback locally."""

    ledger_url: str = field(default_factory=lambda: _env_str("LEDGER_URL", ""))
    """Base URL the gateway uses for the ledger; empty means ``http://127.0.0.1:$LEDGER_PORT``."""

    session_url: str = field(default_factory=lambda: _env_str("SESSION_URL", ""))
    """Base URL the gateway uses for the session service; empty means loopback and SESSION_PORT."""

    database_url: str = field(
        default_factory=lambda: _env_str("DATABASE_URL", "postgresql://root@127.0.0.1:5432/ledger")
    )
    """PostgreSQL DSN of the ledger database. The database is created by the migration runner."""

    database_pool_size: int = field(default_factory=lambda: _env_int("DATABASE_POOL_SIZE", 8))
    """Connections each ledger process keeps open. Group commit needs few; more only adds contention."""

    redis_url: str = field(default_factory=lambda: _env_str("REDIS_URL", "redis://127.0.0.1:6379/0"))
    """Redis URL for the session cache, idempotency records and rate limits."""

    redis_auth_secret_arn: str = field(default_factory=lambda: _env_str("REDIS_AUTH_SECRET_ARN", ""))
    """Secrets Manager secret whose ``token`` key is the Redis AUTH token (AWS). Set, every new Redis
    connection authenticates with the secret's current token, re-read while the process runs
    (``shared.credentials``), and ``REDIS_URL`` carries no password. Empty: the URL's own (local)."""

    redis_username: str = field(default_factory=lambda: _env_str("REDIS_USERNAME", ""))
    """Redis user this process authenticates as (``AUTH <user> <password>``, ElastiCache RBAC; ADR
    0110), its password being the secret's token or the URL's. Empty: the URL's user, or ``default``."""

    redis_key_prefix: str = field(default_factory=lambda: _env_str("REDIS_KEY_PREFIX", "fl:"))
    """Prefix of every Redis key, so test runs and environments sharing a Redis never meet."""

    dynamodb_endpoint_url: str | None = field(default_factory=lambda: _dynamodb_endpoint())
    """DynamoDB endpoint (dynalite or moto locally; ``./scripts/run`` starts one at the local default
    ``http://127.0.0.1:8004``). In AWS (``AWS_EXECUTION_ENV`` set by ECS) it defaults to none: the
    regional endpoint is used."""

    dynamodb_table_prefix: str = field(default_factory=lambda: _env_str("DYNAMODB_TABLE_PREFIX", "fintech-"))
    """Prefix of the DynamoDB table names (``<prefix>tenants``, ``<prefix>api-keys``, ``<prefix>sessions``)."""

    aws_region: str = field(default_factory=lambda: _env_str("AWS_REGION", "eu-west-1"))
    """AWS region of the DynamoDB tables."""

    internal_token: str = field(default_factory=lambda: _env_str("INTERNAL_TOKEN", LOCAL_INTERNAL_TOKEN))
    """Shared credential the internal endpoints require (header ``X-Internal-Token``).
    In AWS it comes from Secrets Manager; the local default is for development only."""

    rate_limit_per_second: float = field(default_factory=lambda: _env_float("RATE_LIMIT_PER_SECOND", 1000.0))
    """Sustained requests per second each tenant may make through the gateway."""

    rate_limit_burst: int = field(default_factory=lambda: _env_int("RATE_LIMIT_BURST", 2000))
    """Requests a tenant may make at once above the sustained rate."""

    session_ttl_seconds: int = field(default_factory=lambda: _env_int("SESSION_TTL_SECONDS", 900))
    """Lifetime of a session token from login."""

    idempotency_ttl_seconds: int = field(default_factory=lambda: _env_int("IDEMPOTENCY_TTL_SECONDS", 86_400))
    """How long the gateway keeps a response for an Idempotency-Key (24 hours by contract)."""

    idempotency_max_kept_bytes: int = field(default_factory=lambda: _env_int("IDEMPOTENCY_MAX_KEPT_BYTES", 1024 * 1024))
    """Largest response kept for an Idempotency-Key, as stored (compressed when shorter). A larger
    one is not kept: a retry with the key runs again (safe: only batches get that large, and their
    items carry their own transfer ids)."""

    idempotency_max_keys_per_tenant: int = field(
        default_factory=lambda: _env_int("IDEMPOTENCY_MAX_KEYS_PER_TENANT", 1_000_000)
    )
    """Idempotency-Keys one tenant may hold at once (in flight or kept); a new key past it is 429
    until the oldest expires. Bounds one tenant's share of the Redis that also holds sessions."""

    upstream_timeout_seconds: float = field(default_factory=lambda: _env_float("UPSTREAM_TIMEOUT_SECONDS", 10.0))
    """Total timeout of one service-to-service call."""

    group_commit_max_items: int = field(default_factory=lambda: _env_int("GROUP_COMMIT_MAX_ITEMS", 512))
    """Most transfer operations the ledger commits in one database transaction."""

    group_commit_max_inflight: int = field(default_factory=lambda: _env_int("GROUP_COMMIT_MAX_INFLIGHT", 1))
    """Group transactions one ledger process runs at once, over disjoint sets of accounts: groups
    that share an account (a hot one) run one after another (ADR 0007). 1 measured best on 2 cores
    even for uniform loads (docs/performance.md); raise it on bigger instances."""

    group_commit_enabled: bool = field(default_factory=lambda: _env_bool("GROUP_COMMIT_ENABLED", True))
    """When false every request commits its own transaction (used by tests and benchmarks)."""

    coalesce_transfers: bool = field(default_factory=lambda: _env_bool("COALESCE_TRANSFERS", True))
    """Gateway: send concurrent single transfer writes to the ledger as one call (ADR 0006). Off:
    one ledger call per request, as before; responses are the same either way."""

    coalesce_max_inflight: int = field(default_factory=lambda: _env_int("COALESCE_MAX_INFLIGHT", 2))
    """Gateway: coalesced ledger calls in flight at once per process; requests arriving meanwhile
    queue and leave together as the next call."""

    coalesce_max_items: int = field(default_factory=lambda: _env_int("COALESCE_MAX_ITEMS", 256))
    """Gateway: most transfer writes in one coalesced ledger call."""

    session_local_cache_seconds: float = field(default_factory=lambda: _env_float("SESSION_LOCAL_CACHE_SECONDS", 0.5))
    """Gateway: how long a resolved session is served from process memory before Redis is asked
    again. Capped at 1 s: the bound on how late a revocation reaches every gateway. 0 disables."""

    unknown_token_cache_seconds: float = field(default_factory=lambda: _env_float("UNKNOWN_TOKEN_CACHE_SECONDS", 5.0))
    """Gateway: how long a refused token (unknown, expired, revoked) is refused from process
    memory, so floods of bad tokens reach neither Redis nor DynamoDB. 0 disables."""

    expiry_sweep_interval_seconds: float = field(
        default_factory=lambda: _env_float("EXPIRY_SWEEP_INTERVAL_SECONDS", 0.5)
    )
    """Longest the ledger sleeps between sweeps of expired pending transfers."""

    verifier_interval_seconds: float = field(default_factory=lambda: _env_float("VERIFIER_INTERVAL_SECONDS", 300.0))
    """How often a ledger process runs the invariant verifier and reports it as a metric (0: never).
    An advisory lock lets only one process of the fleet run it at a time."""

    log_level: str = field(default_factory=lambda: _env_str("LOG_LEVEL", "INFO"))
    """Level of the JSON log lines (DEBUG, INFO, WARNING, ERROR)."""

    workers: int = field(default_factory=lambda: _env_int("WORKERS", 1))
    """Server worker processes per service."""

    session_cache_ttl_seconds: int = field(default_factory=lambda: _env_int("SESSION_CACHE_TTL_SECONDS", 300))
    """Longest a session stays in the Redis cache before the session service re-reads DynamoDB
    (revocations do not wait for it: they overwrite the cache entry at once)."""

    idempotency_lease_seconds: int = field(default_factory=lambda: _env_int("IDEMPOTENCY_LEASE_SECONDS", 60))
    """How long an in-flight Idempotency-Key claim holds when its gateway dies before answering;
    longer than ``upstream_timeout_seconds`` so a live request never loses its claim."""

    redis_timeout_seconds: float = field(default_factory=lambda: _env_float("REDIS_TIMEOUT_SECONDS", 2.0))
    """Connect and command timeout of every Redis call, so an unreachable Redis is a fast 503."""

    dynamodb_timeout_seconds: float = field(default_factory=lambda: _env_float("DYNAMODB_TIMEOUT_SECONDS", 3.0))
    """Connect and read timeout of one DynamoDB call (with at most two attempts)."""

    request_read_timeout_seconds: float = field(
        default_factory=lambda: _env_float("REQUEST_READ_TIMEOUT_SECONDS", 30.0)
    )
    """Longest a client may take to send one whole request (headers and body), counted from when it
    connects, or starts the request on a kept-alive connection; then the connection is closed, so
    slow clients (slowloris) cannot hold connections open. 0 disables the deadline."""

    tracing_exporter: str = field(default_factory=lambda: _env_str("OTEL_TRACES_EXPORTER", ""))
    """Where spans go: ``otlp`` (to ``OTEL_EXPORTER_OTLP_ENDPOINT``), ``console`` (one JSON line per
    span on stderr) or ``none``. Unset: ``otlp`` when an endpoint is set, else ``none``. With
    ``none`` tracing is off entirely: no SDK, no instrumentation, no middleware (shared/tracing.py).
    With tracing on, the OpenTelemetry SDK also reads its own ``OTEL_BSP_*`` (span batching) and
    ``OTEL_RESOURCE_ATTRIBUTES`` variables."""

    otlp_endpoint: str = field(default_factory=lambda: _env_str("OTEL_EXPORTER_OTLP_ENDPOINT", ""))
    """OTLP collector receiving the spans: the ADOT sidecar (``http://127.0.0.1:4317``) in AWS;
    unset locally, which keeps tracing off."""

    otlp_protocol: str = field(default_factory=lambda: _env_str("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"))
    """``grpc`` (port 4317) or ``http/protobuf`` (port 4318) for the OTLP exporter."""

    tracing_sampler: str = field(default_factory=lambda: _env_str("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"))
    """``parentbased_traceidratio`` (the default), ``parentbased_always_on`` or ``parentbased_always_off``.
    The gateway decides for a new request; the ledger and session service follow its decision."""

    tracing_sample_ratio: float = field(default_factory=lambda: _env_float("OTEL_TRACES_SAMPLER_ARG", 1.0))
    """Share of public requests traced (0.0-1.0) with ``parentbased_traceidratio``; 0.05 in AWS."""

    # -- Hardening (issue 14): deployment checks, login limits, live sessions per key ------------

    in_aws: bool = field(default_factory=lambda: bool(os.environ.get("AWS_EXECUTION_ENV")))
    """True when running in AWS (ECS sets ``AWS_EXECUTION_ENV``). Then every service refuses to start
    without a real ``INTERNAL_TOKEN`` (:func:`shared.serve.deployment_problems`)."""

    login_rate_per_key_per_second: float = field(
        default_factory=lambda: _env_float("LOGIN_RATE_PER_KEY_PER_SECOND", 1.0)
    )
    """Gateway: sustained ``POST /v1/sessions`` calls per second presenting one API key (by key id)."""

    login_burst_per_key: int = field(default_factory=lambda: _env_int("LOGIN_BURST_PER_KEY", 60))
    """Gateway: ``POST /v1/sessions`` calls one API key may make at once above the sustained rate."""

    login_rate_per_address_per_second: float = field(
        default_factory=lambda: _env_float("LOGIN_RATE_PER_ADDRESS_PER_SECOND", 5.0)
    )
    """Gateway: sustained ``POST /v1/sessions`` calls per second from one client address, whatever
    the key (each costs the session service a consistent DynamoDB read)."""

    login_burst_per_address: int = field(default_factory=lambda: _env_int("LOGIN_BURST_PER_ADDRESS", 100))
    """Gateway: ``POST /v1/sessions`` calls one client address may make at once above the sustained rate."""

    refused_auth_rate_per_address_per_second: float = field(
        default_factory=lambda: _env_float("REFUSED_AUTH_RATE_PER_ADDRESS_PER_SECOND", 5.0)
    )
    """Gateway: refused authentications (missing, unknown, expired or revoked tokens) a client
    address may cause per second, fleet-wide, before its unresolved tokens are no longer looked up
    in the session service (429 instead). Tokens found in Redis still work from that address."""

    refused_auth_burst_per_address: int = field(default_factory=lambda: _env_int("REFUSED_AUTH_BURST_PER_ADDRESS", 50))
    """Gateway: refused authentications a client address may cause at once above that rate."""

    trusted_proxy_hops: int = field(
        default_factory=lambda: _env_int("TRUSTED_PROXY_HOPS", 1 if os.environ.get("AWS_EXECUTION_ENV") else 0)
    )
    """Proxies in front of the gateway that append the peer to ``X-Forwarded-For``: 1 in AWS (the
    ALB), 0 locally. The client address is the entry that many places from the right (the peer
    itself when 0); entries further left are the client's own claims and never trusted."""

    sessions_max_live_per_key: int = field(default_factory=lambda: _env_int("SESSIONS_MAX_LIVE_PER_KEY", 1000))
    """Session service: most sessions one API key may have live (not expired, not revoked) at once;
    a login beyond it is 429 ``rate_limited`` until one ends."""

    # -- Webhooks (issue 12; docs/webhooks.md) -------------------------------------------------------

    webhook_allow_private_urls: bool = field(default_factory=lambda: _env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", False))
    """Ledger: accept webhook URLs resolving to private, loopback, link-local or reserved addresses,
    and deliver to them. Never in AWS; tests and local demos set it (their receivers run on loopback)."""

    webhook_require_https: bool = field(
        default_factory=lambda: _env_bool("WEBHOOK_REQUIRE_HTTPS", bool(os.environ.get("AWS_EXECUTION_ENV")))
    )
    """Ledger: accept only ``https`` webhook URLs. Defaults to true in AWS, false locally."""

    webhook_retry_base_seconds: float = field(default_factory=lambda: _env_float("WEBHOOK_RETRY_BASE_SECONDS", 5.0))
    """Ledger: backoff of a webhook's first retry; the n-th waits a uniform random time up to
    ``base * 2**(n-1)`` (full jitter), at most ``WEBHOOK_RETRY_MAX_SECONDS``."""

    webhook_retry_max_seconds: float = field(default_factory=lambda: _env_float("WEBHOOK_RETRY_MAX_SECONDS", 3600.0))
    """Ledger: longest backoff between two attempts of one webhook delivery."""

    webhook_give_up_seconds: float = field(default_factory=lambda: _env_float("WEBHOOK_GIVE_UP_SECONDS", 86_400.0))
    """Ledger: how long an endpoint keeps failing before it is marked ``failing`` and deliveries to
    it stop (the contract says at least 24 hours; tests shorten it)."""

    webhook_poll_interval_seconds: float = field(
        default_factory=lambda: _env_float("WEBHOOK_POLL_INTERVAL_SECONDS", 0.5)
    )
    """Ledger: how often an idle delivery worker looks for endpoints with events to deliver."""

    webhook_lease_seconds: float = field(default_factory=lambda: _env_float("WEBHOOK_LEASE_SECONDS", 30.0))
    """Ledger: how long a process holds an endpoint between renewals (at least 15 s, longer than an
    attempt); after a crash another process resumes its deliveries once the lease has expired."""

    webhook_max_concurrency: int = field(default_factory=lambda: _env_int("WEBHOOK_MAX_CONCURRENCY", 32))
    """Ledger: endpoints one process delivers to at once (one request in flight per endpoint)."""

    def ledger_base_url(self) -> str:
        return self.ledger_url or f"http://127.0.0.1:{self.ledger_port}"

    def session_base_url(self) -> str:
        return self.session_url or f"http://127.0.0.1:{self.session_port}"

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use and never again."""
    return Settings()
