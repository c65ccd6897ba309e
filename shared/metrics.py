"""Application metrics as CloudWatch Embedded Metric Format (EMF) lines, and their names.

The names below are the contract between the services (which emit them) and the observability
tier's dashboard and alarms (``stacks/``), which import them from here, so the two cannot drift.

Each process aggregates in memory and writes one EMF JSON object per dimension set to stdout every
``METRICS_INTERVAL_SECONDS`` (CloudWatch Logs extracts the metrics from the awslogs stream; no
agent and no API call on the request path). Latency is reported as up to 100 sampled values per
interval (EMF's per-line limit) plus exact counts, so percentiles are estimates under heavy load.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import time
from collections import defaultdict
from typing import Any, TextIO

import msgspec

NAMESPACE = "FinTechLedger"
"""CloudWatch namespace of every application metric."""

# -- metric names (dimension ``Service``; ``Code`` for errors) ------------------------------------
REQUESTS = "Requests"
"""Count of HTTP requests served, per service."""
LATENCY = "Latency"
"""Request latency in milliseconds, per service."""
TRANSFER_LATENCY = "TransferLatency"
"""Gateway: latency in milliseconds of ``POST /v1/transfers`` alone: the latency SLO's metric."""
ERRORS = "Errors"
"""Count of error responses, per service and stable error ``Code``."""
SERVER_ERRORS = "ServerErrors"
"""Count of 5xx responses per service (503 ``unavailable`` included): the alarmable error rate."""
TRANSFERS_COMMITTED = "TransfersCommitted"
"""Ledger: transfer operations committed (created, posted, voided), counted after COMMIT."""
GROUP_SIZE = "GroupSize"
"""Ledger: write requests per group-commit transaction."""
VERIFIER_DISCREPANCIES = "VerifierDiscrepancies"
"""Ledger: discrepancies the last verifier run found; 0 when consistent. Alarm on > 0."""
WEBHOOK_ENDPOINTS_FAILING = "WebhookEndpointsFailing"
"""Ledger: webhook endpoints in ``failing`` state (deliveries stopped), all tenants; alarm on > 0."""
WEBHOOK_DELIVERY_FAILURES = "WebhookDeliveryFailures"
"""Ledger: failed webhook delivery attempts (non-2xx, timeout, refused address), counted as logged."""

SERVICES = ("gateway", "ledger", "session")
MAX_VALUES_PER_LINE = 100

_encoder = msgspec.json.Encoder()


class _Samples:
    __slots__ = ("count", "values")

    def __init__(self) -> None:
        self.count = 0
        self.values: list[float] = []

    def add(self, value: float) -> None:
        # Reservoir sampling keeps a uniform sample of the interval in bounded memory.
        self.count += 1
        if len(self.values) < MAX_VALUES_PER_LINE:
            self.values.append(value)
        else:
            slot = random.randrange(self.count)
            if slot < MAX_VALUES_PER_LINE:
                self.values[slot] = value


class Metrics:
    """In-process aggregation of one service's metrics, flushed as EMF lines."""

    def __init__(self, service: str, out: TextIO | None = None) -> None:
        self.service = service
        self._out = out
        self._counters: dict[tuple[str, str | None], float] = defaultdict(float)
        self._samples: dict[str, _Samples] = defaultdict(_Samples)
        self._gauges: dict[str, float] = {}

    def count(self, name: str, value: float = 1, code: str | None = None) -> None:
        self._counters[(name, code)] += value

    def sample(self, name: str, value: float) -> None:
        self._samples[name].add(value)

    def gauge(self, name: str, value: float) -> None:
        """Report ``value`` in the next flush only (see :meth:`lines`)."""
        self._gauges[name] = value

    def request(self, status: int, latency_ms: float, code: str | None, transfer: bool = False) -> None:
        """One served request; ``transfer``: it was ``POST /v1/transfers`` (sampled apart too)."""
        self._counters[(REQUESTS, None)] += 1
        self._samples[LATENCY].add(latency_ms)
        if transfer:
            self._samples[TRANSFER_LATENCY].add(latency_ms)
        if code is not None:
            self._counters[(ERRORS, code)] += 1
        if status >= 500:
            self._counters[(SERVER_ERRORS, None)] += 1

    def lines(self, now_ms: int | None = None) -> list[dict[str, Any]]:
        """The EMF objects for everything recorded since the last call; resets the aggregates."""
        timestamp = now_ms if now_ms is not None else int(time.time() * 1000)
        counters, self._counters = self._counters, defaultdict(float)
        samples, self._samples = self._samples, defaultdict(_Samples)
        plain: dict[str, Any] = {}
        units: dict[str, str] = {}
        for (name, code), value in counters.items():
            if code is None:
                plain[name] = value
                units[name] = "Count"
        for name, sampled in samples.items():
            plain[name] = sampled.values
            units[name] = "Milliseconds" if name in (LATENCY, TRANSFER_LATENCY) else "Count"
        # A gauge is reported in the interval it was set in, then forgotten: a producer that stops
        # (a verifier that fails or hangs) shows up as missing data rather than a stale value.
        gauges, self._gauges = self._gauges, {}
        for name, value in gauges.items():
            plain[name] = value
            units[name] = "Count"
        out: list[dict[str, Any]] = []
        if plain:
            out.append(self._line(timestamp, [["Service"]], plain, units, {}))
        for (name, code), value in counters.items():
            if code is not None:
                out.append(self._line(timestamp, [["Service", "Code"]], {name: value}, {name: "Count"}, {"Code": code}))
        return out

    def _line(
        self,
        timestamp: int,
        dimensions: list[list[str]],
        values: dict[str, Any],
        units: dict[str, str],
        extra: dict[str, str],
    ) -> dict[str, Any]:
        return {
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": dimensions,
                        "Metrics": [{"Name": name, "Unit": units[name]} for name in values],
                    }
                ],
            },
            "Service": self.service,
            **extra,
            **values,
        }

    def flush(self) -> None:
        out = self._out or sys.stdout
        for line in self.lines():
            out.write(_encoder.encode(line).decode() + "\n")
        out.flush()

    async def flush_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.flush()


def interval_seconds() -> float:
    """``METRICS_INTERVAL_SECONDS`` (default 60; 0 disables emission, e.g. in benchmarks)."""
    return float(os.environ.get("METRICS_INTERVAL_SECONDS", "60") or 0)


class Emitter:
    """Flushes one process's metrics every ``METRICS_INTERVAL_SECONDS`` while the app runs.

    ``start``/``stop`` are the app's startup and shutdown hooks; ``stop`` flushes once more so
    the last interval is not lost on a graceful shutdown.
    """

    def __init__(self, service: str) -> None:
        self.metrics = configure_metrics(service)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        interval = interval_seconds()
        if interval > 0:
            self._task = asyncio.create_task(self.metrics.flush_forever(interval), name="metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            self.metrics.flush()


_current: Metrics | None = None


def configure_metrics(service: str) -> Metrics:
    """Create this process's metrics for ``service``; the request middleware records into it."""
    global _current
    _current = Metrics(service)
    return _current


def current_metrics() -> Metrics | None:
    return _current
