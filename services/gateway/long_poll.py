"""Bounded long-polls: ``GET /v1/events?wait=`` through the gateway (docs/events.md, "Long-polls").

A waiting poll holds an upstream connection for up to 30 s. Unbounded, enough of them would take
the connections every other route needs. So, per gateway process:

- a poll that asks to wait takes a slot: at most ``EVENTS_LONG_POLL_MAX`` at once, of which at
  most ``EVENTS_LONG_POLL_MAX_PER_TENANT`` for one tenant (one tenant's pollers cannot lock the
  others out);
- waiting polls reach the ledger through a pool of their own (``Components`` in :mod:`.app` gives
  it at most ``EVENTS_LONG_POLL_MAX`` connections), never the one transfers and every other route
  use; a call without ``wait`` (or ``wait=0``) is an ordinary read, on the ordinary pool and timeout;
- a poll without a slot does not wait. It is forwarded without its wait, and its page is the answer
  when it has events (exactly what the wait would have returned at once); an empty page becomes
  429 ``rate_limited`` with ``Retry-After`` instead, so a caught-up client backs off rather than
  spinning on immediate empty answers.

Invariant: a slot is taken and released in the same call (``finally``), so the counts are exactly
the polls in flight. ``wait`` is validated here as the ledger does (an integer 0-30, 400 naming it
otherwise), so what counts as waiting is what the ledger would wait for, however the query is spelt.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote_plus

import msgspec

from services.gateway.upstream import LedgerClient
from shared.errors import ErrorCode, ProblemError
from shared.http import ServiceClient, UpstreamResponse

MAX_WAIT_SECONDS = 30
"""The longest ``wait`` (docs/api.md section 12); the ledger refuses more, and so does this module."""

RETRY_AFTER_SECONDS = 1
"""``Retry-After`` of a refused poll: slots free up as soon as any waiting poll is answered."""

_INTEGER = re.compile(r"[0-9]{1,19}")  # the ledger's own test (services/ledger/event_routes.py)


class _Page(msgspec.Struct):
    data: list[msgspec.Raw]


_PAGE = msgspec.json.Decoder(_Page)


def requested_wait(query: str) -> int:
    """The longest ``wait`` the query asks for (0 without one); 400 ``invalid_request`` for a value
    the ledger would refuse. Names are decoded as the ledger decodes them (``w%61it`` is ``wait``)."""
    longest = 0
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name != "wait":
            continue
        if not _INTEGER.fullmatch(value) or int(value) > MAX_WAIT_SECONDS:
            raise ProblemError(
                ErrorCode.INVALID_REQUEST, f"wait must be an integer from 0 to {MAX_WAIT_SECONDS}", field="wait"
            )
        longest = max(longest, int(value))
    return longest


def without_wait(query: str) -> str:
    """The query string with every ``wait`` parameter dropped (the ledger's default is 0)."""
    return "&".join(part for part in query.split("&") if part and unquote_plus(part.split("=", 1)[0]) != "wait")


def has_events(body: bytes) -> bool:
    try:
        return bool(_PAGE.decode(body).data)
    except msgspec.DecodeError:
        return False


class LongPolls(LedgerClient):
    """The ledger client of ``GET /v1/events``: waits within the caps, through its own pool.

    It is a :class:`LedgerClient` over the long-poll client (timeout: the ordinary one plus the longest
    wait), so the pipeline forwards to it like to any ledger client; ``immediate`` is the ordinary
    client, for calls that do not wait."""

    def __init__(self, waiting: ServiceClient, immediate: LedgerClient, max_waiting: int, max_per_tenant: int) -> None:
        super().__init__(waiting, None)
        self.immediate = immediate
        self.max_waiting = max(max_waiting, 0)
        self.max_per_tenant = max(min(max_per_tenant, self.max_waiting), 0)
        self.waiting = 0
        self.by_tenant: dict[str, int] = {}

    def _take(self, tenant_id: str) -> bool:
        held = self.by_tenant.get(tenant_id, 0)
        if self.waiting >= self.max_waiting or held >= self.max_per_tenant:
            return False
        self.waiting += 1
        self.by_tenant[tenant_id] = held + 1
        return True

    def _release(self, tenant_id: str) -> None:
        self.waiting -= 1
        held = self.by_tenant[tenant_id] - 1
        if held:
            self.by_tenant[tenant_id] = held
        else:
            del self.by_tenant[tenant_id]

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
        if requested_wait(query) == 0:
            return await self.immediate.forward(method, path, query, body, content_type, tenant_id, key_id)
        if self._take(tenant_id):
            try:
                return await super().forward(method, path, query, body, content_type, tenant_id, key_id)
            finally:
                self._release(tenant_id)
        # Which cap refused it, as it was when refused (slots may free up during the read below).
        whose = "this server's" if self.waiting >= self.max_waiting else "this tenant's"
        page = await self.immediate.forward(method, path, without_wait(query), body, content_type, tenant_id, key_id)
        if page.status != 200 or has_events(page.body):
            return page  # events to read now, or the ledger's own refusal (a bad `after`, ...)
        raise ProblemError(
            ErrorCode.RATE_LIMITED,
            f"too many event long-polls are waiting ({whose} limit); nothing after `after` yet: "
            f"retry after Retry-After seconds",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
