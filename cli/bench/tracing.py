"""``./scripts/bench --tracing RATIO``: the benchmark with tracing on (ADR 0050, docs/performance.md).

``--tracing off`` (or no option) runs the services as they run without a collector: nothing is
instrumented. ``--tracing 0.05`` / ``--tracing 1`` switch tracing on exactly as in AWS (OTLP/gRPC
export, X-Ray ids and header, parent-based ratio sampling decided by the gateway) and start
:class:`Sink`, a stand-in for the ADOT sidecar: a separate process that receives and decodes every
export (as the sidecar does before sending to X-Ray) and counts the spans, so the cost measured
includes the export itself. The rest of the arguments go to ``./scripts/bench`` unchanged; the
tracing environment reaches the services through its ``--env``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def parse_ratio(raw: str) -> float | None:
    """``off`` -> None; otherwise a sampling ratio in (0, 1]."""
    if raw.strip().lower() in {"off", "none", "0"}:
        return None
    ratio = float(raw)
    if not 0.0 < ratio <= 1.0:
        raise SystemExit(f"--tracing takes off or a ratio in (0, 1], got {raw!r}")
    return ratio


def split_argv(argv: list[str]) -> tuple[float | None, bool, list[str]]:
    """(ratio, whether --tracing was given, the other arguments) from the command line."""
    rest: list[str] = []
    ratio: float | None = None
    given = False
    args = iter(argv)
    for arg in args:
        if arg == "--tracing":
            ratio, given = parse_ratio(next(args, "")), True
        elif arg.startswith("--tracing="):
            ratio, given = parse_ratio(arg.split("=", 1)[1]), True
        else:
            rest.append(arg)
    return ratio, given, rest


def service_env(ratio: float, endpoint: str) -> dict[str, str]:
    """The services' tracing environment: that of the compute tier, pointed at the sink."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": repr(ratio),
    }


class Sink:
    """The stand-in collector, as a child process (``python -m cli.bench.tracing sink PORT``)."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.process: subprocess.Popen[str] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Sink:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.bench.tracing", "sink", str(self.port)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("the OTLP sink did not start")

    def stop(self) -> str:
        """Stop it; its one-line report (exports and spans received)."""
        if self.process is None:
            return ""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=10)
        return out.strip()


@contextmanager
def tracing_arguments(ratio: float | None) -> Iterator[list[str]]:
    """Extra ``./scripts/bench`` arguments for ``ratio`` (a running sink while the block runs)."""
    if ratio is None:
        yield ["--env", "OTEL_TRACES_EXPORTER=none"]
        return
    sink = Sink().start()
    try:
        yield [arg for key, value in service_env(ratio, sink.endpoint).items() for arg in ("--env", f"{key}={value}")]
    finally:
        print(f"tracing at {ratio:g}: {sink.stop()}", file=sys.stderr)


def serve_sink(port: int) -> None:
    """Receive, decode and count OTLP trace exports until SIGTERM; then print the counts."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    counts = {"exports": 0, "spans": 0, "bytes": 0}
    lock = threading.Lock()

    class Service(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # the gRPC method name
            spans = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
            with lock:
                counts["exports"] += 1
                counts["spans"] += spans
                counts["bytes"] += request.ByteSize()
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    server.stop(grace=1).wait()
    print(f"the sink received {counts['spans']:,} spans in {counts['exports']:,} exports "
          f"({counts['bytes'] / 1e6:,.1f} MB)", flush=True)  # fmt: skip


if __name__ == "__main__" and sys.argv[1:2] == ["sink"]:
    serve_sink(int(sys.argv[2]))
