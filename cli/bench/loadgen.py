"""The load generator: ``python -m cli.bench.loadgen`` reads one JSON config on stdin.

It runs in its own process (so its CPU is not the server's, and is measured: see ``cpu``), on
uvloop, with a deliberately lean HTTP/1.1 client: keep-alive connections opened before the clock
starts, request bytes built by hand, responses parsed by httptools (the C parser uvicorn uses).
An aiohttp client costs several times more CPU per request, which on a 2-core machine is CPU the
server under test does not get.

Modes:

- ``closed``: ``connections`` clients, each sending its next request when the previous answered;
- ``open``: requests are scheduled at a fixed ``rate`` whatever the server does, spread over
  ``connections`` connections, and each latency is measured from the request's *scheduled* start,
  so queueing in the client counts (the coordinated-omission correction).

Latencies go into an HdrHistogram (microseconds, 3 significant digits). Only requests completed
(closed) or scheduled (open) after ``warmup`` seconds count. Progress goes to stderr as lines
``progress <elapsed_s> <transfers_ok> <errors>``; the result is one JSON object on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import socket
import sys
import time
import uuid
from collections import Counter
from typing import Any, cast

import httptools
import msgspec
from hdrh.histogram import HdrHistogram

TIMEOUT_CODE = "timeout"
CONNECTION_CODE = "connection_error"


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self.open = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad response: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        body = b"".join(self.body)
        self.body = []
        if not self.parser.should_keep_alive() and self.transport is not None:
            self.open = False
            self.transport.close()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._fail(ConnectionError("connection closed"))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def request(self, data: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


class Bodies:
    """Request bodies of one scenario: random distinct pairs of ``accounts`` (uniform, contended), or hot
    (one of ``accounts`` -> ``hot_sink``)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.random = random.Random(config.get("seed"))
        self.accounts = [a.encode() for a in config["accounts"]]
        self.sink = config["hot_sink"].encode() if config.get("hot_sink") else None
        self.batch_size = int(config.get("batch_size") or 0)
        self.currency = config.get("currency", "USD").encode()

    def transfer(self) -> bytes:
        n = len(self.accounts)
        if self.sink is not None:
            debit, credit = self.accounts[self.random.randrange(n)], self.sink
        else:
            i = self.random.randrange(n)
            j = self.random.randrange(n - 1)
            debit, credit = self.accounts[i], self.accounts[j + 1 if j >= i else j]
        return b'{"id":"%s","debit_account_id":"%s","credit_account_id":"%s","amount":1,"currency":"%s"}' % (
            str(uuid.uuid4()).encode(),
            debit,
            credit,
            self.currency,
        )

    def next(self) -> bytes:
        if not self.batch_size:
            return self.transfer()
        items = b",".join(self.transfer() for _ in range(self.batch_size))
        return b'{"atomic":false,"transfers":[' + items + b"]}"


class Tally:
    """Counts and latencies inside the measurement window."""

    def __init__(self) -> None:
        self.histogram = HdrHistogram(1, 120_000_000, 3)
        self.requests = 0
        self.transfers_ok = 0
        self.errors: Counter[str] = Counter()
        self.total_ok = 0  # for the progress line, warm-up included
        self.total_errors = 0
        self.timeline: dict[int, list[int]] = {}
        """Per second since the start (by completion): [transfers ok, errors, worst latency us]."""

    def second(self, at: int, ok: int, errors: int, latency_us: int) -> None:
        bucket = self.timeline.setdefault(at, [0, 0, 0])
        bucket[0] += ok
        bucket[1] += errors
        bucket[2] = max(bucket[2], latency_us)

    def record(self, status: int, body: bytes, latency_us: int, batch: bool, counted: bool, second: float) -> None:
        ok, errors = _outcomes(status, body, batch)
        self.second(int(second), ok, sum(errors.values()), latency_us)
        self.total_ok += ok
        self.total_errors += sum(errors.values())
        if not counted:
            return
        self.requests += 1
        self.transfers_ok += ok
        self.errors.update(errors)
        self.histogram.record_value(max(1, latency_us))

    def failure(self, code: str, counted: bool, second: float) -> None:
        self.second(int(second), 0, 1, 0)
        self.total_errors += 1
        if counted:
            self.requests += 1
            self.errors[code] += 1


def _outcomes(status: int, body: bytes, batch: bool) -> tuple[int, Counter[str]]:
    """(transfers applied, errors by code) of one response."""
    errors: Counter[str] = Counter()
    if batch and status == 200:
        ok = 0
        for item in msgspec.json.decode(body).get("results", []):
            if item.get("status") == 201:
                ok += 1
            else:
                errors[(item.get("error") or {}).get("code") or f"http_{item.get('status')}"] += 1
        return ok, errors
    if status == 201:
        return 1, errors
    try:
        code = msgspec.json.decode(body).get("code") or f"http_{status}"
    except (msgspec.DecodeError, AttributeError):
        code = f"http_{status}"
    errors[str(code)] += 1
    return 0, errors


async def _connect(host: str, port: int, count: int) -> list[Connection]:
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(count):
        _, protocol = await loop.create_connection(Connection, host, port)
        connections.append(protocol)
    return connections


