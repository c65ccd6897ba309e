"""The fault suite's own platform: the usual processes on a private PostgreSQL cluster and Redis.

The suite restarts PostgreSQL and Redis, so neither may be the machine's shared server (other test
runs use those at the same time): :class:`~tests.support.pgcluster.PrivatePostgres` is a cluster
of its own on a free port, and :class:`~tests.support.platform.Platform` always runs a private
Redis. Both live only as long as this module's tests.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from services.ledger.migrate import migrate
from tests.support.pgcluster import PrivatePostgres
from tests.support.platform import Platform

FAULT_SETTINGS = {
    # A claim left behind by a killed gateway lapses after this long (the default is 60 s); it
    # stays longer than UPSTREAM_TIMEOUT_SECONDS (5) so a live request never loses its claim.
    "IDEMPOTENCY_LEASE_SECONDS": "8",
    "EXPIRY_SWEEP_INTERVAL_SECONDS": "0.2",
    "LOG_LEVEL": "WARNING",
}


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres().init()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def fault_platform(private_postgres: PrivatePostgres) -> Iterator[Platform]:
    database_url = private_postgres.url("ledger")
    asyncio.run(migrate(database_url))
    with Platform(database_url, f"faults:{uuid.uuid4().hex[:8]}:", overrides=FAULT_SETTINGS).serving() as platform:
        yield platform
