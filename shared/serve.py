"""Runs one service's ASGI app: ``python -m services.<name>`` ends up here.

uvicorn with uvloop and httptools by default; ``SERVER=granian`` switches to granian (the choice
and its measurements are in docs/adr). Both stop accepting on SIGTERM/SIGINT and let in-flight
requests finish before the app's shutdown hooks close pools (graceful shutdown). Each request must
arrive within ``REQUEST_READ_TIMEOUT_SECONDS``, so slow clients are cut off (:mod:`shared.read_timeout`).
"""

from __future__ import annotations

import os

from shared.logging import configure_logging
from shared.settings import get_settings

GRACEFUL_SHUTDOWN_SECONDS = 20
"""In-flight requests get this long after SIGTERM; ECS's stopTimeout (30 s) is longer on purpose."""


def serve(service: str, factory: str, port: int) -> None:
    """Serve ``factory`` (``module:create_app``) on ``port`` until SIGTERM or SIGINT."""
    settings = get_settings()
    configure_logging(service, settings.log_level)
    server = os.environ.get("SERVER", "uvicorn")
    if server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops
        from granian.http import HTTP1Settings

        Granian(
            factory,
            address=settings.bind_host,
            port=port,
            interface=Interfaces.ASGI,
            workers=settings.workers,
            loop=Loops.uvloop,
            factory=True,
            log_access=False,
            backlog=2048,
            workers_kill_timeout=GRACEFUL_SHUTDOWN_SECONDS,
            # Granian bounds the headers only; uvicorn (the default) bounds headers and body.
            http1_settings=HTTP1Settings(
                header_read_timeout=int(settings.request_read_timeout_seconds * 1000) or 30_000
            ),
        ).serve()
        return
    import uvicorn

    from shared.read_timeout import ReadTimeoutHttpToolsProtocol

    uvicorn.run(
        factory,
        factory=True,
        host=settings.bind_host,
        port=port,
        loop="uvloop",
        http=ReadTimeoutHttpToolsProtocol,  # httptools, plus a deadline for each request to arrive
        workers=settings.workers,
        access_log=False,
        log_config=None,
        backlog=2048,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=75,
        lifespan="on",
    )