class LoadGenerator:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.host, self.port = config["host"], int(config["port"])
        self.path = config["path"]
        self.duration = float(config["duration"])
        self.warmup = float(config.get("warmup", 0.0))
        self.timeout = float(config.get("timeout", 30.0))
        self.batch = bool(config.get("batch_size"))
        self.bodies = Bodies(config)
        headers = {"Host": f"{self.host}:{self.port}", "Content-Type": "application/json", **config.get("headers", {})}
        self.head = (f"POST {self.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())).encode()
        self.tally = Tally()
        self.start = 0.0

    def _request_bytes(self) -> bytes:
        body = self.bodies.next()
        return self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body

    async def _send(self, connections: list[Connection], index: int, scheduled: float, counted_from: float) -> None:
        """Send one request on ``connections[index]`` (reconnecting if needed) and record it."""
        data = self._request_bytes()
        connection = connections[index]
        try:
            if not connection.open:
                connection = connections[index] = (await _connect(self.host, self.port, 1))[0]
            status, body = await asyncio.wait_for(connection.request(data), self.timeout)
        except TimeoutError:
            connection.open = False
            if connection.transport is not None:
                connection.transport.close()
            self.tally.failure(TIMEOUT_CODE, scheduled >= counted_from, time.perf_counter() - self.start)
            return
        except OSError:
            self.tally.failure(CONNECTION_CODE, scheduled >= counted_from, time.perf_counter() - self.start)
            await asyncio.sleep(0.05)
            return
        done = time.perf_counter()
        counted = (done if self.config["mode"] == "closed" else scheduled) >= counted_from
        if self.config["mode"] == "closed":
            counted = counted and done <= self.start + self.duration
        self.tally.record(status, body, int((done - scheduled) * 1e6), self.batch, counted, done - self.start)

    async def _closed_worker(self, connections: list[Connection], index: int, deadline: float) -> None:
        counted_from = self.start + self.warmup
        while time.perf_counter() < deadline:
            await self._send(connections, index, time.perf_counter(), counted_from)

    async def _open_worker(self, connections: list[Connection], index: int, queue: asyncio.Queue[float | None]) -> None:
        counted_from = self.start + self.warmup
        while True:
            scheduled = await queue.get()
            if scheduled is None:
                return
            await self._send(connections, index, scheduled, counted_from)

    async def _schedule(self, queue: asyncio.Queue[float | None], workers: int, deadline: float) -> int:
        interval = 1.0 / float(self.config["rate"])
        sent = 0
        while True:
            scheduled = self.start + sent * interval
            if scheduled >= deadline:
                break
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(scheduled)
            sent += 1
        for _ in range(workers):
            queue.put_nowait(None)
        return sent

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            elapsed = time.perf_counter() - self.start
            sys.stderr.write(f"progress {elapsed:.1f} {self.tally.total_ok} {self.tally.total_errors}\n")
            sys.stderr.flush()

    async def run(self) -> dict[str, Any]:
        count = int(self.config["connections"])
        connections = await _connect(self.host, self.port, count)
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        self.start = time.perf_counter()
        deadline = self.start + self.duration
        grace = float(self.config.get("grace", 10.0))
        progress = asyncio.create_task(self._progress())
        scheduled = 0
        if self.config["mode"] == "closed":
            tasks = [asyncio.create_task(self._closed_worker(connections, i, deadline)) for i in range(count)]
        else:
            queue: asyncio.Queue[float | None] = asyncio.Queue()
            tasks = [asyncio.create_task(self._open_worker(connections, i, queue)) for i in range(count)]
            scheduled = await self._schedule(queue, count, deadline)
        done, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.perf_counter()) + grace)
        end = time.perf_counter()
        for task in done:
            if task.exception() is not None:
                raise RuntimeError("a load generator worker failed") from task.exception()
        for task in pending:
            task.cancel()
        unsent = 0
        if self.config["mode"] == "open":
            while not queue.empty():
                unsent += queue.get_nowait() is not None
            if unsent or pending:
                self.tally.errors["not_completed"] += unsent + len(pending)
        progress.cancel()
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()
        return self._result(usage0, usage1, end, scheduled)

    def _result(self, usage0: Any, usage1: Any, end: float, scheduled: int) -> dict[str, Any]:
        window = self.duration - self.warmup
        cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
        wall = end - self.start
        h = self.tally.histogram
        count = h.get_total_count()

        def ms(value: float) -> float:
            return round(value / 1000.0, 3)

        return {
            "mode": self.config["mode"],
            "connections": int(self.config["connections"]),
            "rate": self.config.get("rate"),
            "scheduled": scheduled,
            "window_s": round(window, 3),
            "requests": self.tally.requests,
            "transfers_ok": self.tally.transfers_ok,
            "transfers_per_s": round(self.tally.transfers_ok / window, 1),
            "requests_per_s": round(self.tally.requests / window, 1),
            "errors": dict(self.tally.errors),
            "latency_ms": {
                "p50": ms(h.get_value_at_percentile(50)) if count else None,
                "p99": ms(h.get_value_at_percentile(99)) if count else None,
                "p99.9": ms(h.get_value_at_percentile(99.9)) if count else None,
                "max": ms(h.get_max_value()) if count else None,
                "mean": ms(h.get_mean_value()) if count else None,
            },
            "timeline": [
                {"second": t, "transfers_ok": v[0], "errors": v[1], "max_latency_ms": ms(v[2])}
                for t, v in sorted(self.tally.timeline.items())
            ],
            "loadgen": {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "cpu_percent": round(100 * cpu / wall, 1)},
        }


def main() -> int:
    config = msgspec.json.decode(sys.stdin.buffer.read())
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    result = asyncio.run(LoadGenerator(config).run())
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
