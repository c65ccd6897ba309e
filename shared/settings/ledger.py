"""Settings of the ledger service: group commit, the expiry sweeper, the verifier, and webhook
delivery (docs/services.md, Ledger service; docs/webhooks.md)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from shared.settings.loading import PORT, at_least, non_negative, positive, setting

WEBHOOK_MIN_LEASE_SECONDS = 15.0
"""Shortest webhook lease: longer than one delivery attempt (10 s) plus a margin, so an attempt
never starts under a lease about to expire (``services.ledger.webhooks.worker.MIN_LEASE_SECONDS``)."""


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    """The ledger process: its port, group commit (ADR 0007), the sweeper and the verifier."""

    port: int = setting("LEDGER_PORT", 8001, check=PORT)
    """``LEDGER_PORT``: TCP port of the ledger service's internal API."""

    group_commit_max_items: int = setting("GROUP_COMMIT_MAX_ITEMS", 512, check=at_least(1))
    """``GROUP_COMMIT_MAX_ITEMS``, operations: the most transfer operations the ledger commits in one
    database transaction."""

    group_commit_max_inflight: int = setting("GROUP_COMMIT_MAX_INFLIGHT", 1, check=at_least(1))
    """``GROUP_COMMIT_MAX_INFLIGHT``, transactions: group transactions one ledger process runs at once,
    over disjoint sets of accounts: groups that share an account (a hot one) run one after another
    (ADR 0007). 1 measured best on 2 cores even for uniform loads (docs/performance.md); raise it on
    bigger instances."""

    group_commit_enabled: bool = setting("GROUP_COMMIT_ENABLED", True)
    """``GROUP_COMMIT_ENABLED``, true or false: when false every request commits its own transaction
    (used by tests and benchmarks)."""

    expiry_sweep_interval_seconds: float = setting("EXPIRY_SWEEP_INTERVAL_SECONDS", 0.5, check=positive)
    """``EXPIRY_SWEEP_INTERVAL_SECONDS``, seconds: longest the ledger sleeps between sweeps of expired
    pending transfers."""

    verifier_interval_seconds: float = setting("VERIFIER_INTERVAL_SECONDS", 300.0, check=non_negative)
    """``VERIFIER_INTERVAL_SECONDS``, seconds: how often a ledger process runs the invariant verifier
    and reports it as a metric (0: never). An advisory lock lets only one process of the fleet run
    it at a time."""


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """The ledger's webhook delivery (issue 12; docs/webhooks.md)."""

    allow_private_urls: bool = setting("WEBHOOK_ALLOW_PRIVATE_URLS", False)
    """``WEBHOOK_ALLOW_PRIVATE_URLS``, true or false: accept webhook URLs resolving to private,
    loopback, link-local or reserved addresses, and deliver to them. Never in AWS (refused at
    start there); tests and local demos set it (their receivers run on loopback)."""

    require_https: bool = setting("WEBHOOK_REQUIRE_HTTPS", False, aws=True)
    """``WEBHOOK_REQUIRE_HTTPS``, true or false: accept only ``https`` webhook URLs. Defaults to true
    in AWS, false locally."""

    retry_base_seconds: float = setting("WEBHOOK_RETRY_BASE_SECONDS", 5.0, check=positive)
    """``WEBHOOK_RETRY_BASE_SECONDS``, seconds: backoff of a webhook's first retry; the n-th waits a
    uniform random time up to ``base * 2**(n-1)`` (full jitter), at most
    ``WEBHOOK_RETRY_MAX_SECONDS``."""

    retry_max_seconds: float = setting("WEBHOOK_RETRY_MAX_SECONDS", 3600.0, check=positive)
    """``WEBHOOK_RETRY_MAX_SECONDS``, seconds: longest backoff between two attempts of one delivery;
    at least ``WEBHOOK_RETRY_BASE_SECONDS``."""

    give_up_seconds: float = setting("WEBHOOK_GIVE_UP_SECONDS", 86_400.0, check=positive)
    """``WEBHOOK_GIVE_UP_SECONDS``, seconds: how long an endpoint keeps failing before it is marked
    ``failing`` and deliveries to it stop (the contract says at least 24 hours; tests shorten it)."""

    poll_interval_seconds: float = setting("WEBHOOK_POLL_INTERVAL_SECONDS", 0.5, check=positive)
    """``WEBHOOK_POLL_INTERVAL_SECONDS``, seconds: how often an idle delivery worker looks for
    endpoints with events to deliver."""

    lease_seconds: float = setting(
        "WEBHOOK_LEASE_SECONDS", 30.0, check=at_least(WEBHOOK_MIN_LEASE_SECONDS, "longer than one delivery attempt")
    )
    """``WEBHOOK_LEASE_SECONDS``, seconds: how long a process holds an endpoint between renewals (at
    least 15, longer than an attempt); after a crash another process resumes its deliveries once the
    lease has expired."""

    max_concurrency: int = setting("WEBHOOK_MAX_CONCURRENCY", 32, check=at_least(1))
    """``WEBHOOK_MAX_CONCURRENCY``, endpoints: how many one process delivers to at once (one request
    in flight per endpoint)."""

    delivery_retention_days: float = setting("WEBHOOK_DELIVERY_RETENTION_DAYS", 30.0, check=non_negative)
    """``WEBHOOK_DELIVERY_RETENTION_DAYS``, days: attempts older than this leave the deliveries log
    (the delivery workers delete them in small batches); 0 keeps them for ever."""

    def problems(self) -> Iterator[str]:
        """The rules between fields."""
        if self.retry_max_seconds < self.retry_base_seconds:
            yield (
                f"WEBHOOK_RETRY_MAX_SECONDS={self.retry_max_seconds!r}: must be at least "
                f"WEBHOOK_RETRY_BASE_SECONDS={self.retry_base_seconds!r}, the backoff it caps"
            )
