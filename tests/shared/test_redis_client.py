"""``open_redis`` after the server restarts: pooled connections whose server has gone are
reconnected before use, so the first requests after a Redis restart (an ElastiCache failover) do
not fail; and a connection whose server was demoted to a replica is closed on its first
``READONLY``, so its next use connects to the endpoint again.

Each test starts its own Redis, fills the client's pool with connections, restarts the server on
the same port and then asks for as many commands at once as the pool holds, so every pooled
connection is taken. The control shows that redis-py's default client fails exactly there (its
maintenance notifications turn the pool's check off; see shared/redis_client.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ReadOnlyError

from cli.launcher import Helper
from shared.redis_client import open_redis
from shared.settings import RedisSettings, Settings
from tests.shared.conftest import private_redis
from tests.support.processes import free_port

POOLED = 8
"""Connections put in the pool before the restart, and commands sent at once after it."""


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Helper]:
    with private_redis(tmp_path) as redis:
        yield redis


async def _after_restart(client: Redis, server: Helper) -> list[object]:
    """The results of :data:`POOLED` commands at once, sent after the server restarted under a
    pool of :data:`POOLED` connections made before."""
    await client.set("k", "v")
    await asyncio.gather(*(client.get("k") for _ in range(POOLED)))
    assert len(client.connection_pool._available_connections) == POOLED  # all pooled, all idle
    server.stop()
    server.start()
    await asyncio.sleep(0.2)  # the old connections' end of stream has reached the client
    return list(await asyncio.gather(*(client.get("k") for _ in range(POOLED)), return_exceptions=True))


async def test_pooled_connections_survive_a_server_restart(redis_server: Helper) -> None:
    client = open_redis(Settings(redis=RedisSettings(url=f"redis://127.0.0.1:{redis_server.port}/0")))
    try:
        results = await _after_restart(client, redis_server)
    finally:
        await client.aclose()
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    assert not failures, failures
    assert results == [None] * POOLED  # a fresh server without persistence: the key is gone


async def test_control_redis_py_defaults_fail_after_a_restart(redis_server: Helper) -> None:
    """Positive control: the same steps with redis-py's defaults fail, so the test above would
    catch the setting being lost. If this starts passing, redis-py checks pooled connections again
    whatever the notifications, and shared/redis_client.py's reason for the setting is gone."""
    client = Redis.from_url(f"redis://127.0.0.1:{redis_server.port}/0", socket_timeout=1)
    try:
        results = await _after_restart(client, redis_server)
    finally:
        await client.aclose()
    assert any(isinstance(r, BaseException) for r in results), results


async def test_a_connection_to_a_demoted_primary_is_closed_on_readonly(redis_server: Helper) -> None:
    """The server is made a replica (of a port nothing listens on) while the client's connection
    stays open, as an old primary kept up by a failover: the write answers READONLY, and the
    connection that got it is not used again (the next command comes on a new one)."""
    client = open_redis(Settings(redis=RedisSettings(url=f"redis://127.0.0.1:{redis_server.port}/0")))
    admin = Redis(host="127.0.0.1", port=redis_server.port)
    try:
        before = await client.client_id()
        await admin.replicaof("127.0.0.1", str(free_port()))
        with pytest.raises(ReadOnlyError):
            await client.set("k", "v")
        await admin.replicaof("NO", "ONE")  # in AWS, the endpoint now names the new primary
        assert await client.set("k", "v")
        assert await client.client_id() != before  # one connection, reconnected after READONLY
    finally:
        await client.aclose()
        await admin.aclose()
