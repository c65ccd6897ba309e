"""In AWS no service starts without a real internal credential (issue 14, item 7).

Unset, ``INTERNAL_TOKEN`` falls back to a development default that anyone can read in the source:
with it, whoever reaches a task's port could call the internal endpoints as any tenant. Each
service is started as ECS starts it (``AWS_EXECUTION_ENV`` set) and must exit with a clear reason
before it listens; with a real secret it serves.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time

import pytest

from tests.support.processes import ROOT, free_port, http_status

ECS = {"AWS_EXECUTION_ENV": "AWS_ECS_FARGATE", "AWS_REGION": "eu-west-1"}


def _start(service: str, **env: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    base = {k: v for k, v in os.environ.items() if k not in {"INTERNAL_TOKEN", "AWS_EXECUTION_ENV"}}
    variables = {**base, **ECS, f"{service.upper()}_PORT": str(port), "PYTHONPATH": str(ROOT), **env}
    process = subprocess.Popen(
        [sys.executable, "-m", f"services.{service}"],
        cwd=ROOT,
        env=variables,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, port


def _exited_or_serving(process: subprocess.Popen[str], port: int, timeout: float = 30.0) -> str:
    """``exited`` once the process ends, ``serving`` once it answers /health/live."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return "exited"
        if http_status(f"http://127.0.0.1:{port}/health/live") == 200:
            return "serving"
        time.sleep(0.05)
    return "neither"


def _stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.terminate()
    output, _ = process.communicate(timeout=30)
    return output


@pytest.mark.parametrize("service", ["gateway", "ledger", "session"])
@pytest.mark.parametrize(
    "token",
    [None, "", "local-internal-token-change-me", "short-secret", "a" * 64],
    ids=["unset", "empty", "development-default", "too-short", "one-character"],
)
def test_refuses_to_start_in_aws_without_a_real_internal_token(service: str, token: str | None) -> None:
    env = {} if token is None else {"INTERNAL_TOKEN": token}
    process, port = _start(service, **env)
    try:
        state = _exited_or_serving(process, port)
    finally:
        output = _stop(process)
    assert state == "exited", (service, token, state, output[-2000:])
    assert process.returncode == 78, (process.returncode, output[-2000:])
    assert "refusing to start" in output and "INTERNAL_TOKEN" in output, output[-2000:]
    if token:
        assert token not in output, output  # the reason names the variable, never its value


def test_starts_in_aws_with_a_real_internal_token() -> None:
    process, port = _start("gateway", INTERNAL_TOKEN=secrets.token_urlsafe(48))
    try:
        state = _exited_or_serving(process, port)
    finally:
        output = _stop(process)
    assert state == "serving", output[-2000:]
    assert "refusing to start" not in output
