"""The internal service token (``X-Internal-Token``), rotated without a single 401 (issue 13, item 1;
ADR 0107).

With ``INTERNAL_TOKEN_SECRET_ARN`` set, every process re-reads the secret (``AWSCURRENT`` and
``AWSPREVIOUS``) in the background while it runs, besides the ``INTERNAL_TOKEN`` ECS injected at
start. The rotation then follows a two-phase adoption:

1. A receiver accepts the injected token and every version it has read, current or previous.
2. A sender keeps sending the previous version until the current one is ``ADOPT_AFTER_SECONDS``
   old, longer than a refresh interval plus its retry. So by the time anyone sends the new token,
   every running receiver has read it. The old token stays accepted until the next rotation, 90
   days later.

Without the variable (local runs, tests) nothing changes: the injected token is sent and is the only
one accepted. A failed re-read keeps the last value (``shared.credentials.SecretTokens``).
Invariant: :meth:`InternalTokens.accepts` and :meth:`InternalTokens.to_send` never wait on the
network. They use what has been read; a background task (:meth:`InternalTokens.keep_fresh`, started
by the first use or health check) re-reads the secret every interval, traffic or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from shared.credentials import CredentialUnavailable, SecretTokens, TokenSet

log = logging.getLogger(__name__)

SECRET_ARN_ENV = "INTERNAL_TOKEN_SECRET_ARN"
REFRESH_ENV = "INTERNAL_TOKEN_REFRESH_SECONDS"
REFRESH_SECONDS = 60.0
"""How often a process re-reads the secret (two GetSecretValue calls a minute per process);
``INTERNAL_TOKEN_REFRESH_SECONDS`` overrides it (the end-to-end rotation test uses 1 s)."""
ADOPT_AFTER_SECONDS = 3 * REFRESH_SECONDS
"""Age of a new version before senders use it: every receiver has re-read the secret by then
(three refresh intervals, whatever the interval)."""


class InternalTokens:
    """What this process sends and accepts as the internal token."""

    def __init__(
        self,
        source: SecretTokens | None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        adopt_after_seconds: float = ADOPT_AFTER_SECONDS,
    ) -> None:
        self._source = source
        self._now = now
        self._adopt_after = timedelta(seconds=adopt_after_seconds)
        self._refreshing: asyncio.Task[None] | None = None

    def accepts(self, presented: str) -> bool:
        """True when ``presented`` is a version read from the secret (current or previous)."""
        tokens = self._cached()
        return tokens is not None and tokens.accepts(presented)

    def to_send(self, injected: str) -> str:
        """The token to send: the current version once it is ``ADOPT_AFTER_SECONDS`` old, the
        previous one until then, the injected one before the first read."""
        tokens = self._cached()
        if tokens is None:
            return injected
        young = tokens.current_since is not None and self._now() - tokens.current_since < self._adopt_after
        if young and tokens.previous:
            return tokens.previous
        return tokens.current

    async def refresh(self) -> None:
        """Re-read the secret when due (startup may await this once, so the first call is warm)."""
        if self._source is None:
            return
        try:
            await self._source.tokens()
        except CredentialUnavailable:
            log.warning(
                "internal token secret unreadable; using the injected token", extra={"secret_env": SECRET_ARN_ENV}
            )

    def keep_fresh(self) -> None:
        """Make sure a background task re-reads the secret every interval, whether or not this
        process receives traffic: a receiver idle through a rotation must know the new token before
        the senders adopt it. Called by every use and by the health routes, which ECS polls from
        the task's start; a no-op without an event loop or without the secret."""
        if self._source is None or (self._refreshing is not None and not self._refreshing.done()):
            return
        with contextlib.suppress(RuntimeError):  # no running event loop: the next caller starts it
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def _refresh_forever(self) -> None:
        assert self._source is not None
        while True:
            await self.refresh()
            await asyncio.sleep(self._source.max_age_seconds)

    def _cached(self) -> TokenSet | None:
        if self._source is None:
            return None
        self.keep_fresh()
        return self._source.cached()


def prime() -> None:
    """Read the secret once before the process serves (``shared.serve``), so that a task started
    during a rotation accepts what running senders send from its first request on."""
    asyncio.run(internal_tokens().refresh())


_instance: InternalTokens | None = None


def internal_tokens() -> InternalTokens:
    """The process's :class:`InternalTokens`, configured from the environment on first use."""
    global _instance
    if _instance is None:
        arn = os.environ.get(SECRET_ARN_ENV, "")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        refresh = float(os.environ.get(REFRESH_ENV) or REFRESH_SECONDS)
        source = (
            SecretTokens.from_aws(
                arn, "token", region=region, max_age_seconds=refresh, retry_seconds=min(10.0, refresh)
            )
            if arn
            else None
        )
        _instance = InternalTokens(source, adopt_after_seconds=3 * refresh)
    return _instance
