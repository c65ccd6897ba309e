"""The service-to-service HTTP client, and the check internal endpoints make on its credential.

One :class:`HttpPool` per process, opened in the app's startup and closed on shutdown: a single
long-lived aiohttp ``ClientSession`` whose keep-alive pool carries every call to every upstream,
so no request pays for a TCP handshake. A :class:`ServiceClient` per upstream adds its base URL
and timeout. Each call carries

- ``X-Internal-Token``: the shared internal credential (``settings.process.internal_token``);
- ``X-Request-Id`` and ``X-Amzn-Trace-Id`` of the request being served (from :mod:`shared.logging`),
  so one id follows a request through all three services and their log lines (with tracing on,
  :mod:`shared.tracing` rewrites the trace header's ``Parent`` to the call's client span);
- a total timeout of ``settings.gateway.upstream_timeout_seconds``.

A connection failure or a timeout becomes :class:`UpstreamUnavailable` (carrying whether the
request may have reached the upstream), which callers turn into 503 ``unavailable``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import msgspec

from shared import tracing
from shared.errors import ErrorCode, ProblemError, unavailable
from shared.internal_token import internal_tokens
from shared.logging import request_id_var, trace_header_var
from shared.session_api import valid_key_id

INTERNAL_TOKEN_HEADER = "X-Internal-Token"
TENANT_HEADER = "X-Tenant-Id"
KEY_HEADER = "X-Key-Id"
"""The API key (its id) the gateway authenticated the request with: attribution of every write."""

T = TypeVar("T")

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

log = logging.getLogger(__name__)


class UpstreamUnavailable(Exception):
    """The upstream could not be reached, or did not answer in time.

    ``maybe_applied`` is False only when the connection was never established (the request
    certainly did not reach the upstream); otherwise the upstream may have acted on it.
    """

    def __init__(self, upstream: str, reason: str, *, maybe_applied: bool) -> None:
        super().__init__(f"{upstream}: {reason}")
        self.upstream = upstream
        self.maybe_applied = maybe_applied

    def to_problem(self) -> ProblemError:
        return unavailable(f"the {self.upstream} service is unavailable; retry later")


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    body: bytes
    content_type: str
    retry_after: str | None


class HttpPool:
    """The process's one aiohttp ``ClientSession``: one keep-alive connection pool for every upstream.

    Opened in the app's startup hook and closed in its shutdown hook.
    """

    def __init__(self, pool_size: int = 512) -> None:
        self.pool_size = pool_size
        """Most connections open at once, over every upstream (read by tests and the long-poll pool)."""
        self.session: aiohttp.ClientSession | None = None
        self._traced: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self.session is None:
            connector = aiohttp.TCPConnector(
                limit=self.pool_size, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=60
            )
            self.session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
            configs = tracing.client_trace_configs()
            if configs:
                # Tracing on: sampled requests call through a second session on the same
                # connections whose hooks make a client span and name it in X-Amzn-Trace-Id.
                self._traced = aiohttp.ClientSession(
                    connector=connector, connector_owner=False, skip_auto_headers=("User-Agent",), trace_configs=configs
                )

    def session_for_request(self) -> aiohttp.ClientSession | None:
        """The session for a call made now: the traced one while the request is sampled."""
        if self._traced is not None and tracing.recording():
            return self._traced
        return self.session

    async def close(self) -> None:
        if self._traced is not None:
            await self._traced.close()
            self._traced = None
        if self.session is not None:
            await self.session.close()
            self.session = None


class ServiceClient:
    """Calls to one internal service (the ledger or the session service) over the shared pool."""

    def __init__(self, name: str, base_url: str, internal_token: str, timeout_seconds: float, pool: HttpPool) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._token = internal_token
        self.timeout_seconds = timeout_seconds
        """Longest one call may take, connecting included (a long-poll client's covers its wait)."""
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds, connect=min(timeout_seconds, 2.0))
        self.pool = pool
        """The connection pool the calls go over (the gateway gives long-polls one of their own)."""

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {INTERNAL_TOKEN_HEADER: internal_tokens().to_send(self._token)}  # rotation: ADR 0107
        request_id = request_id_var.get()
        if request_id:
            headers["X-Request-Id"] = request_id
        trace = trace_header_var.get()
        if trace:
            headers["X-Amzn-Trace-Id"] = trace
        tracing.inject(headers)  # tracing on: this request's context instead (a no-op when off)
        if extra:
            headers.update(extra)
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        query: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> UpstreamResponse:
        """Send one request; the raw status and body come back whatever the status."""
        if self.pool.session is None:
            raise UpstreamUnavailable(self.name, "client not started", maybe_applied=False)
        url = f"{self.base_url}{path}"
        if query:
            url = f"{url}?{query}"
        # A read may be retried once when a pooled keep-alive connection turns out to be dead (the
        # upstream restarted); a write never is: it may have been applied.
        attempts = 2 if method in _SAFE_METHODS else 1
        for attempt in range(attempts):
            try:
                return await self._send(method, url, body, headers)
            except aiohttp.ServerDisconnectedError:
                if attempt + 1 == attempts:
                    raise UpstreamUnavailable(self.name, "disconnected", maybe_applied=True) from None
        raise AssertionError("unreachable")

    async def _send(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str] | None
    ) -> UpstreamResponse:
        session = self.pool.session_for_request()
        assert session is not None
        try:
            async with session.request(
                method, url, data=body, headers=self._headers(headers), allow_redirects=False, timeout=self._timeout
            ) as response:
                payload = await response.read()
                return UpstreamResponse(
                    status=response.status,
                    body=payload,
                    content_type=response.headers.get("Content-Type", "application/json"),
                    retry_after=response.headers.get("Retry-After"),
                )
        except aiohttp.ServerDisconnectedError:
            raise
        except aiohttp.ClientConnectorError as exc:
            log.warning("upstream unreachable", extra={"upstream": self.name, "error": str(exc)})
            raise UpstreamUnavailable(self.name, "connection refused", maybe_applied=False) from exc
        except TimeoutError as exc:
            log.warning("upstream timed out", extra={"upstream": self.name})
            raise UpstreamUnavailable(self.name, "timed out", maybe_applied=True) from exc
        except aiohttp.ClientError as exc:
            log.warning("upstream failed", extra={"upstream": self.name, "error": repr(exc)})
            raise UpstreamUnavailable(self.name, "connection failed", maybe_applied=True) from exc

    async def call(
        self,
        method: str,
        path: str,
        payload: Any,
        response_type: type[T],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        """A JSON call whose success decodes into ``response_type``.

        A problem+json answer is re-raised as the same :class:`ProblemError` (code and status), so
        an internal service's 401 or 503 reaches the public client unchanged.
        """
        body = msgspec.json.encode(payload) if payload is not None else None
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        response = await self.request(method, path, body=body, headers=all_headers)
        if 200 <= response.status < 300:
            if response_type is type(None):
                return None  # type: ignore[return-value]
            try:
                return msgspec.json.decode(response.body, type=response_type)
            except msgspec.DecodeError as exc:
                log.error("malformed upstream response", extra={"upstream": self.name})
                raise UpstreamUnavailable(self.name, "malformed response", maybe_applied=True) from exc
        raise upstream_problem(self.name, response)

    async def ready(self, path: str = "/health/live") -> bool:
        """True when the upstream answers ``path`` with 200 (used by readiness probes)."""
        try:
            response = await self.request("GET", path)
        except UpstreamUnavailable:
            return False
        return response.status == 200


def upstream_problem(upstream: str, response: UpstreamResponse) -> ProblemError:
    """The :class:`ProblemError` an internal service (``upstream``) answered with; any other failure is
    a 503. (The ledger's ``outcome_problem`` is the other direction: a refused rule as a problem.)"""
    decoded: Any = None
    try:
        decoded = msgspec.json.decode(response.body)
    except msgspec.DecodeError:
        decoded = None
    if response.status < 500 and isinstance(decoded, dict):
        try:
            code: ErrorCode | None = ErrorCode(str(decoded.get("code")))
        except ValueError:
            code = None
        if code is not None and code.status == response.status:
            return ProblemError(code, str(decoded.get("detail", code.summary)))
    log.warning("upstream failed", extra={"upstream": upstream, "status": response.status})
    return unavailable(f"the {upstream} service is unavailable; retry later")


def internal_token_valid(presented: str | None, expected: str) -> bool:
    """Constant-time comparison of the presented internal credential with the expected one."""
    if not presented or not expected:
        return False
    # ... or a version of the rotating secret read while running (shared/internal_token.py).
    return hmac.compare_digest(presented.encode(), expected.encode()) or internal_tokens().accepts(presented)


def key_id_header(value: str | None) -> str | None:
    """The caller's key id from :data:`KEY_HEADER` (None when absent); a malformed one is 401, as a
    malformed tenant is: only the gateway sets it, together with the internal credential."""
    if not value:
        return None
    if not valid_key_id(value):
        raise ProblemError(ErrorCode.UNAUTHORIZED, "invalid key id")
    return value


def require_internal_token(presented: str | None, expected: str) -> None:
    """Raise 401 ``unauthorized`` unless ``presented`` is the internal credential."""
    if not internal_token_valid(presented, expected):
        raise ProblemError(ErrorCode.UNAUTHORIZED, "missing or invalid internal credential")
