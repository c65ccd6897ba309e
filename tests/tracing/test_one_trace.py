"""One public request is one trace across the gateway, the session service and the ledger.

The three services run as real processes exporting OTLP to the receiver of ``conftest.py``; a
request that needs all three (a transfer whose token is not in the gateway's Redis cache) must
yield one trace id, one root (the gateway's server span), and the parent links of the call graph.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from shared.session_cache import session_key, token_hash
from tests.support.api import Api, Tenant
from tests.support.platform import Platform, quick_tenant
from tests.tracing.collector import Receiver, Span

AMOUNT = 987_654_321


def alb_header() -> tuple[str, str]:
    """An ``X-Amzn-Trace-Id`` as the ALB writes it (a Root, no Parent), and its trace id in hex."""
    epoch, unique = f"{int(time.time()):08x}", secrets.token_hex(12)
    return f"Root=1-{epoch}-{unique}", epoch + unique


@pytest.fixture(scope="module")
async def api(traced: Platform) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        yield Api(http, traced.url)


@pytest.fixture(scope="module")
async def tenant(traced: Platform, api: Api) -> Tenant:
    return await quick_tenant(traced, api, "traced")


async def _forget_cached_session(platform: Platform, token: str) -> None:
    """Drop the token from the gateway's Redis cache: the next request asks the session service."""
    redis = Redis.from_url(platform.env["REDIS_URL"])
    try:
        await redis.delete(session_key(platform.env["REDIS_KEY_PREFIX"], token_hash(token)))
    finally:
        await redis.aclose()


def _by_id(spans: list[Span]) -> dict[str, Span]:
    return {s.span_id: s for s in spans}


def _one(spans: list[Span], **where: Any) -> Span:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in where.items())]
    assert len(found) == 1, (where, found)
    return found[0]


def _complete(spans: list[Span]) -> bool:
    names = {(s.service, s.kind, s.name) for s in spans}
    return {
        ("gateway", "SERVER", "POST /v1/transfers"),
        ("session", "SERVER", "POST /internal/sessions/introspect"),
        ("ledger", "SERVER", "POST /v1/transfers"),
        ("ledger", "CLIENT", "COMMIT"),
    } <= names and any(s.attributes.get("rpc.service") == "DynamoDB" for s in spans)


async def test_a_transfer_is_one_trace_across_the_three_services(
    traced: Platform, api: Api, tenant: Tenant, receiver: Receiver
) -> None:
    bank = await api.account(tenant, normal_balance="debit")
    wallet = await api.account(tenant)
    await _forget_cached_session(traced, tenant.token)
    header, trace_id = alb_header()
    transfer_id = str(uuid.uuid4())
    memo = f"memo-{uuid.uuid4().hex}"
    reply = await api.call(
        "POST",
        "/v1/transfers",
        json={
            "id": transfer_id,
            "debit_account_id": bank["id"],
            "credit_account_id": wallet["id"],
            "amount": AMOUNT,
            "currency": "USD",
            "metadata": {"memo": memo},
        },
        token=tenant.token,
        headers={"X-Amzn-Trace-Id": header, "Idempotency-Key": f"key-{uuid.uuid4().hex}"},
    )
    assert reply.status == 201, reply

    spans = receiver.wait_for(_complete, trace_id=trace_id)
    spans = receiver.wait_for(lambda found: len(found) == len(spans), trace_id=trace_id, timeout=1.0)
    assert {s.service for s in spans} == {"gateway", "session", "ledger"}
    by_id = _by_id(spans)

    # One root: the gateway's server span, keeping the ALB's Root as trace id; every other span's
    # parent is in the trace.
    roots = [s for s in spans if s.parent_id not in by_id]
    assert [(r.service, r.kind, r.name, r.parent_id) for r in roots] == [
        ("gateway", "SERVER", "POST /v1/transfers", "")
    ]
    root = roots[0]

    # The call graph: gateway -> (redis, session, ledger); session -> (DynamoDB, redis);
    # ledger -> ledger.write -> ledger.group -> (PostgreSQL statements, ledger.rules).
    introspect = _one(spans, service="gateway", kind="CLIENT", name="POST /internal/sessions/introspect")
    forward = _one(spans, service="gateway", kind="CLIENT", name="POST /v1/transfers")
    assert introspect.parent_id == forward.parent_id == root.span_id
    session = _one(spans, service="session", kind="SERVER")
    ledger = _one(spans, service="ledger", kind="SERVER")
    assert session.parent_id == introspect.span_id
    assert ledger.parent_id == forward.span_id

    gateway_redis = [s for s in spans if s.service == "gateway" and s.attributes.get("db.system") == "redis"]
    assert len(gateway_redis) >= 2 and all(s.parent_id == root.span_id for s in gateway_redis)  # lookup, admit, finish
    dynamodb = [s for s in spans if s.attributes.get("rpc.service") == "DynamoDB"]
    assert dynamodb and all(s.service == "session" and s.parent_id == session.span_id for s in dynamodb)
    assert {s.attributes["rpc.method"] for s in dynamodb} == {"GetItem"}
    session_redis = [s for s in spans if s.service == "session" and s.attributes.get("db.system") == "redis"]
    assert session_redis and all(s.parent_id == session.span_id for s in session_redis)  # the cache fill

    write = _one(spans, service="ledger", name="ledger.write")
    group = _one(spans, service="ledger", name="ledger.group")
    rules = _one(spans, service="ledger", name="ledger.rules")
    assert write.parent_id == ledger.span_id and group.parent_id == write.span_id
    assert rules.parent_id == group.span_id
    assert write.attributes["ledger.transfer_id"] == transfer_id
    assert write.attributes["ledger.operation"] == "create"
    assert group.attributes["ledger.group.size"] == 1 and group.attributes["ledger.group.operations"] == 1
    assert rules.attributes["ledger.rules.rejected"] == 0

    statements = [s for s in spans if s.attributes.get("db.system") == "postgresql"]
    assert statements and all(s.service == "ledger" and s.parent_id == group.span_id for s in statements)
    kinds = [s.attributes["db.operation"] for s in statements]
    assert {"BEGIN", "SELECT", "WITH", "COMMIT"} <= set(kinds)
    assert all(s.name == s.attributes["db.operation"] for s in statements)

    # Nothing but the transfer id identifies anything: no amount, account, tenant, metadata,
    # credential or header value in any attribute, and the transfer id only as ledger.transfer_id.
    secrets_ = [
        str(AMOUNT),
        bank["id"],
        wallet["id"],
        tenant.tenant_id,
        memo,
        tenant.token,
        tenant.api_key,
        traced.env["INTERNAL_TOKEN"],
        "Bearer",
    ]
    _assert_absent(spans, secrets_)
    holders = [(s.name, k) for s in spans for k, v in s.attributes.items() if transfer_id in str(v)]
    assert holders == [("ledger.write", "ledger.transfer_id")]
    for statement in statements:
        assert "db.statement.parameters" not in statement.attributes
        assert "$1" in statement.attributes["db.statement"] or statement.name in {"BEGIN", "COMMIT"}


