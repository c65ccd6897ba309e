"""Settings of the public gateway: its upstreams, rate limits, Idempotency-Key, transfer coalescing,
in-process session caches and the hardening limits of docs/hardening.md."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from shared.settings.loading import PORT, at_least, between, non_negative, positive, setting, url

BURST = at_least(1, "a request at once must pass")


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """The gateway's settings (docs/services.md, Gateway; docs/hardening.md)."""

    port: int = setting("GATEWAY_PORT", 8000, check=PORT)
    """``GATEWAY_PORT``: TCP port of the public gateway (the only port the ALB reaches)."""

    ledger_url: str = setting("LEDGER_URL", "", check=url("http", "https", empty=True))
    """``LEDGER_URL``: base URL the gateway uses for the ledger; empty means
    ``http://127.0.0.1:$LEDGER_PORT``."""

    session_url: str = setting("SESSION_URL", "", check=url("http", "https", empty=True))
    """``SESSION_URL``: base URL the gateway uses for the session service; empty means loopback and
    ``SESSION_PORT``."""

    upstream_timeout_seconds: float = setting("UPSTREAM_TIMEOUT_SECONDS", 10.0, check=positive)
    """``UPSTREAM_TIMEOUT_SECONDS``, seconds: total timeout of one call to the ledger or the session
    service (the event long-poll gets its ``wait`` on top)."""

    rate_limit_per_second: float = setting("RATE_LIMIT_PER_SECOND", 1000.0, check=positive)
    """``RATE_LIMIT_PER_SECOND``, requests per second: the sustained rate each tenant may make
    through the gateway."""

    rate_limit_burst: int = setting("RATE_LIMIT_BURST", 2000, check=BURST)
    """``RATE_LIMIT_BURST``, requests: how many a tenant may make at once above the sustained rate."""

    idempotency_ttl_seconds: int = setting("IDEMPOTENCY_TTL_SECONDS", 86_400, check=positive)
    """``IDEMPOTENCY_TTL_SECONDS``, seconds: how long the gateway keeps a response for an
    Idempotency-Key (24 hours by contract)."""

    idempotency_lease_seconds: int = setting("IDEMPOTENCY_LEASE_SECONDS", 60, check=positive)
    """``IDEMPOTENCY_LEASE_SECONDS``, seconds: how long an in-flight Idempotency-Key claim holds when
    its gateway dies before answering; must exceed ``UPSTREAM_TIMEOUT_SECONDS`` so a live request
    never loses its claim, and stay below ``IDEMPOTENCY_TTL_SECONDS``."""

    idempotency_max_kept_bytes: int = setting("IDEMPOTENCY_MAX_KEPT_BYTES", 1024 * 1024, check=positive)
    """``IDEMPOTENCY_MAX_KEPT_BYTES``, bytes: largest response kept for an Idempotency-Key, as stored
    (compressed when shorter). A larger one is not kept: a retry with the key runs again (safe: only
    batches get that large, and their items carry their own transfer ids)."""

    idempotency_max_keys_per_tenant: int = setting("IDEMPOTENCY_MAX_KEYS_PER_TENANT", 1_000_000, check=at_least(1))
    """``IDEMPOTENCY_MAX_KEYS_PER_TENANT``, keys: how many Idempotency-Keys one tenant may hold at
    once (in flight or kept); a new key past it is 429 until the oldest expires. Bounds one tenant's
    share of the Redis that also holds sessions."""

    coalesce_transfers: bool = setting("COALESCE_TRANSFERS", True)
    """``COALESCE_TRANSFERS``, true or false: send concurrent single transfer writes to the ledger as
    one call (ADR 0006). Off: one ledger call per request; responses are the same either way."""

    coalesce_max_inflight: int = setting("COALESCE_MAX_INFLIGHT", 2, check=at_least(1))
    """``COALESCE_MAX_INFLIGHT``, calls: coalesced ledger calls in flight at once per process;
    requests arriving meanwhile queue and leave together as the next call."""

    coalesce_max_items: int = setting("COALESCE_MAX_ITEMS", 256, check=at_least(1))
    """``COALESCE_MAX_ITEMS``, transfer writes: the most in one coalesced ledger call."""

    session_local_cache_seconds: float = setting(
        "SESSION_LOCAL_CACHE_SECONDS", 0.5, check=between(0, 1, "how late a revocation may reach a gateway")
    )
    """``SESSION_LOCAL_CACHE_SECONDS``, seconds: how long a resolved session is served from process
    memory before Redis is asked again. At most 1: the bound on how late a revocation reaches every
    gateway. 0 disables."""

    unknown_token_cache_seconds: float = setting("UNKNOWN_TOKEN_CACHE_SECONDS", 5.0, check=non_negative)
    """``UNKNOWN_TOKEN_CACHE_SECONDS``, seconds: how long a refused token (unknown, expired, revoked)
    is refused from process memory, so floods of bad tokens reach neither Redis nor DynamoDB.
    0 disables."""

    login_rate_per_key_per_second: float = setting("LOGIN_RATE_PER_KEY_PER_SECOND", 1.0, check=positive)
    """``LOGIN_RATE_PER_KEY_PER_SECOND``, calls per second: sustained ``POST /v1/sessions`` calls
    presenting one API key (by key id)."""

    login_burst_per_key: int = setting("LOGIN_BURST_PER_KEY", 60, check=BURST)
    """``LOGIN_BURST_PER_KEY``, calls: ``POST /v1/sessions`` calls one API key may make at once above
    the sustained rate."""

    login_rate_per_address_per_second: float = setting("LOGIN_RATE_PER_ADDRESS_PER_SECOND", 5.0, check=positive)
    """``LOGIN_RATE_PER_ADDRESS_PER_SECOND``, calls per second: sustained ``POST /v1/sessions`` calls
    from one client address, whatever the key (each costs the session service a consistent DynamoDB
    read)."""

    login_burst_per_address: int = setting("LOGIN_BURST_PER_ADDRESS", 100, check=BURST)
    """``LOGIN_BURST_PER_ADDRESS``, calls: ``POST /v1/sessions`` calls one client address may make at
    once above the sustained rate."""

    refused_auth_rate_per_address_per_second: float = setting(
        "REFUSED_AUTH_RATE_PER_ADDRESS_PER_SECOND", 5.0, check=positive
    )
    """``REFUSED_AUTH_RATE_PER_ADDRESS_PER_SECOND``, refusals per second: refused authentications
    (missing, unknown, expired or revoked tokens) a client address may cause, fleet-wide, before its
    unresolved tokens are no longer looked up in the session service (429 instead). Tokens found in
    Redis still work from that address."""

    refused_auth_burst_per_address: int = setting("REFUSED_AUTH_BURST_PER_ADDRESS", 50, check=BURST)
    """``REFUSED_AUTH_BURST_PER_ADDRESS``, refusals: how many a client address may cause at once above
    that rate."""

    trusted_proxy_hops: int = setting("TRUSTED_PROXY_HOPS", 0, aws=1, check=between(0, 10))
    """``TRUSTED_PROXY_HOPS``, proxies: how many in front of the gateway append the peer to
    ``X-Forwarded-For``: 1 in AWS (the ALB), 0 locally. The client address is the entry that many
    places from the right (the peer itself when 0); entries further left are the client's own
    claims and never trusted."""

    events_long_poll_max: int = setting("EVENTS_LONG_POLL_MAX", 256, check=non_negative)
    """``EVENTS_LONG_POLL_MAX``, polls: ``GET /v1/events?wait=`` calls one gateway process lets wait
    at once, each holding a connection of the long-poll pool (services/gateway/long_poll.py); a poll
    past it does not wait."""

    events_long_poll_max_per_tenant: int = setting("EVENTS_LONG_POLL_MAX_PER_TENANT", 32, check=non_negative)
    """``EVENTS_LONG_POLL_MAX_PER_TENANT``, polls: of those, how many one tenant may hold, so one
    tenant's pollers cannot lock the others out."""

    def problems(self) -> Iterator[str]:
        """The rules between fields."""
        lease, upstream = self.idempotency_lease_seconds, self.upstream_timeout_seconds
        if lease <= upstream:
            yield (
                f"IDEMPOTENCY_LEASE_SECONDS={lease!r}: must exceed UPSTREAM_TIMEOUT_SECONDS={upstream!r}, or a"
                " request still waiting for the ledger loses its Idempotency-Key claim and a retry runs it twice"
            )
        if lease >= self.idempotency_ttl_seconds:
            yield (
                f"IDEMPOTENCY_LEASE_SECONDS={lease!r}: must be less than IDEMPOTENCY_TTL_SECONDS="
                f"{self.idempotency_ttl_seconds!r}: a claim may not outlive the response kept for its key"
            )
