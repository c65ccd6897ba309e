"""Bounded long-polls of ``GET /v1/events?wait=`` (services/gateway/long_poll.py, docs/events.md).

Through a real gateway process with small caps (4 waiting polls, 2 per tenant): polls past a cap are
answered at once (their page when they have events, else 429 ``rate_limited`` with ``Retry-After``)
while transfers and ordinary reads go through; the polls within the caps keep waiting and are woken
by a commit; a slot freed is taken again (the positive control: the refusals came from the caps).
In process: the waiting polls use a pool of their own, bounded by the cap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import aiohttp
import pytest

from services.gateway.app import Components
from services.gateway.long_poll import LongPolls, has_events, requested_wait, without_wait
from shared.errors import ProblemError
from shared.settings import GatewaySettings, Settings
from tests.support.api import Api, Reply, Tenant
from tests.support.platform import Platform, quick_tenant
from tests.support.processes import ServiceProcess

MAX, PER_TENANT = 4, 2
NOTHING = 10**9
"""An ``after`` no test tenant reaches: its page is empty whatever commits meanwhile."""
HOLD = 30
"""The ``wait`` of the polls that take slots: the longest there is, so they outlast the steps that
need them waiting even on a loaded machine."""


def _feed(after: int, wait: int = HOLD) -> str:
    return f"/v1/events?after={after}&wait={wait}"


async def _take_slots(
    start: Callable[[], asyncio.Future[Reply]], count: int, whose: str
) -> list[asyncio.Future[Reply]]:
    """``count`` polls that hold slots (started by ``start``, with nothing after their ``after``).

    ``count + 1`` alike polls are started at once. They reach the slot check in any order and at any
    time, but the one left over once ``count`` of them hold slots is refused at once (429 by
    ``whose`` cap) while those keep waiting: so the first to finish must be that refusal, and the
    ``count`` still waiting are the ones holding slots (nothing else of theirs is in flight). No
    assumption about how long a request takes to get there."""
    polls = [start() for _ in range(count + 1)]
    done, waiting = await asyncio.wait(polls, return_when=asyncio.FIRST_COMPLETED)
    for poll in done:
        _refused(poll.result(), whose)
    assert len(waiting) == count, [poll.result() for poll in done]
    return [poll for poll in polls if poll in waiting]


def _still_waiting(*polls: asyncio.Future[Reply]) -> None:
    for poll in polls:
        assert not poll.done(), poll.result()


def _refused(reply: Reply, whose: str = "this server's") -> None:
    assert (reply.status, reply.code) == (429, "rate_limited"), reply
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.headers["Retry-After"] == "1"
    assert "RateLimit-Remaining" in reply.headers  # an authenticated answer like any other
    assert "long-poll" in reply.json["detail"] and f"({whose} limit)" in reply.json["detail"], reply


@pytest.fixture
def capped(platform: Platform) -> Iterator[ServiceProcess]:
    """A gateway of its own with the small caps, stopped after the test."""
    gateway = platform.extra_gateway(EVENTS_LONG_POLL_MAX=str(MAX), EVENTS_LONG_POLL_MAX_PER_TENANT=str(PER_TENANT))
    try:
        yield gateway
    finally:
        gateway.stop()


async def test_polls_past_the_caps_are_answered_at_once_and_transfers_go_through(
    platform: Platform, capped: ServiceProcess, http_client: aiohttp.ClientSession
) -> None:
    api = Api(http_client, capped.url)
    a, b, c = [await quick_tenant(platform, api) for _ in range(3)]
    for tenant in (a, b, c):
        await api.account(tenant)  # seq 1 of each tenant

    def poll(tenant: Tenant, path: str) -> asyncio.Future[Reply]:
        return asyncio.ensure_future(api.call("GET", path, token=tenant.token))

    # Within the caps: two of a's and two of b's wait (the server's four slots). a's third is
    # refused by the tenant's cap, b's third by the server's (full by then).
    a_polls = await _take_slots(lambda: poll(a, _feed(1)), PER_TENANT, "this tenant's")
    behind = await api.call("GET", _feed(0), token=a.token)  # past the cap too, but events are there
    assert behind.status == 200 and [e["seq"] for e in behind.json["data"]] == [1], behind
    b_polls = await _take_slots(lambda: poll(b, _feed(1)), PER_TENANT, "this server's")
    _still_waiting(*a_polls)
    # Many more polls than the cap, transfers and ordinary reads at the same time: every poll past
    # the cap is answered at once, and everything else goes through.
    bank, wallet = (await api.account(c, normal_balance="debit"))["id"], (await api.account(c))["id"]
    extra = asyncio.gather(*(api.call("GET", _feed(NOTHING), token=c.token) for _ in range(12)))
    transfers = asyncio.gather(*(api.transfer(c, bank, wallet, 5) for _ in range(20)))
    # Within 10 s: at once, not after waiting for a slot (the slots' holders wait 30 s).
    for reply in await asyncio.wait_for(extra, 10):
        _refused(reply)  # a poll given a slot would have been answered 200 [] after its whole wait
    done = await transfers
    assert [r.status for r in done] == [201] * 20, done
    w_encoded = await api.call("GET", f"/v1/events?after={NOTHING}&w%61it=5", token=c.token)  # still a wait
    _refused(w_encoded)
    now = await api.call("GET", f"/v1/events?after={NOTHING}&wait=0", token=c.token)  # no wait: never capped
    assert now.status == 200 and now.json["data"] == [], now
    entries = await api.call("GET", f"/v1/accounts/{wallet}", token=c.token)
    assert entries.status == 200 and entries.json["balances"]["posted"] == 100, entries
    bad = await api.call("GET", "/v1/events?after=3&wait=31", token=c.token)
    assert (bad.status, bad.code) == (400, "invalid_request"), bad
    # The four within the caps are still waiting, undisturbed: the slots were held throughout, so
    # nothing above was answered after waiting for one.
    _still_waiting(*a_polls, *b_polls)

    # A commit wakes a's polls; their slots are free again, and two of c's polls now wait in them (the
    # refusals were the caps', not a fault of the route); c's third finds the server full again.
    await api.account(a)
    for woken in await asyncio.wait_for(asyncio.gather(*a_polls), timeout=15):
        assert woken.status == 200 and [e["seq"] for e in woken.json["data"]] == [2], woken
    c_polls = await _take_slots(lambda: poll(c, _feed(23)), PER_TENANT, "this server's")
    _still_waiting(*b_polls)
    await api.account(c)
    await api.account(b)
    woken_c = await asyncio.wait_for(asyncio.gather(*c_polls), timeout=15)
    woken_b = await asyncio.wait_for(asyncio.gather(*b_polls), timeout=15)
    assert all(r.status == 200 and [e["seq"] for e in r.json["data"]] == [24] for r in woken_c), woken_c
    assert all(r.status == 200 and r.json["data"][0]["seq"] == 2 for r in woken_b), woken_b


async def test_a_tenant_cap_above_the_server_cap_is_the_server_cap(
    platform: Platform, http_client: aiohttp.ClientSession
) -> None:
    gateway = platform.extra_gateway(EVENTS_LONG_POLL_MAX="1", EVENTS_LONG_POLL_MAX_PER_TENANT="50")
    try:
        api = Api(http_client, gateway.url)
        tenant = await quick_tenant(platform, api)
        # Of two polls of one tenant, one is refused (the server's one slot is the tenant's cap too).
        (first,) = await _take_slots(
            lambda: asyncio.ensure_future(api.call("GET", _feed(0), token=tenant.token)), 1, "this server's"
        )
        await api.account(tenant)
        assert (await asyncio.wait_for(first, timeout=15)).status == 200
    finally:
        gateway.stop()


# -- in process ------------------------------------------------------------------------------------


def test_waiting_polls_have_a_pool_of_their_own_bounded_by_the_cap() -> None:
    components = Components(
        Settings(gateway=GatewaySettings(events_long_poll_max=7, events_long_poll_max_per_tenant=3))
    )
    gate = components.pipeline.long_poll["/v1/events"]
    assert isinstance(gate, LongPolls)
    assert (gate.max_waiting, gate.max_per_tenant) == (7, 3)
    assert gate.client.pool is components.long_poll_http
    assert gate.immediate.client is components.pipeline.ledger.client  # no wait: the ordinary client
    assert components.long_poll_http is not components.http
    assert components.long_poll_http.pool_size == 7


@pytest.mark.parametrize(
    ("query", "wait"),
    [
        ("", 0),
        ("after=3", 0),
        ("wait=0", 0),
        ("wait=00&after=1", 0),
        ("wait=5", 5),
        ("w%61it=7", 7),
        ("wait=0&wait=9", 9),
        ("wait=30", 30),
    ],
)
def test_the_requested_wait_is_read_as_the_ledger_reads_it(query: str, wait: int) -> None:
    assert requested_wait(query) == wait


@pytest.mark.parametrize("query", ["wait=31", "wait=", "wait=-1", "wait=1.5", "wait=0&wait=x", "wait=%2B5"])
def test_a_wait_the_ledger_would_refuse_is_400_naming_it(query: str) -> None:
    with pytest.raises(ProblemError) as refused:
        requested_wait(query)
    assert (refused.value.status, refused.value.field) == (400, "wait")


def test_the_immediate_read_drops_every_wait_and_keeps_the_rest() -> None:
    assert without_wait("after=3&wait=20&limit=5&w%61it=4") == "after=3&limit=5"
    assert requested_wait(without_wait("wait=30&wait=2")) == 0
    assert has_events(b'{"data":[{"seq":1}]}') and not has_events(b'{"data":[]}') and not has_events(b"<html>")
