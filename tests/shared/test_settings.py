"""The settings loader (shared/settings/): groups, defaults, and validation at load.

Bad values go in through the real environment (a mapping given to ``load_settings``, the process
environment with ``monkeypatch.setenv``, or a child process's environment), and the error must name
the variable and its rule. Every rejection test has its positive control: the same setting at a
valid value loads.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.ledger.webhooks.worker import MIN_LEASE_SECONDS
from shared.settings import SettingsError, get_settings, load_settings
from shared.settings.ledger import WEBHOOK_MIN_LEASE_SECONDS

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_DIR = ROOT / "shared" / "settings"


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """``get_settings`` reads the environment again, and the suite's cached value is restored after."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def problems_of(env: dict[str, str]) -> list[str]:
    try:
        load_settings(env)
    except SettingsError as exc:
        return exc.problems
    return []


def test_defaults_are_valid_and_grouped() -> None:
    settings = load_settings({})
    assert settings.gateway.port == 8000 and settings.ledger.port == 8001 and settings.session.port == 8002
    assert settings.database.url == "postgresql://root@127.0.0.1:5432/ledger"
    assert settings.redis.key_prefix == "fl:" and settings.dynamodb.endpoint_url == "http://127.0.0.1:8004"
    assert settings.gateway.idempotency_lease_seconds > settings.gateway.upstream_timeout_seconds
    assert settings.webhooks.require_https is False and settings.gateway.trusted_proxy_hops == 0
    assert settings.ledger_base_url() == "http://127.0.0.1:8001"
    assert settings.session_base_url() == "http://127.0.0.1:8002"
    assert list(settings.problems()) == []


def test_variables_are_read_into_their_group() -> None:
    settings = load_settings(
        {
            "LEDGER_PORT": "9001",
            "LEDGER_URL": "http://ledger.internal:80",
            "REDIS_TIMEOUT_SECONDS": "0.25",
            "GROUP_COMMIT_ENABLED": "off",
            "WEBHOOK_ALLOW_PRIVATE_URLS": "yes",
            "OTEL_TRACES_SAMPLER_ARG": "0.05",
            "SESSIONS_MAX_LIVE_PER_KEY": "3",
            "DYNAMODB_ENDPOINT_URL": "",  # set but empty: the regional endpoint
        }
    )
    assert settings.ledger.port == 9001 and settings.ledger_base_url() == "http://ledger.internal:80"
    assert settings.redis.timeout_seconds == 0.25
    assert settings.ledger.group_commit_enabled is False and settings.webhooks.allow_private_urls is True
    assert settings.tracing.sample_ratio == 0.05 and settings.session.max_live_per_key == 3
    assert settings.dynamodb.endpoint_url is None


def test_aws_changes_the_documented_defaults() -> None:
    settings = load_settings({"AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"})
    assert settings.process.in_aws is True
    assert settings.dynamodb.endpoint_url is None
    assert settings.gateway.trusted_proxy_hops == 1
    assert settings.webhooks.require_https is True


