"""A small aiohttp client for tests: JSON in, (status, decoded body, headers) out."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from multidict import CIMultiDict


@dataclass
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]  # case-insensitive
    raw: bytes = b""

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


@dataclass
class ApiClient:
    """Calls one service. ``headers`` go on every request (credentials, tenant)."""

    session: aiohttp.ClientSession
    base_url: str
    headers: dict[str, str] = field(default_factory=dict)

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        all_headers = {**self.headers, **(headers or {})}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        async with self.session.request(
            method, self.base_url + path, data=data, headers=all_headers, params=params
        ) as response:
            content = await response.read()
            try:
                decoded = json.loads(content) if content else None
            except ValueError:
                decoded = content.decode(errors="replace")
            return Reply(response.status, decoded, CIMultiDict(response.headers), content)

    async def create_account(self, currency: str = "USD", **fields: Any) -> dict[str, Any]:
        reply = await self.call("POST", "/v1/accounts", {"currency": currency, **fields})
        assert reply.status == 201, reply.body
        return dict(reply.body)

    async def transfer(self, debit: str, credit: str, amount: int, currency: str = "USD", **fields: Any) -> Reply:
        body = {
            "id": fields.pop("id", str(uuid.uuid4())),
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": amount,
            "currency": currency,
            **fields,
        }
        return await self.call("POST", "/v1/transfers", body)
