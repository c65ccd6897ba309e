"""The webhook endpoints API (docs/api.md section 12): create, list, get, delete, enable; bad input
and URLs that would reach private addresses are refused with nothing stored.

Two ledger processes: one that allows private URLs (as tests and local demos do) and one with the
production rules (``WEBHOOK_ALLOW_PRIVATE_URLS=false``, ``WEBHOOK_REQUIRE_HTTPS=true``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import asyncpg
import pytest

from tests.ledger.conftest import client_for
from tests.ledger.test_webhooks_support import Receiver, create_endpoint, private_database, webhook_ledger_env
from tests.support.processes import ServiceProcess, free_port


@pytest.fixture(scope="module")
def ledgers() -> Iterator[dict[str, ServiceProcess]]:
    with private_database() as open_db, private_database() as strict_db:
        yield from _ledgers(open_db, strict_db)


@pytest.fixture
async def db(ledgers: dict[str, ServiceProcess]) -> AsyncIterator[asyncpg.Connection]:
    """The strict ledger's database (where the refused requests would have stored something)."""
    conn = await asyncpg.connect(ledgers["strict"].env["DATABASE_URL"])
    try:
        yield conn
    finally:
        await conn.close()


def _ledgers(open_db: str, strict_db: str) -> Iterator[dict[str, ServiceProcess]]:
    open_port, strict_port = free_port(), free_port()
    processes = {
        "open": ServiceProcess("ledger", open_port, webhook_ledger_env(open_db, open_port)),
        "strict": ServiceProcess(
            "ledger",
            strict_port,
            webhook_ledger_env(
                strict_db, strict_port, WEBHOOK_ALLOW_PRIVATE_URLS="false", WEBHOOK_REQUIRE_HTTPS="true"
            ),
        ),
    }
    for process in processes.values():
        process.start()
    yield processes
    for process in processes.values():
        process.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


