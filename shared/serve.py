"""Runs one service's ASGI app: ``python -m services.<name>`` ends up here.

uvicorn with uvloop and httptools by default; ``SERVER=granian`` switches to granian (the choice
and its measurements are in docs/adr). Both stop accepting on SIGTERM/SIGINT and let in-flight
requests finish before the app's shutdown hooks close pools (graceful shutdown). Each request must
arrive within ``REQUEST_READ_TIMEOUT_SECONDS``, so slow clients are cut off (:mod:`shared.read_timeout`).

A service refuses to start, exiting 78 (EX_CONFIG) with each problem logged, on invalid settings
(:func:`checked_settings`: whatever breaks a rule of :mod:`shared.settings`) and, in AWS, on settings
only fit for a laptop (:func:`deployment_problems`): the development ``INTERNAL_TOKEN`` would let
anyone who reaches a task's port act as any tenant.
"""

from __future__ import annotations

import logging
import os
import sys

from shared.internal_token import prime as prime_internal_tokens
from shared.logging import configure_logging
from shared.settings import LOCAL_INTERNAL_TOKEN, Settings, SettingsError, get_settings

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_SECONDS = 20
"""In-flight requests get this long after SIGTERM; ECS's stopTimeout (30 s) is longer on purpose."""


MIN_INTERNAL_TOKEN_LENGTH = 32
"""Shortest internal credential accepted in AWS (the stacks generate 64 characters)."""


def deployment_problems(settings: Settings) -> list[str]:
    """Why ``settings`` must not serve in AWS (empty when they may, and always outside AWS)."""
    if not settings.process.in_aws:
        return []
    token = settings.process.internal_token
    if token == LOCAL_INTERNAL_TOKEN:
        return ["INTERNAL_TOKEN is unset or the development default; inject the secret (ADR 0103)"]
    if len(token) < MIN_INTERNAL_TOKEN_LENGTH or len(set(token)) < 8:
        return [f"INTERNAL_TOKEN must be a random secret of at least {MIN_INTERNAL_TOKEN_LENGTH} characters"]
    return []


def checked_settings(service: str) -> Settings:
    """The settings, or exit 78 (EX_CONFIG) at once, each problem logged, when they are invalid:
    ``python -m services.<name>`` asks here first, before anything listens or connects."""
    try:
        return get_settings()
    except SettingsError as exc:
        configure_logging(service)
        for problem in exc.problems:
            log.critical("refusing to start: %s", problem)
        sys.exit(78)


def serve(service: str, factory: str, port: int) -> None:
    """Serve ``factory`` (``module:create_app``) on ``port`` until SIGTERM or SIGINT; exit 78
    (EX_CONFIG) at once, before listening, when :func:`deployment_problems` finds any."""
    settings = get_settings()
    configure_logging(service, settings.process.log_level)
    problems = deployment_problems(settings)
    if problems:
        for problem in problems:
            log.critical("refusing to start: %s", problem)
        sys.exit(78)
    # INTERNAL_TOKEN_SECRET_ARN: read the rotating internal token before serving (ADR 0107).
    prime_internal_tokens()
    server = os.environ.get("SERVER", "uvicorn")
    if server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops
        from granian.http import HTTP1Settings

        Granian(
            factory,
            address=settings.process.bind_host,
            port=port,
            interface=Interfaces.ASGI,
            workers=settings.process.workers,
            loop=Loops.uvloop,
            factory=True,
            log_access=False,
            backlog=2048,
            workers_kill_timeout=GRACEFUL_SHUTDOWN_SECONDS,
            # Granian bounds the headers only; uvicorn (the default) bounds headers and body.
            http1_settings=HTTP1Settings(
                header_read_timeout=int(settings.process.request_read_timeout_seconds * 1000) or 30_000
            ),
        ).serve()
        return
    import uvicorn

    from shared.read_timeout import ReadTimeoutHttpToolsProtocol

    uvicorn.run(
        factory,
        factory=True,
        host=settings.process.bind_host,
        port=port,
        loop="uvloop",
        http=ReadTimeoutHttpToolsProtocol,  # httptools, plus a deadline for each request to arrive
        workers=settings.process.workers,
        access_log=False,
        log_config=None,
        backlog=2048,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=75,
        lifespan="on",
    )
