"""Real service processes for tests: :class:`cli.launcher.ServiceProcess`, logging to ``.local/test-logs``.

The launcher (cli/launcher.py) is the one ``./scripts/run`` and ``./scripts/bench`` use too; here a
service is built with the tests' log directory, one log per service and port, so the processes of
parallel workers never share a file.
"""

from __future__ import annotations

from pathlib import Path

from cli import launcher
from cli.local_services import free_port, http_status

__all__ = ["LOG_DIR", "ROOT", "ServiceProcess", "free_port", "http_status"]

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / ".local" / "test-logs"


class ServiceProcess(launcher.ServiceProcess):
    """``ServiceProcess(name, port, env)``: the launcher's, with its log under :data:`LOG_DIR`."""

    def __init__(self, name: str, port: int, env: dict[str, str]) -> None:
        super().__init__(name, port, env, LOG_DIR / f"{name}-{port}.log")
