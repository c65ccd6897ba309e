"""Platforms whose three service processes export their spans to an OTLP receiver in the test process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web

from tests.support.platform import Platform
from tests.support.processes import free_port
from tests.tracing.collector import Receiver


def _platform(database_url: str, redis_prefix: str, receiver: Receiver, **overrides: str) -> Platform:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # export within 50 ms, so tests need not wait long
        # Every request resolves its token in Redis (or the session service), so a trace shows the
        # whole path; the gateway's in-memory session cache (ADR 0028) would hide it.
        "SESSION_LOCAL_CACHE_SECONDS": "0",
        **overrides,
    }
    return Platform(database_url, redis_prefix, overrides=env)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def traced(database_url: str, redis_prefix: str, receiver: Receiver) -> Iterator[Platform]:
    """The whole platform with tracing on at 100% sampling, exporting to ``receiver``."""
    with _platform(database_url, redis_prefix, receiver, OTEL_TRACES_SAMPLER_ARG="1.0").serving() as platform:
        yield platform


@pytest.fixture(scope="module")
def untraced(database_url: str, redis_prefix: str, receiver: Receiver) -> Iterator[Platform]:
    """The platform with the receiver configured as endpoint but tracing switched off."""
    with _platform(database_url, redis_prefix, receiver, OTEL_TRACES_EXPORTER="none").serving() as platform:
        yield platform


@pytest.fixture(scope="module")
def sampled_out(database_url: str, redis_prefix: str, receiver: Receiver) -> Iterator[Platform]:
    """The platform with tracing on but a sampling ratio of 0: every request is decided unsampled."""
    with _platform(database_url, redis_prefix, receiver, OTEL_TRACES_SAMPLER_ARG="0").serving() as platform:
        yield platform


@pytest.fixture
async def fake_ledger() -> AsyncIterator[tuple[str, list[Any]]]:
    """A stand-in ledger recording the headers the gateway forwards."""
    seen: list[Any] = []

    async def live(_: web.Request) -> web.Response:
        return web.json_response({"status": "live"})

    async def accounts(request: web.Request) -> web.Response:
        seen.append(request.headers.copy())  # case-insensitive
        return web.json_response({"data": [], "next_cursor": None})

    app = web.Application()
    app.router.add_get("/health/live", live)
    app.router.add_get("/v1/accounts", accounts)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
def half_sampled(database_url: str, redis_prefix: str, receiver: Receiver) -> Iterator[Platform]:
    """The platform tracing half of the public requests."""
    with _platform(database_url, redis_prefix, receiver, OTEL_TRACES_SAMPLER_ARG="0.5").serving() as platform:
        yield platform
