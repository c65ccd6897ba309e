"""The gateway's calls to the ledger: forward a public request unchanged, for one tenant.

Method, path, query string and body bytes go through as they are; the tenant comes only from the
authenticated session (``X-Tenant-Id``), never from the client, together with the internal
credential, the request id and the trace header (added by :class:`shared.http.ServiceClient`).
A ledger 503 (its database down) passes through with its ``Retry-After``; any other 5xx or an
unreachable ledger becomes 503 ``unavailable`` here.
"""

from __future__ import annotations

import logging

from shared.errors import PROBLEM_MEDIA_TYPE, unavailable
from shared.http import TENANT_HEADER, ServiceClient, UpstreamResponse, UpstreamUnavailable

log = logging.getLogger(__name__)


class Ledger:
    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def forward(
        self, method: str, path: str, query: str, body: bytes, content_type: str | None, tenant_id: str
    ) -> UpstreamResponse:
        headers = {TENANT_HEADER: tenant_id}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            response = await self.client.request(method, path, body=body or None, query=query, headers=headers)
        except UpstreamUnavailable as exc:
            raise exc.to_problem() from exc
        if response.status >= 500:
            if response.status == 503 and response.content_type.startswith(PROBLEM_MEDIA_TYPE):
                if response.retry_after is None:
                    return UpstreamResponse(503, response.body, response.content_type, "1")
                return response
            log.error("ledger failed", extra={"status": response.status})
            raise unavailable("the ledger service is unavailable; retry later")
        return response
