"""A small async HTTP client for tests that talk to the platform over real sockets."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
from multidict import CIMultiDictProxy


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def json(self) -> Any:
        return msgspec.json.decode(self.body) if self.body else None

    @property
    def code(self) -> str | None:
        decoded = self.json
        return decoded.get("code") if isinstance(decoded, dict) else None

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:300]!r})"


@dataclass
class Tenant:
    tenant_id: str
    key_id: str
    api_key: str
    token: str = ""


class Api:
    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        base_url: str | None = None,
    ) -> Reply:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        body = data
        if json is not None:
            body = msgspec.json.encode(json)
            all_headers.setdefault("Content-Type", "application/json")
        url = f"{base_url or self.base_url}{path}"
        async with self.http.request(method, url, data=body, headers=all_headers) as response:
            return Reply(response.status, response.headers, await response.read())

    async def login(self, api_key: str, base_url: str | None = None) -> str:
        reply = await self.call("POST", "/v1/sessions", json={"api_key": api_key}, base_url=base_url)
        assert reply.status == 201, reply
        token: str = reply.json["token"]
        return token

    async def account(self, tenant: Tenant, currency: str = "USD", **fields: Any) -> dict[str, Any]:
        reply = await self.call("POST", "/v1/accounts", json={"currency": currency, **fields}, token=tenant.token)
        assert reply.status == 201, reply
        account: dict[str, Any] = reply.json
        return account

    async def transfer(
        self, tenant: Tenant, debit: str, credit: str, amount: int, currency: str = "USD", **fields: Any
    ) -> Reply:
        body = {
            "id": str(uuid.uuid4()),
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": amount,
            "currency": currency,
            **fields,
        }
        return await self.call("POST", "/v1/transfers", json=body, token=tenant.token)
