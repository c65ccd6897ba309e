"""One request id and one X-Ray trace id follow a request through all three services' log lines."""

from __future__ import annotations

import json
import uuid

from tests.support.api import Api
from tests.support.platform import Platform, quick_tenant

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def _log_lines(platform: Platform, service: str, request_id: str) -> list[dict[str, object]]:
    process = getattr(platform, service)
    lines = []
    for raw in process.log_path.read_text().splitlines():
        if request_id in raw:
            lines.append(json.loads(raw))
    return lines


async def test_request_and_trace_ids_reach_the_ledger_and_the_session_service(api: Api, platform: Platform) -> None:
    tenant = await quick_tenant(platform, api)
    request_id = f"trace-{uuid.uuid4().hex}"
    headers = {"X-Request-Id": request_id, "X-Amzn-Trace-Id": TRACE}
    # The ledger writes the problem body, so its request_id proves the id reached it.
    missing = await api.call("GET", f"/v1/accounts/{uuid.uuid4()}", token=tenant.token, headers=headers)
    assert missing.status == 404
    assert missing.json["request_id"] == request_id
    assert missing.headers["X-Request-Id"] == request_id

    login = await api.call("POST", "/v1/sessions", json={"api_key": tenant.api_key}, headers=headers)
    assert login.status == 201
    lines = _log_lines(platform, "session", request_id)
    assert lines, "the session service logged nothing with the request id"
    assert all(line["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793" for line in lines)
    assert all(line["service"] == "session" for line in lines)
