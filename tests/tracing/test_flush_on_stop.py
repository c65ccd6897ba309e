"""A clean stop exports the last spans (issue 14, item 10).

uvicorn re-raises SIGTERM after its graceful shutdown, so the SDK's ``atexit`` flush never ran and
whatever the batch processor still held was lost: a transfer made just before the stop left no
gateway span at all. The batch delay here is a minute, so nothing is exported before the stop
unless the shutdown flushes; the test then waits only for the processes to exit (no sleep).
"""

from __future__ import annotations

import json
import signal
import uuid
from typing import Any

from tests.support.api import Api
from tests.support.platform import Platform, quick_tenant
from tests.support.processes import ServiceProcess


def _spans(process: ServiceProcess, offset: int) -> list[dict[str, Any]]:
    """The console exporter's spans (one JSON object per line) in the log after ``offset``."""
    spans = []
    with process.log_path.open("rb") as log:
        log.seek(offset)
        for line in log.read().decode(errors="replace").splitlines():
            if line.startswith("{") and '"context"' in line and '"kind"' in line:
                spans.append(json.loads(line))
    return spans


async def test_spans_of_the_last_requests_survive_sigterm(
    database_url: str, redis_prefix: str, http_client: Any
) -> None:
    overrides = {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_TRACES_SAMPLER_ARG": "1.0",
        "OTEL_BSP_SCHEDULE_DELAY": "60000",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "100000",
        "OTEL_BSP_MAX_QUEUE_SIZE": "100000",
    }
    with Platform(database_url, f"{redis_prefix}flush:", overrides=overrides).serving() as platform:
        api = Api(http_client, platform.url)
        offsets = {name: getattr(platform, name).log_path.stat().st_size for name in ("gateway", "ledger", "session")}
        tenant = await quick_tenant(platform, api, "flush")
        a, b = await api.account(tenant), await api.account(tenant)
        transfer_id = str(uuid.uuid4())
        reply = await api.call(
            "POST",
            "/v1/transfers",
            token=tenant.token,
            json={
                "id": transfer_id,
                "debit_account_id": a["id"],
                "credit_account_id": b["id"],
                "amount": 1,
                "currency": "USD",
            },
        )
        assert reply.status == 201, reply
        for name in ("gateway", "ledger", "session"):
            process: ServiceProcess = getattr(platform, name)
            assert _spans(process, offsets[name]) == [], f"{name} exported before the stop: the delay is too short"
            code = process.stop(signal.SIGTERM)
            assert code in (0, -signal.SIGTERM), (name, code)

        gateway = _spans(platform.gateway, offsets["gateway"])
        names = {span["name"] for span in gateway if span["kind"] == "SpanKind.SERVER"}
        assert {"POST /v1/sessions", "POST /v1/accounts", "POST /v1/transfers"} <= names, names
        ledger = _spans(platform.ledger, offsets["ledger"])
        session = _spans(platform.session, offsets["session"])
        assert any(span["name"] == "POST /internal/sessions" for span in session), [span["name"] for span in session]
        # Every service's spans share the transfer's trace with the gateway's.
        [server] = [s for s in gateway if s["name"] == "POST /v1/transfers" and s["kind"] == "SpanKind.SERVER"]
        trace_id = server["context"]["trace_id"]
        assert any(span["context"]["trace_id"] == trace_id for span in ledger), [span["name"] for span in ledger]
