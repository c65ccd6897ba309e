"""The gateway's calls to the ledger: forward a public request unchanged, for one tenant.

Single transfer writes go through the :class:`~services.gateway.coalescer.Coalescer` (one ledger
call for all that are concurrent) unless the request is being traced, whose spans need a call of
its own; everything else is one call each. Both answer the same way (:meth:`LedgerClient.checked`).

Method, path, query string and body bytes go through as they are; the tenant and the API key come
only from the authenticated session (``X-Tenant-Id``, ``X-Key-Id``), never from the client, together with the internal
credential, the request id and the trace header (added by :class:`shared.http.ServiceClient`).
A ledger 503 (its database down) passes through with its ``Retry-After``; any other 5xx or an
unreachable ledger becomes 503 ``unavailable`` here.
"""

from __future__ import annotations

import logging

from services.gateway.coalescer import Coalescer
from shared import tracing
from shared.errors import PROBLEM_MEDIA_TYPE, unavailable
from shared.http import KEY_HEADER, TENANT_HEADER, ServiceClient, UpstreamResponse, UpstreamUnavailable
from shared.transfer_group import GroupItem

log = logging.getLogger(__name__)


class LedgerClient:
    """The gateway's client of the ledger service: forwards one tenant's request, or coalesces a
    transfer write, and turns a ledger failure into the answer of the module docstring."""

    def __init__(self, client: ServiceClient, coalescer: Coalescer | None) -> None:
        self.client = client
        self.coalescer = coalescer

    async def write(self, item: GroupItem, method: str, path: str, query: str) -> UpstreamResponse:
        """A single transfer write (create, post, void): coalesced, unless tracing records it."""
        if self.coalescer is None or tracing.recording():
            content_type = item.content_type or None
            return await self.forward(method, path, query, item.body, content_type, item.tenant_id, item.key_id)
        try:
            response = await self.coalescer.submit(item)
        except UpstreamUnavailable as exc:
            raise exc.to_problem() from exc
        return self.checked(response)

    async def forward(
        self,
        method: str,
        path: str,
        query: str,
        body: bytes,
        content_type: str | None,
        tenant_id: str,
        key_id: str,
    ) -> UpstreamResponse:
        headers = {TENANT_HEADER: tenant_id, KEY_HEADER: key_id}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            response = await self.client.request(method, path, body=body or None, query=query, headers=headers)
        except UpstreamUnavailable as exc:
            raise exc.to_problem() from exc
        return self.checked(response)

    @staticmethod
    def checked(response: UpstreamResponse) -> UpstreamResponse:
        if response.status >= 500:
            if response.status == 503 and response.content_type.startswith(PROBLEM_MEDIA_TYPE):
                if response.retry_after is None:
                    return UpstreamResponse(503, response.body, response.content_type, "1")
                return response
            log.error("ledger failed", extra={"status": response.status})
            raise unavailable("the ledger service is unavailable; retry later")
        return response