async def test_create_get_list_delete(
    ledgers: dict[str, ServiceProcess], http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    client = client_for(http, ledgers["open"])
    created = await create_endpoint(client, receiver.url("a"), ["transfer.*", "account.created", "transfer.*"])
    assert set(created) == {"id", "url", "event_types", "secret", "created_at"}
    assert created["event_types"] == ["transfer.*", "account.created"]  # repeats dropped, order kept
    assert created["url"] == receiver.url("a")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["created_at"].endswith("Z")

    read = await client.call("GET", f"/v1/webhook-endpoints/{created['id']}")
    assert read.status == 200
    # The secret is shown once; a read has the status instead.
    assert read.body == {**{k: v for k, v in created.items() if k != "secret"}, "status": "enabled"}

    others = [await create_endpoint(client, receiver.url(f"p{i}"), ["account.*"]) for i in range(2)]
    first = await client.call("GET", "/v1/webhook-endpoints", params={"limit": "2"})
    assert first.status == 200 and first.body["next_cursor"]
    second = await client.call(
        "GET", "/v1/webhook-endpoints", params={"limit": "2", "cursor": first.body["next_cursor"]}
    )
    listed = [e["id"] for e in first.body["data"] + second.body["data"]]
    assert listed == [created["id"], *(o["id"] for o in others)] and second.body["next_cursor"] is None
    assert all("secret" not in e for e in first.body["data"] + second.body["data"])

    deleted = await client.call("DELETE", f"/v1/webhook-endpoints/{created['id']}")
    assert deleted.status == 204 and deleted.raw == b""
    gone = await client.call("GET", f"/v1/webhook-endpoints/{created['id']}")
    assert gone.status == 404 and gone.code == "webhook_endpoint_not_found"
    again = await client.call("DELETE", f"/v1/webhook-endpoints/{created['id']}")
    assert again.status == 404 and again.code == "webhook_endpoint_not_found"


async def test_unknown_and_other_tenants_endpoints_are_not_found(
    ledgers: dict[str, ServiceProcess], http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    owner = client_for(http, ledgers["open"])
    stranger = client_for(http, ledgers["open"])
    endpoint = await create_endpoint(owner, receiver.url("mine"), ["account.created"])
    for endpoint_id in (endpoint["id"], str(uuid.uuid4())):
        for method, suffix in [("GET", ""), ("DELETE", ""), ("POST", "/enable"), ("GET", "/deliveries")]:
            reply = await stranger.call(method, f"/v1/webhook-endpoints/{endpoint_id}{suffix}")
            assert reply.status == 404 and reply.code == "webhook_endpoint_not_found", (method, suffix, reply.body)
    assert (await stranger.call("GET", "/v1/webhook-endpoints")).body["data"] == []
    assert (await owner.call("GET", f"/v1/webhook-endpoints/{endpoint['id']}")).status == 200
    malformed = await owner.call("GET", "/v1/webhook-endpoints/not-a-uuid")
    assert malformed.status == 400 and malformed.body["errors"][0]["field"] == "endpoint_id"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://93.184.215.14/hook", "event_types": ["transfer.made"]}, "event_types[0]"),
        ({"url": "https://93.184.215.14/hook", "event_types": ["account.created", "**"]}, "event_types[1]"),
        ({"url": "https://93.184.215.14/hook", "event_types": ["account.created"] * 17}, "event_types"),
        ({"url": "https://93.184.215.14/hook", "event_types": ["transfers.*"]}, "event_types[0]"),
        ({"url": "https://93.184.215.14/hook", "event_types": []}, "event_types"),
        ({"url": "https://93.184.215.14/hook"}, "event_types"),
        ({"url": "not a url", "event_types": ["account.created"]}, "url"),
        ({"url": "/relative/path", "event_types": ["account.created"]}, "url"),
        ({"url": "ftp://93.184.215.14/hook", "event_types": ["account.created"]}, "url"),
        ({"url": "https:///no-host", "event_types": ["account.created"]}, "url"),
        ({"url": "https://user:pw@93.184.215.14/", "event_types": ["account.created"]}, "url"),
        ({"url": "https://93.184.215.14:99999/", "event_types": ["account.created"]}, "url"),
        ({"url": "", "event_types": ["account.created"]}, "url"),
        ({"url": 7, "event_types": ["account.created"]}, "url"),
    ],
)
async def test_bad_input_is_400_naming_the_field_and_stores_nothing(
    ledgers: dict[str, ServiceProcess], http: aiohttp.ClientSession, db: asyncpg.Connection, body: dict, field: str
) -> None:
    tenant = str(uuid.uuid4())
    client = client_for(http, ledgers["strict"], tenant)
    reply = await client.call("POST", "/v1/webhook-endpoints", body)
    assert reply.status == 400 and reply.code == "invalid_request", reply.body
    assert field in [e.get("field") for e in reply.body["errors"]], reply.body
    assert await db.fetchval("SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $1", uuid.UUID(tenant)) == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",  # a name resolving to loopback
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.5.4/hook",
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://169.254.169.254/latest/meta-data/",  # link-local: the instance metadata service
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",  # multicast
        "https://240.0.0.1/hook",  # reserved
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "https://[2002:a00:1::]/hook",  # 6to4 of 10.0.0.1
        "https://2130706433/hook",  # 127.0.0.1 as one number (resolved by the system)
    ],
)
async def test_private_addresses_are_refused(
    ledgers: dict[str, ServiceProcess], http: aiohttp.ClientSession, db: asyncpg.Connection, url: str
) -> None:
    tenant = str(uuid.uuid4())
    reply = await client_for(http, ledgers["strict"], tenant).call(
        "POST", "/v1/webhook-endpoints", {"url": url, "event_types": ["transfer.*"]}
    )
    assert reply.status == 400 and reply.code == "invalid_request", reply.body
    assert reply.body["errors"][0]["field"] == "url"
    assert await db.fetchval("SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $1", uuid.UUID(tenant)) == 0


async def test_https_required_and_public_addresses_accepted(
    ledgers: dict[str, ServiceProcess], http: aiohttp.ClientSession
) -> None:
    client = client_for(http, ledgers["strict"])
    plain = await client.call(
        "POST", "/v1/webhook-endpoints", {"url": "http://93.184.215.14/h", "event_types": ["transfer.*"]}
    )
    assert plain.status == 400 and "https" in plain.body["detail"]
    # Positive control: the same rules accept a public address (a literal: the tests have no DNS).
    for url in ["https://93.184.215.14/hook", "https://[2606:4700::1111]:8443/hook?x=1"]:
        created = await create_endpoint(client, url, ["transfer.*"])
        assert (await client.call("DELETE", f"/v1/webhook-endpoints/{created['id']}")).status == 204
    # The other process allows private URLs and plain http, as its settings say.
    assert (await create_endpoint(client_for(http, ledgers["open"]), "http://127.0.0.1:9/h", ["transfer.*"]))["id"]
