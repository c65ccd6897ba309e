"""A deadline for receiving each request: uvicorn's HTTP/1.1 protocol, hardened against slow clients.

uvicorn closes idle kept-alive connections, but not a client that connects and sends nothing, nor
one that sends its headers or its body slowly (slowloris): each such connection stays open for ever,
and a few thousand of them exhaust the process. :class:`ReadTimeoutHttpToolsProtocol` arms a timer
when a connection opens and when a request starts on a kept-alive connection, and disarms it once
the request (headers and body) has fully arrived. If the timer fires first, the connection is
closed. An application already waiting for the body sees the client disconnect
(:func:`shared.web.read_body` then answers 400, which nobody receives).

It also answers a request the HTTP parser refuses (a CR, LF or NUL inside a header, a malformed
request line) like every other error of the platform: 400 ``invalid_request`` as problem+json
with an ``X-Request-Id``, where uvicorn would answer ``text/plain`` without one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared.errors import PROBLEM_MEDIA_TYPE, ErrorCode, ProblemError, encode_problem
from shared.settings import get_settings

log = logging.getLogger(__name__)


class ReadTimeoutHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` plus ``REQUEST_READ_TIMEOUT_SECONDS`` for each request to arrive, and
    problem+json for requests the parser refuses."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timeout = get_settings().process.request_read_timeout_seconds
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A deadline armed when the connection opened keeps running: trickling in counts.
        self._arm_read_deadline()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm_read_deadline()

    def send_400_response(self, msg: str) -> None:
        request_id = uuid.uuid4().hex
        body = encode_problem(ProblemError(ErrorCode.INVALID_REQUEST, "malformed HTTP request"), request_id)
        head = [b"HTTP/1.1 400 Bad Request"]
        head += [name + b": " + value for name, value in self.server_state.default_headers]
        head += [
            b"content-type: " + PROBLEM_MEDIA_TYPE.encode(),
            b"content-length: " + str(len(body)).encode(),
            b"x-request-id: " + request_id.encode(),
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()

    def _arm_read_deadline(self) -> None:
        if self._read_timeout > 0 and self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self._read_timeout, self._read_timed_out)

    def _disarm_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            log.info("request not received in time; connection closed", extra={"client": str(self.client)})
            self.transport.close()
