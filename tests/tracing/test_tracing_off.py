"""Tracing off: nothing is instrumented or exported, and the X-Ray header still travels unchanged.

"Nothing arrived" means something only if something would have: the end-to-end test ends with a
positive control, a gateway with the very same settings but an exporter, whose spans must reach the
same receiver while none come from the processes with tracing off.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from typing import Any

import aiohttp
from redis.asyncio import Redis

from shared.session_cache import session_key, token_hash
from tests.support.api import Api
from tests.support.platform import Platform, quick_tenant
from tests.support.processes import ROOT
from tests.tracing.collector import Receiver

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


async def test_nothing_is_exported_and_the_trace_header_reaches_the_upstreams(
    untraced: Platform, receiver: Receiver, fake_ledger: tuple[str, list[Any]]
) -> None:
    ledger_url, seen = fake_ledger
    # The fake ledger answers from this event loop: start the gateway without blocking it.
    gateway = await asyncio.to_thread(untraced.extra_gateway, LEDGER_URL=ledger_url)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        api = Api(http, untraced.url)
        tenant = await quick_tenant(untraced, api, "untraced")
        request_id = f"off-{uuid.uuid4().hex}"
        headers = {"X-Request-Id": request_id, "X-Amzn-Trace-Id": TRACE}
        # Through all three real services: login (session service, DynamoDB, Redis), then a
        # transfer-sized write path on the ledger.
        login = await api.call("POST", "/v1/sessions", json={"api_key": tenant.api_key}, headers=headers)
        assert login.status == 201, login
        bank = await api.account(tenant, normal_balance="debit")
        wallet = await api.account(tenant)
        assert (await api.transfer(tenant, bank["id"], wallet["id"], 5)).status == 201
        # The header reaches the ledger byte for byte (a token the gateway has not cached also
        # sends the request to the session service first).
        redis = Redis.from_url(untraced.env["REDIS_URL"])
        await redis.delete(session_key(untraced.env["REDIS_KEY_PREFIX"], token_hash(tenant.token)))
        await redis.aclose()
        listed = await api.call("GET", "/v1/accounts", token=tenant.token, headers=headers, base_url=gateway.url)
        assert listed.status == 200, listed
        assert [h.get("X-Amzn-Trace-Id") for h in seen] == [TRACE]
        assert seen[0]["X-Request-Id"] == request_id
        session_lines = [
            json.loads(line) for line in untraced.session.log_path.read_text().splitlines() if request_id in line
        ]
        assert session_lines and all(
            line["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793" for line in session_lines
        )
        quiet_since = time.monotonic()

        # Positive control: the same settings (endpoint, batching) with an exporter do reach this
        # receiver, so the silence below is tracing being off, not a broken way to the receiver.
        control = await asyncio.to_thread(
            untraced.extra_gateway,
            LEDGER_URL=ledger_url,
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_RESOURCE_ATTRIBUTES="test.role=control",
        )
        root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
        traced = {"X-Amzn-Trace-Id": f"Root={root};Parent={secrets.token_hex(8)};Sampled=1"}
        controlled = await api.call("GET", "/v1/accounts", token=tenant.token, headers=traced, base_url=control.url)
        assert controlled.status == 200, controlled
    await asyncio.to_thread(
        receiver.wait_for, lambda spans: any(s.kind == "SERVER" for s in spans), trace_id=root[2:].replace("-", "")
    )
    # The processes had an endpoint but OTEL_TRACES_EXPORTER=none: at least twenty export intervals
    # of OTEL_BSP_SCHEDULE_DELAY=50 ms later, the receiver has heard only the control.
    await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - quiet_since)))
    assert [s for s in receiver.spans() if s.resource.get("test.role") != "control"] == []


def test_without_an_exporter_no_library_is_patched_and_no_tracer_is_installed() -> None:
    """Tracing off costs nothing: the apps are the bare apps, no library is patched, no SDK is set up."""
    script = """
import sys
import wrapt
import aiohttp, asyncpg, redis.asyncio, aiobotocore.client
from services.gateway.app import create_app as gateway
from services.ledger.app import create_app as ledger
from services.session.app import create_app as session
from shared import tracing
from shared.http import HttpPool
from shared.web import RequestContextMiddleware
from services.gateway.dot_segments import RefuseDotSegments
from litestar import Litestar
for create in (gateway, ledger, session):
    app = create()
    assert isinstance(app, RequestContextMiddleware), app
    inner = app.app.app if isinstance(app.app, RefuseDotSegments) else app.app  # the gateway's path guard
    assert isinstance(inner, Litestar), inner
assert not tracing.enabled() and tracing.client_trace_configs() == []
for method in (asyncpg.connection.Connection.fetch, redis.asyncio.Redis.execute_command,
               aiobotocore.client.AioBaseClient._make_api_call, aiohttp.ClientSession.__init__):
    assert not isinstance(method, wrapt.ObjectProxy), method  # how the instrumentations patch
# (Litestar imports OpenTelemetry's modules when they are installed; nothing of it is set up.)
from opentelemetry import propagate, trace
assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider", trace.get_tracer_provider()
assert "xray" not in repr(propagate.get_global_textmap()).lower()
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
