"""Tracing on, request not sampled: nothing is recorded anywhere, and the decision travels downstream."""

from __future__ import annotations

import asyncio
import re
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
        listed = await api.call("GET", "/v1/accounts", token=tenant.token, base_url=gateway.url,
                                headers={"X-Amzn-Trace-Id": CLIENT_SAYS_SAMPLE})
        assert listed.status == 200, listed
    (forwarded,) = [h["X-Amzn-Trace-Id"] for h in seen]
    assert re.fullmatch(r"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=[0-9a-f]{16};Sampled=0", forwarded)
    assert "Parent=53995c3f42cd8ad8" not in forwarded  # the gateway's own (unrecorded) span is the parent
    await asyncio.sleep(1.0)  # twenty export intervals
    assert receiver.spans() == []
