"""JSON log lines carrying the request id, the X-Ray trace id and the caller (tenant, API key id)
of the request being served.

The ids live in context variables set by the request middleware of :mod:`shared.web`, so any
``logging`` call made while serving a request carries them without being passed around.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from collections.abc import Callable

import msgspec

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
trace_header_var: contextvars.ContextVar[str] = contextvars.ContextVar("trace_header", default="")
caller_var: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("caller", default=None)
"""(tenant id, API key id) of the authenticated caller, once known: every log line names them."""

trace_id_source: Callable[[], str] | None = None
"""Set by :mod:`shared.tracing` when tracing is on: the current span's X-Ray trace id, which log
lines then carry (it equals the header's ``Root`` whenever the request came with one)."""

_encoder = msgspec.json.Encoder()

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName", "color_message"}
)


def trace_id_from_header(header: str) -> str:
    """The ``Root=`` part of an ``X-Amzn-Trace-Id`` header, or the empty string."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "Root":
            return value
    return ""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, service, ids, and any ``extra``."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            line["request_id"] = request_id
        caller = caller_var.get()
        if caller is not None:
            line["tenant_id"], line["key_id"] = caller
        trace_id = trace_id_source() if trace_id_source is not None else ""
        if not trace_id:
            trace_header = trace_header_var.get()
            trace_id = trace_id_from_header(trace_header) if trace_header else ""
        if trace_id:
            line["trace_id"] = trace_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        try:
            return _encoder.encode(line).decode()
        except TypeError:
            return _encoder.encode({k: str(v) for k, v in line.items()}).decode()


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route every logger of the process to stderr as JSON lines. Idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The servers' own access logs would duplicate ours in another format.
    for noisy in ("uvicorn.access", "granian.access", "aiobotocore", "botocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
