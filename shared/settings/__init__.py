"""The one settings loader.

Every process reads its configuration here, once, from environment variables with local defaults
(docs/api.md section 1): :func:`get_settings` reads and checks them on first use and returns the
same :class:`Settings` ever after. The settings are grouped by concern, one frozen dataclass per
group, each field documented under it with its variable and unit: ``settings.process``,
``.database``, ``.redis``, ``.dynamodb``, ``.gateway``, ``.ledger``, ``.webhooks``, ``.session``,
``.tracing``. Building a group directly (``RedisSettings(url=...)``) reads nothing: its defaults are
the local ones.

Invalid settings never reach a service: the loader collects every value that does not parse or
breaks a rule (positive sizes, ports in range, shares in [0, 1], the Idempotency-Key lease above
the upstream timeout, ...) and raises one :class:`SettingsError` naming each variable and its rule;
:func:`shared.serve.serve` prints it and exits 78 (EX_CONFIG) before listening.

In ``shared/`` and ``services/`` only these modules read ``os.environ`` too, for variables that
are not settings (tests/test_docs.py keeps this list exact):

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
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from shared.settings.gateway import GatewaySettings
from shared.settings.infrastructure import (
    LOCAL_DYNAMODB_ENDPOINT,
    LOCAL_INTERNAL_TOKEN,
    DatabaseSettings,
    DynamoDBSettings,
    ProcessSettings,
    RedisSettings,
)
from shared.settings.ledger import LedgerSettings, WebhookSettings
from shared.settings.loading import SettingsError, field_problems, read_group
from shared.settings.session import SessionSettings
from shared.settings.tracing import TracingSettings

__all__ = [
    "LOCAL_DYNAMODB_ENDPOINT",
    "LOCAL_INTERNAL_TOKEN",
    "DatabaseSettings",
    "DynamoDBSettings",
    "GatewaySettings",
    "LedgerSettings",
    "ProcessSettings",
    "RedisSettings",
    "SessionSettings",
    "Settings",
    "SettingsError",
    "TracingSettings",
    "WebhookSettings",
    "get_settings",
    "load_settings",
]


@dataclass(frozen=True, slots=True)
class Settings:
    """Configuration shared by the three services and the command-line tools, one group per concern."""

    process: ProcessSettings = field(default_factory=ProcessSettings)
    """How every process runs: listening address, workers, logs, AWS, the internal credential."""

    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    """The ledger's PostgreSQL."""

    redis: RedisSettings = field(default_factory=RedisSettings)
    """The Redis of sessions, Idempotency-Keys and rate limits."""

    dynamodb: DynamoDBSettings = field(default_factory=DynamoDBSettings)
    """The session service's DynamoDB."""

    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    """The public gateway: upstreams, rate limits, Idempotency-Key, coalescing, hardening limits."""

    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    """The ledger: port, group commit, sweeper, verifier."""

    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    """The ledger's webhook delivery."""

    session: SessionSettings = field(default_factory=SessionSettings)
    """The session service: lifetimes, cache, live sessions per key."""

    tracing: TracingSettings = field(default_factory=TracingSettings)
    """OpenTelemetry tracing."""

    def ledger_base_url(self) -> str:
        return self.gateway.ledger_url or f"http://127.0.0.1:{self.ledger.port}"

    def session_base_url(self) -> str:
        return self.gateway.session_url or f"http://127.0.0.1:{self.session.port}"

    def problems(self) -> Iterator[str]:
        """Every rule these settings break, one line each naming the variable (none: valid)."""
        for f in dataclasses.fields(self):
            group = getattr(self, f.name)
            yield from field_problems(group)
            rules = getattr(group, "problems", None)
            if rules is not None:
                yield from rules()
        if self.process.in_aws and self.webhooks.allow_private_urls:
            yield (
                "WEBHOOK_ALLOW_PRIVATE_URLS=True: must be false in AWS (AWS_EXECUTION_ENV is set), or a tenant"
                " could make the ledger call addresses inside the VPC"
            )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``environ`` (the process environment by default), checked whole: raises
    :class:`SettingsError` listing every variable that does not parse or breaks a rule."""
    environ = os.environ if environ is None else environ
    in_aws = bool(environ.get("AWS_EXECUTION_ENV"))
    problems: list[str] = []
    groups = {
        name: read_group(group, environ, in_aws=in_aws, problems=problems)
        for name, group in typing.get_type_hints(Settings).items()
    }
    settings = Settings(**groups)
    problems.extend(settings.problems())
    if problems:
        raise SettingsError(problems)
    return settings


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use and never again."""
    return load_settings()
