"""Settings of every process and of the stores it uses: PostgreSQL, Redis, DynamoDB."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.settings.loading import between, one_of, positive, setting, url

LOCAL_DYNAMODB_ENDPOINT = "http://127.0.0.1:8004"

LOCAL_INTERNAL_TOKEN = "local-internal-token-change-me"
"""The development default of ``INTERNAL_TOKEN``; :mod:`shared.serve` refuses it in AWS."""

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _is_set(raw: str) -> bool:
    return True  # read_group calls it only for a non-empty value


@dataclass(frozen=True, slots=True)
class ProcessSettings:
    """How each process runs, whichever service it is: where it listens, its workers, its logs,
    the AWS it runs in and the credential the services share."""

    in_aws: bool = setting("AWS_EXECUTION_ENV", False, parse=_is_set)
    """``AWS_EXECUTION_ENV`` (set by ECS to a platform name): true when running in AWS. Then every
    service refuses to start without a real ``INTERNAL_TOKEN`` (:func:`shared.serve.deployment_problems`),
    and some defaults change (``DYNAMODB_ENDPOINT_URL``, ``TRUSTED_PROXY_HOPS``, ``WEBHOOK_REQUIRE_HTTPS``)."""

    aws_region: str = setting("AWS_REGION", "eu-west-1")
    """``AWS_REGION``: region of the DynamoDB tables and of the Secrets Manager secrets."""

    bind_host: str = setting("BIND_HOST", "127.0.0.1")
    """``BIND_HOST``: address the services listen on; ``0.0.0.0`` in containers, loopback locally."""

    workers: int = setting("WORKERS", 1, check=between(1, 256))
    """``WORKERS``: server worker processes per service."""

    log_level: str = setting("LOG_LEVEL", "INFO", check=one_of(*LOG_LEVELS))
    """``LOG_LEVEL``: level of the JSON log lines (DEBUG, INFO, WARNING, ERROR, CRITICAL)."""

    request_read_timeout_seconds: float = setting("REQUEST_READ_TIMEOUT_SECONDS", 30.0, check=between(0, 3600))
    """``REQUEST_READ_TIMEOUT_SECONDS``, seconds: longest a client may take to send one whole request
    (headers and body), counted from when it connects, or starts the request on a kept-alive
    connection; then the connection is closed, so slow clients (slowloris) cannot hold connections
    open. 0 disables the deadline."""

    internal_token: str = setting("INTERNAL_TOKEN", LOCAL_INTERNAL_TOKEN, secret=True)
    """``INTERNAL_TOKEN``: shared credential the internal endpoints require (header
    ``X-Internal-Token``). In AWS it comes from Secrets Manager; the local default is for
    development only."""


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """The ledger's PostgreSQL."""

    url: str = setting(
        "DATABASE_URL", "postgresql://root@127.0.0.1:5432/ledger", check=url("postgresql", "postgres"), secret=True
    )
    """``DATABASE_URL``: PostgreSQL DSN of the ledger database. The database is created by the
    migration runner."""

    pool_size: int = setting("DATABASE_POOL_SIZE", 8, check=between(1, 1000))
    """``DATABASE_POOL_SIZE``, connections: how many each ledger process keeps open. Group commit
    needs few; more only adds contention."""


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """The Redis holding the session cache, Idempotency-Key records and rate limits."""

    url: str = setting("REDIS_URL", "redis://127.0.0.1:6379/0", check=url("redis", "rediss", "unix"), secret=True)
    """``REDIS_URL``: the Redis to use; in AWS it carries no password (``REDIS_AUTH_SECRET_ARN``)."""

    auth_secret_arn: str = setting("REDIS_AUTH_SECRET_ARN", "")
    """``REDIS_AUTH_SECRET_ARN``: Secrets Manager secret whose ``token`` key is the Redis AUTH token
    (AWS). Set, every new Redis connection authenticates with the secret's current token, re-read
    while the process runs (``shared.credentials``), and ``REDIS_URL`` carries no password. Empty:
    the URL's own (local)."""

    username: str = setting("REDIS_USERNAME", "")
    """``REDIS_USERNAME``: Redis user this process authenticates as (``AUTH <user> <password>``,
    ElastiCache RBAC; ADR 0110), its password being the secret's token or the URL's. Empty: the
    URL's user, or ``default``."""

    key_prefix: str = setting("REDIS_KEY_PREFIX", "fl:")
    """``REDIS_KEY_PREFIX``: prefix of every Redis key, so test runs and environments sharing a Redis
    never meet."""

    timeout_seconds: float = setting("REDIS_TIMEOUT_SECONDS", 2.0, check=positive)
    """``REDIS_TIMEOUT_SECONDS``, seconds: connect and command timeout of every Redis call, so an
    unreachable Redis is a fast 503."""


DYNAMODB_TABLE_PREFIX = re.compile(r"[A-Za-z0-9_.-]*")
"""Characters DynamoDB allows in a table name."""


@dataclass(frozen=True, slots=True)
class DynamoDBSettings:
    """The session service's DynamoDB tables (and ``./scripts/admin``'s)."""

    endpoint_url: str | None = setting(
        "DYNAMODB_ENDPOINT_URL", LOCAL_DYNAMODB_ENDPOINT, aws=None, check=url("http", "https")
    )
    """``DYNAMODB_ENDPOINT_URL``: DynamoDB endpoint (dynalite or moto locally; ``./scripts/run``
    starts one at the local default ``http://127.0.0.1:8004``). In AWS (``AWS_EXECUTION_ENV`` set by
    ECS) it defaults to none: the regional endpoint is used; set but empty means that too."""

    table_prefix: str = setting(
        "DYNAMODB_TABLE_PREFIX",
        "fintech-",
        check=lambda v: None if DYNAMODB_TABLE_PREFIX.fullmatch(v) else "may hold only A-Z a-z 0-9 _ . -",
    )
    """``DYNAMODB_TABLE_PREFIX``: prefix of the DynamoDB table names (``<prefix>tenants``,
    ``<prefix>api-keys``, ``<prefix>sessions``)."""

    timeout_seconds: float = setting("DYNAMODB_TIMEOUT_SECONDS", 3.0, check=positive)
    """``DYNAMODB_TIMEOUT_SECONDS``, seconds: connect and read timeout of one DynamoDB call (with at
    most two attempts)."""