def _assert_absent(spans: list[Span], values: list[str]) -> None:
    for span in spans:
        texts = [span.name, *(f"{k}={v}" for k, v in span.attributes.items()), *map(str, span.events)]
        for value in values:
            leaked = [t for t in texts if value in t]
            assert not leaked, f"{value!r} in {span}: {leaked}"


async def test_reads_name_routes_not_ids(traced: Platform, api: Api, tenant: Tenant, receiver: Receiver) -> None:
    account = await api.account(tenant, metadata={"owner": "someone"})
    header, trace_id = alb_header()
    reply = await api.call(
        "GET",
        f"/v1/accounts/{account['id']}/transfers?limit=5",
        token=tenant.token,
        headers={"X-Amzn-Trace-Id": header},
    )
    assert reply.status == 200, reply
    spans = receiver.wait_for(
        lambda found: {"gateway", "ledger"} <= {s.service for s in found if s.kind == "SERVER"}, trace_id=trace_id
    )
    names = {(s.service, s.kind, s.name) for s in spans}
    assert ("gateway", "SERVER", "GET /v1/accounts/{account_id}/transfers") in names
    assert ("gateway", "CLIENT", "GET /v1/accounts/{account_id}/transfers") in names
    assert ("ledger", "SERVER", "GET /v1/accounts/{account_id}/transfers") in names
    assert any(s.attributes.get("db.operation") == "SELECT" for s in spans)
    _assert_absent(spans, [account["id"], tenant.tenant_id, "someone", tenant.token, "limit=5"])


async def test_a_group_commit_links_the_traces_it_served(
    traced: Platform, api: Api, tenant: Tenant, receiver: Receiver
) -> None:
    bank = await api.account(tenant, normal_balance="debit")
    wallet = await api.account(tenant)
    for _ in range(5):  # concurrent requests on the same accounts queue up into groups
        replies = await asyncio.gather(*(api.transfer(tenant, bank["id"], wallet["id"], 1) for _ in range(40)))
        assert all(r.status == 201 for r in replies), replies
        ids = {r.json["id"] for r in replies}

        def served(found: list[Span], ids: set[str] = ids) -> bool:
            return ids <= {s.attributes.get("ledger.transfer_id") for s in found if s.name == "ledger.write"}

        spans = receiver.wait_for(served)
        groups = [s for s in spans if s.name == "ledger.group" and s.attributes["ledger.group.size"] > 1]
        if groups:
            break
    else:
        pytest.fail("40 concurrent transfers never shared a group commit")
    writes = {s.span_id: s for s in spans if s.name == "ledger.write"}
    group = groups[0]
    leader = writes[group.parent_id]
    assert group.trace_id == leader.trace_id
    assert len(group.links) == group.attributes["ledger.group.size"] - 1
    for trace_id, span_id in group.links:
        member = writes[span_id]
        assert member.trace_id == trace_id != group.trace_id
        assert (group.trace_id, group.span_id) in member.links
        assert member.attributes["ledger.group.size"] == group.attributes["ledger.group.size"]
        xray_id = f"1-{group.trace_id[:8]}-{group.trace_id[8:]}"
        assert member.attributes["ledger.group.trace_id"] == xray_id == leader.attributes["ledger.group.trace_id"]
    statements = [s for s in spans if s.parent_id == group.span_id and s.attributes.get("db.system") == "postgresql"]
    assert {"BEGIN", "COMMIT"} <= {s.name for s in statements}


async def test_no_credential_in_any_span(traced: Platform, api: Api, tenant: Tenant, receiver: Receiver) -> None:
    """Every span the module's requests produced (logins included): no key, token or credential."""
    await api.login(tenant.api_key)  # the API key travels in this request's body
    spans = receiver.wait_for(
        lambda found: any(s.name == "POST /internal/sessions" and s.kind == "SERVER" for s in found)
    )
    assert len(spans) > 20
    _assert_absent(
        spans,
        [
            tenant.api_key,
            tenant.api_key.split(".")[-1],
            tenant.token,
            traced.env["INTERNAL_TOKEN"],
            "Bearer",
            "Authorization",
            "authorization",
        ],
    )
