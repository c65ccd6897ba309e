"""The one launcher of the platform's processes, shared by ``./scripts/run`` (cli/run.py),
``./scripts/bench`` (cli/bench/platform.py) and the tests (tests/support/).

- :class:`ServiceProcess`: a service, ``python -m services.<name>``, awaited on its health route;
- :class:`Helper`: any other child the platform needs (moto, a Redis), awaited on its TCP port;
- :func:`moto_command` and :func:`drop_database`: the DynamoDB stand-in and the end of a private
  database, written once for the three callers.

Invariants:

- a child's environment is the caller's ``env`` over ``os.environ`` with ``PYTHONPATH`` set to the
  project, read when the child starts (a caller may change ``env`` between a stop and a start);
- readiness is polled, never slept for: :meth:`ServiceProcess.start` and :meth:`Helper.start` return
  once the child answers, and raise ``RuntimeError`` naming the child and its log as soon as it
  exits, or when the timeout passes;
- ``stop`` is idempotent and always reaps: SIGCONT first (a frozen child could not act on SIGTERM),
  then the signal, then SIGKILL after the timeout;
- each child writes to its own log file (appending, so a restart keeps what came before).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import asyncpg

from cli.local_services import ROOT, http_status, port_open, with_database

POLL_SECONDS = 0.05
"""Between two readiness probes: short, since every suite and command waits on starts."""


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    """Until ``ready()``; raises at once if ``process`` exits, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready within {timeout:.0f}s")
        time.sleep(POLL_SECONDS)


def stop_process(
    process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 20.0
) -> int | None:
    """Signals ``process`` (SIGCONT first) and reaps it, killing it after ``timeout``; its exit code."""
    if process is None:
        return None
    if process.poll() is not None:
        return process.returncode
    if sig != signal.SIGKILL:
        process.send_signal(signal.SIGCONT)
    process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@dataclass
class ServiceProcess:
    """One service as a child process; ``start`` returns when ``/health/ready`` answers 200.

    ``new_session``: the child gets its own session, so a Ctrl-C in the terminal reaches only the
    launcher, which then stops the children in order (``./scripts/run``, ``./scripts/bench``)."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    new_session: bool = False
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def launch(self) -> Self:
        """Starts the process without waiting (:meth:`wait_ready` waits)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}"],
                cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=self.new_session,
            )  # fmt: skip
        return self

    def wait_ready(self, timeout: float = 30.0, route: str = "ready") -> Self:
        assert self.process is not None
        try:
            wait_until(lambda: http_status(f"{self.url}/health/{route}") == 200, self.process, timeout, self.name)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; see {self.log_path}") from None
        return self

    def start(self, timeout: float = 30.0) -> Self:
        """Launches and waits for ``/health/ready``."""
        return self.launch().wait_ready(timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        return stop_process(self.process, sig, timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL, timeout=5)


@dataclass
class Helper:
    """A non-service child (moto, Redis) awaited on its TCP port; it can be frozen and restarted."""

    name: str
    port: int
    command: list[str]
    log_path: Path
    new_session: bool = False
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None)

    def start(self, timeout: float = 30.0) -> Self:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, stdout=log, stderr=log, start_new_session=self.new_session
            )
        try:
            wait_until(lambda: port_open(self.host, self.port, timeout=0.2), self.process, timeout, self.name)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc} (port {self.port}); see {self.log_path}") from None
        return self

    def stop(self) -> None:
        stop_process(self.process, timeout=15)

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


def moto_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """A moto server (the DynamoDB endpoint, Secrets Manager too) from this environment."""
    return [str(Path(sys.executable).parent / "moto_server"), "-H", host, "-p", str(port)]


async def drop_database(server_dsn: str, name: str) -> None:
    """Drops database ``name`` of the server at ``server_dsn``, connections and all."""
    conn = await asyncpg.connect(with_database(server_dsn, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
