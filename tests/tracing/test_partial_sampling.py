"""At a ratio between 0 and 1 every request is traced whole or not at all: the services agree."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import defaultdict

import aiohttp

from tests.support.api import Api
from tests.support.platform import Platform, quick_tenant
from tests.tracing.collector import Receiver, Span


async def test_each_request_is_traced_whole_or_not_at_all(half_sampled: Platform, receiver: Receiver) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        api = Api(http, half_sampled.url)
        tenant = await quick_tenant(half_sampled, api, "half")
        bank = await api.account(tenant, normal_balance="debit")
        wallet = await api.account(tenant)
        await asyncio.sleep(1.0)  # the set-up's spans are exported
        receiver.clear()
        # Half of them as the ALB sends them (a Root, no Parent), half without any header.
        roots = [f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}" for _ in range(30)]
        replies = await asyncio.gather(
            *(
                api.call(
                    "POST",
                    "/v1/transfers",
                    token=tenant.token,
                    headers={"X-Amzn-Trace-Id": root},
                    json={
                        "id": str(__import__("uuid").uuid4()),
                        "debit_account_id": bank["id"],
                        "credit_account_id": wallet["id"],
                        "amount": 1,
                        "currency": "USD",
                    },
                )
                for root in roots
            ),
            *(api.transfer(tenant, bank["id"], wallet["id"], 1) for _ in range(30)),
        )
        assert all(r.status == 201 for r in replies), replies

    def both_sides_exported(spans: list[Span]) -> bool:
        # Every sampled transfer has a gateway and a ledger server span; wait until the two
        # processes' export batches have both arrived (no fixed sleep).
        def count(service: str) -> int:
            return sum(s.kind == "SERVER" and s.service == service and s.name == "POST /v1/transfers" for s in spans)

        return count("gateway") >= 10 and count("gateway") == count("ledger")

    exported = await asyncio.to_thread(receiver.wait_for, both_sides_exported)
    traces: dict[str, list[Span]] = defaultdict(list)
    for span in exported:
        traces[span.trace_id].append(span)
    transfers = {tid for tid, spans in traces.items() if any(s.name == "POST /v1/transfers" for s in spans)}
    traces = {tid: spans for tid, spans in traces.items() if tid in transfers}
    servers = {tid: {s.service for s in spans if s.kind == "SERVER"} for tid, spans in traces.items()}
    assert all(found == {"gateway", "ledger"} for found in servers.values()), servers
    assert 10 <= len(traces) <= 50, len(traces)  # about half of 60
    alb_ids = {root.split("-", 1)[1].replace("-", "") for root in roots}
    assert sum(tid in alb_ids for tid in traces) >= 3  # the ALB's ids were kept and some sampled
    for tid, spans in traces.items():
        ids = {s.span_id for s in spans}
        assert [s.name for s in spans if s.parent_id not in ids] == ["POST /v1/transfers"], tid
