"""What every scenario needs before the clock starts: a tenant, a session, and the accounts.

The tenant and its API key come from ``./scripts/admin create-tenant`` and the session token from
``POST /v1/sessions`` through the gateway: the real admin and session paths. The accounts (10,000
for the uniform pattern, 10 sources and one sink for the hot one, 10 for the contended one) are
created through the ledger's internal API, concurrently; that is set-up, not measured.

No transfer may be refused for funds: every account is created without a balance limit
(``debits_must_not_exceed_credits`` and ``credits_must_not_exceed_debits`` off, the defaults), so a
balance may go negative and the scenarios measure transfers, not refusals. Each pattern has its own
accounts, so one scenario's contention never spills into another's rows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field

import aiohttp

from cli.bench.platform import BenchPlatform

UNIFORM_ACCOUNTS = 10_000
HOT_SOURCES = 10
CONTENDED_ACCOUNTS = 10
CURRENCY = "USD"


@dataclass
class Fixture:
    tenant_id: str
    token: str
    internal_token: str
    uniform: list[str] = field(default_factory=list)
    hot_sources: list[str] = field(default_factory=list)
    hot_sink: str = ""
    contended: list[str] = field(default_factory=list)

    def gateway_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def ledger_headers(self) -> dict[str, str]:
        return {"X-Internal-Token": self.internal_token, "X-Tenant-Id": self.tenant_id}


async def _create_accounts(
    http: aiohttp.ClientSession, ledger_url: str, headers: dict[str, str], ids: list[str], concurrency: int = 16
) -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for account_id in ids:
        queue.put_nowait(account_id)

    async def worker() -> None:
        while not queue.empty():
            account_id = queue.get_nowait()
            body = {"id": account_id, "currency": CURRENCY}
            async with http.post(f"{ledger_url}/v1/accounts", json=body, headers=headers) as response:
                if response.status not in (200, 201):
                    raise RuntimeError(f"creating account failed: {response.status} {await response.text()}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _prepare(platform: BenchPlatform, accounts: int) -> Fixture:
    created = json.loads(platform.admin("create-tenant", f"bench-{platform.run_id}"))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        async with http.post(f"{platform.gateway.url}/v1/sessions", json={"api_key": created["api_key"]}) as response:
            if response.status != 201:
                raise RuntimeError(f"login failed: {response.status} {await response.text()}")
            token = (await response.json())["token"]
        fixture = Fixture(created["tenant_id"], token, platform.env["INTERNAL_TOKEN"])
        fixture.uniform = [str(uuid.uuid4()) for _ in range(accounts)]
        fixture.hot_sources = [str(uuid.uuid4()) for _ in range(HOT_SOURCES)]
        fixture.hot_sink = str(uuid.uuid4())
        fixture.contended = [str(uuid.uuid4()) for _ in range(CONTENDED_ACCOUNTS)]
        everything = [*fixture.hot_sources, fixture.hot_sink, *fixture.contended, *fixture.uniform]
        await _create_accounts(http, platform.ledger.url, fixture.ledger_headers(), everything)
    return fixture


def prepare(platform: BenchPlatform, accounts: int = UNIFORM_ACCOUNTS) -> Fixture:
    return asyncio.run(_prepare(platform, accounts))
