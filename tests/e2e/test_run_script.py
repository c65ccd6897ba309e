"""``./scripts/run`` end to end: ready line, a tenant through the admin CLI, data kept across a restart,
and a clean stop (exit 0, every child gone) on SIGTERM and SIGINT."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid

from cli import launcher
from tests.support.platform import Platform
from tests.support.processes import ROOT, free_port, http_status


def _start(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "run")], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until the ready line (or EOF if it failed)
    return process, line


def _post(url: str, body: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status), json.loads(response.read())


def test_run_serves_keeps_data_and_stops_cleanly(platform: Platform, database_url: str) -> None:
    ports = {"GATEWAY_PORT": free_port(), "LEDGER_PORT": free_port(), "SESSION_PORT": free_port()}
    env = {
        **os.environ,
        **platform.env,
        **{k: str(v) for k, v in ports.items()},
        "DYNAMODB_TABLE_PREFIX": f"run{uuid.uuid4().hex[:6]}-",
        # The platform's 1 s timeouts are for its fault tests; this one is about the script.
        "DYNAMODB_TIMEOUT_SECONDS": "5",
        "REDIS_TIMEOUT_SECONDS": "5",
        "DATABASE_URL": database_url.rsplit("/", 1)[0] + f"/run_{uuid.uuid4().hex[:8]}",
    }
    gateway = f"http://127.0.0.1:{ports['GATEWAY_PORT']}"

    process, line = _start(env)
    try:
        assert "ready" in line and gateway in line, line
        admin = subprocess.run(
            [str(ROOT / "scripts" / "admin"), "create-tenant", "run-check"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        key = json.loads(admin.stdout)["api_key"]
        status, session = _post(f"{gateway}/v1/sessions", {"api_key": key})
        assert status == 201
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    for port in ports.values():
        assert http_status(f"http://127.0.0.1:{port}/health/live") is None

    process, line = _start(env)
    try:
        assert "ready" in line, line
        status, again = _post(f"{gateway}/v1/sessions", {"api_key": key})
        assert status == 201
        assert again["tenant_id"] == session["tenant_id"]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    deadline = time.monotonic() + 5
    while http_status(f"{gateway}/health/live") is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert http_status(f"{gateway}/health/live") is None
    server, name = env["DATABASE_URL"].rsplit("/", 1)
    asyncio.run(launcher.drop_database(server, name))