@pytest.mark.parametrize(
    ("name", "bad", "rule", "good"),
    [
        ("GATEWAY_PORT", "eighty", "must be an integer", "8080"),
        ("LEDGER_PORT", "70000", "must be between 1 and 65535", "65535"),
        ("SESSION_PORT", "0", "must be between 1 and 65535", "1"),
        ("UPSTREAM_TIMEOUT_SECONDS", "0", "must be greater than 0", "0.5"),
        ("REDIS_TIMEOUT_SECONDS", "soon", "must be a number", "1"),
        ("UPSTREAM_TIMEOUT_SECONDS", "inf", "must be a finite number", "1e1"),
        ("DATABASE_POOL_SIZE", "0", "must be between 1 and 1000", "1"),
        ("GROUP_COMMIT_MAX_ITEMS", "0", "must be at least 1", "1"),
        ("RATE_LIMIT_BURST", "0", "must be at least 1", "1"),
        ("RATE_LIMIT_PER_SECOND", "-5", "must be greater than 0", "0.5"),
        ("GROUP_COMMIT_ENABLED", "ture", "must be true or false", "true"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5", "must be between 0 and 1", "1"),
        ("OTEL_TRACES_SAMPLER", "always_on", "must be one of parentbased_traceidratio", "parentbased_always_on"),
        ("OTEL_TRACES_EXPORTER", "jaeger", "must be one of otlp, console, none", "console"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http", "must be one of grpc, http/protobuf", "http/protobuf"),
        ("SESSION_LOCAL_CACHE_SECONDS", "2", "must be between 0 and 1", "1"),
        ("UNKNOWN_TOKEN_CACHE_SECONDS", "-1", "must be 0 or more", "0"),
        ("WEBHOOK_LEASE_SECONDS", "10", "must be at least 15", "15"),
        ("WEBHOOK_MAX_CONCURRENCY", "0", "must be at least 1", "1"),
        ("LOG_LEVEL", "LOUD", "must be one of debug, info", "warning"),
        ("WORKERS", "0", "must be between 1 and 256", "4"),
        ("REDIS_URL", "http://127.0.0.1:6379", "must be a redis:// or rediss:// or unix:// URL", "rediss://r:6379/0"),
        ("DATABASE_URL", "mysql://root@db/ledger", "must be a postgresql:// or postgres:// URL", "postgres://db/l"),
        ("LEDGER_URL", "ledger:8001", "must be a http:// or https:// URL", "http://ledger:8001"),
        ("DYNAMODB_TABLE_PREFIX", "bad prefix/", "may hold only", "prod_v2."),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_rule(name: str, bad: str, rule: str, good: str) -> None:
    problems = problems_of({name: bad})
    assert len(problems) == 1 and problems[0].startswith(name) and rule in problems[0], problems
    assert problems_of({name: good}) == []  # positive control


def test_the_idempotency_lease_must_exceed_the_upstream_timeout() -> None:
    for env in (
        {"IDEMPOTENCY_LEASE_SECONDS": "10"},  # equal to the default UPSTREAM_TIMEOUT_SECONDS (10)
        {"UPSTREAM_TIMEOUT_SECONDS": "60"},  # equal to the default lease (60)
        {"IDEMPOTENCY_LEASE_SECONDS": "5", "UPSTREAM_TIMEOUT_SECONDS": "7.5"},
    ):
        (problem,) = problems_of(env)
        assert problem.startswith("IDEMPOTENCY_LEASE_SECONDS=") and "must exceed UPSTREAM_TIMEOUT_SECONDS" in problem
    assert problems_of({"IDEMPOTENCY_LEASE_SECONDS": "8", "UPSTREAM_TIMEOUT_SECONDS": "5"}) == []
    assert problems_of({"IDEMPOTENCY_LEASE_SECONDS": "11"}) == []


def test_rules_between_other_fields() -> None:
    (claim,) = problems_of({"IDEMPOTENCY_LEASE_SECONDS": "120", "IDEMPOTENCY_TTL_SECONDS": "100"})
    assert "must be less than IDEMPOTENCY_TTL_SECONDS" in claim
    (backoff,) = problems_of({"WEBHOOK_RETRY_BASE_SECONDS": "10", "WEBHOOK_RETRY_MAX_SECONDS": "5"})
    assert backoff.startswith("WEBHOOK_RETRY_MAX_SECONDS=") and "WEBHOOK_RETRY_BASE_SECONDS" in backoff
    (private,) = problems_of({"AWS_EXECUTION_ENV": "AWS_ECS_FARGATE", "WEBHOOK_ALLOW_PRIVATE_URLS": "true"})
    assert private.startswith("WEBHOOK_ALLOW_PRIVATE_URLS") and "must be false in AWS" in private
    assert problems_of({"WEBHOOK_ALLOW_PRIVATE_URLS": "true"}) == []  # locally it is allowed


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"GATEWAY_PORT": "x", "IDEMPOTENCY_LEASE_SECONDS": "1", "WORKERS": "0", "LOG_LEVEL": "loud"})
    message = str(caught.value)
    assert message.startswith("invalid settings (4 problems):")
    for name in ("GATEWAY_PORT", "IDEMPOTENCY_LEASE_SECONDS", "WORKERS", "LOG_LEVEL"):
        assert f"\n  {name}" in message


def test_secrets_stay_out_of_messages_and_reprs() -> None:
    (problem,) = problems_of({"DATABASE_URL": "mysql://root:hunter2@db/ledger"})
    assert problem.startswith("DATABASE_URL:") and "hunter2" not in problem
    settings = load_settings({"INTERNAL_TOKEN": "s3cret-token-value", "REDIS_URL": "redis://:pw-in-url@r:6379/0"})
    assert "s3cret-token-value" not in repr(settings) and "pw-in-url" not in repr(settings)


def test_get_settings_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch, fresh_settings: None) -> None:
    monkeypatch.setenv("IDEMPOTENCY_LEASE_SECONDS", "3")
    with pytest.raises(SettingsError, match="IDEMPOTENCY_LEASE_SECONDS=3: must exceed UPSTREAM_TIMEOUT_SECONDS"):
        get_settings()
    monkeypatch.setenv("IDEMPOTENCY_LEASE_SECONDS", "30")  # positive control
    assert get_settings().gateway.idempotency_lease_seconds == 30


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("service", ["gateway", "ledger", "session"])
def test_a_service_with_invalid_settings_exits_at_start_naming_the_variable(service: str) -> None:
    started = _run(["-m", f"services.{service}"], IDEMPOTENCY_LEASE_SECONDS="4", WORKERS="many")
    assert started.returncode == 78, started.stderr
    assert "IDEMPOTENCY_LEASE_SECONDS=4: must exceed UPSTREAM_TIMEOUT_SECONDS" in started.stderr
    assert "WORKERS='many': must be an integer" in started.stderr
    assert "Traceback" not in started.stderr


def test_the_loader_in_a_fresh_process() -> None:
    bad = _run(["-c", "from shared.settings import get_settings; get_settings()"], UPSTREAM_TIMEOUT_SECONDS="90")
    assert (
        bad.returncode != 0 and "IDEMPOTENCY_LEASE_SECONDS=60: must exceed UPSTREAM_TIMEOUT_SECONDS=90.0" in bad.stderr
    )
    good = _run(
        ["-c", "from shared.settings import get_settings; print(get_settings().gateway.port)"], GATEWAY_PORT="8123"
    )
    assert good.returncode == 0 and good.stdout.strip() == "8123", good.stderr


def _fields() -> Iterator[tuple[str, str, str, str | None]]:
    """(module, field, variable, the docstring under it) of every setting declared in shared/settings/."""
    for module in sorted(SETTINGS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            for statement, following in zip(node.body, [*node.body[1:], None], strict=True):
                call = statement.value if isinstance(statement, ast.AnnAssign) else None
                if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "setting":
                    assert isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                    variable = call.args[0]
                    assert isinstance(variable, ast.Constant)
                    doc = following.value if isinstance(following, ast.Expr) else None
                    docstring = doc.value if isinstance(doc, ast.Constant) and isinstance(doc.value, str) else None
                    yield module.name, statement.target.id, str(variable.value), docstring


def test_every_setting_has_a_docstring_naming_its_variable() -> None:
    fields = list(_fields())
    assert len(fields) > 60  # every group was found
    missing = [f"{module}: {name}" for module, name, variable, doc in fields if not doc or f"``{variable}``" not in doc]
    assert not missing, f"settings without a docstring naming their variable: {missing}"
    variables = [variable for *_, variable, _ in fields]
    assert len(variables) == len(set(variables)), "a variable is read into two settings"


def test_the_webhook_lease_floor_is_the_workers() -> None:
    assert WEBHOOK_MIN_LEASE_SECONDS == MIN_LEASE_SECONDS
