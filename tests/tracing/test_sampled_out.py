"""Tracing on, request not sampled: nothing is recorded anywhere, and the decision travels downstream.

"Nothing arrived" means something only if something would have: the test ends with a positive
control in the same processes (a request whose caller sampled it, sent straight to the ledger and
the session service, which follow the caller's decision), whose spans must reach the same receiver.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from typing import Any

import aiohttp

from tests.support.api import Api
from tests.support.platform import Platform, quick_tenant
from tests.tracing.collector import Receiver

CLIENT_SAYS_SAMPLE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


async def test_an_unsampled_request_records_nothing_and_passes_its_decision_on(
    sampled_out: Platform, receiver: Receiver, fake_ledger: tuple[str, list[Any]]
) -> None:
    ledger_url, seen = fake_ledger
    gateway = await asyncio.to_thread(sampled_out.extra_gateway, LEDGER_URL=ledger_url)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        api = Api(http, sampled_out.url)
        tenant = await quick_tenant(sampled_out, api, "sampled-out")  # login: session service, DynamoDB
        bank = await api.account(tenant, normal_balance="debit")
        wallet = await api.account(tenant)
        # Concurrent writes share group commits: none of them may be recorded either.
        replies = await asyncio.gather(*(api.transfer(tenant, bank["id"], wallet["id"], 1) for _ in range(20)))
        assert all(r.status == 201 for r in replies), replies
        # A client asking to be traced is not: the gateway decides, and tells the upstream so.
        listed = await api.call(
            "GET",
            "/v1/accounts",
            token=tenant.token,
            base_url=gateway.url,
            headers={"X-Amzn-Trace-Id": CLIENT_SAYS_SAMPLE},
        )
        assert listed.status == 200, listed
        (forwarded,) = [h["X-Amzn-Trace-Id"] for h in seen]
        assert re.fullmatch(r"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=[0-9a-f]{16};Sampled=0", forwarded)
        assert "Parent=53995c3f42cd8ad8" not in forwarded  # the gateway's own (unrecorded) span is the parent
        # The gateways never sample at ratio 0, so nothing can flush their export queues: they
        # get twenty export intervals (OTEL_BSP_SCHEDULE_DELAY=50 ms) to send what they wrongly kept.
        await asyncio.sleep(1.0)

        # Positive control: the ledger and session processes that served the requests above record
        # and export a request their caller sampled. Their spans leave through the same queues as
        # any wrongly kept ones would have, so once they arrive, those would have too.
        root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
        internal = {
            "X-Internal-Token": sampled_out.env["INTERNAL_TOKEN"],
            "X-Amzn-Trace-Id": f"Root={root};Parent={secrets.token_hex(8)};Sampled=1",
        }
        read = await api.call(
            "GET",
            "/v1/accounts",
            base_url=sampled_out.ledger.url,
            headers={**internal, "X-Tenant-Id": tenant.tenant_id},
        )
        assert read.status == 200, read
        introspected = await api.call(
            "POST",
            "/internal/sessions/introspect",
            json={"token": tenant.token},
            headers=internal,
            base_url=sampled_out.session.url,
        )
        assert introspected.status == 200, introspected
    control = root[2:].replace("-", "")
    await asyncio.to_thread(
        receiver.wait_for, lambda spans: {"ledger", "session"} <= {s.service for s in spans}, trace_id=control
    )
    assert [span for span in receiver.spans() if span.trace_id != control] == []
