"""``./scripts/run``: the whole platform locally, in the foreground, until SIGINT or SIGTERM.

1. PostgreSQL and Redis: used where they listen (``DATABASE_URL``, ``REDIS_URL``), else private
   instances under ``.local/`` (:class:`cli.local_services.LocalServices`).
2. A DynamoDB endpoint at ``DYNAMODB_ENDPOINT_URL`` (default ``http://127.0.0.1:8004``): used where
   one listens, else dynalite (installed once into ``.local/node_modules`` with npm, data in
   ``.local/dynamodb``), or, without Node, a moto server (in memory: tenants and keys are then lost
   on stop; the line saying which endpoint runs says so).
3. Migrations, then the session, ledger and gateway services as child processes (logs in
   ``.local/logs/``), each awaited on ``/health/ready``; a service that dies is restarted. The
   processes are started, awaited and stopped by cli/launcher.py, as for the bench and the tests.
4. One line containing ``ready``, the gateway URL and how to get an API key, on stdout.
5. On SIGINT/SIGTERM: every child stopped gracefully (newest first), then what step 1-2 started;
   exit 0.

It takes no arguments: ``--help`` prints the usage (exit 0) and starts nothing; anything else prints
it on stderr and exits 2.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType

from cli.launcher import Helper, ServiceProcess, moto_command
from cli.local_services import LOCAL_DIR, ROOT, LocalServices, host_port, port_open, say
from shared.settings import Settings, get_settings

LOG_DIR = LOCAL_DIR / "logs"
READY_TIMEOUT_SECONDS = 60.0
SERVICES = ("session", "ledger", "gateway")


def child(name: str, port: int, env: dict[str, str]) -> ServiceProcess:
    """A service of the platform (cli/launcher.py); its own session, so Ctrl-C reaches run.py only,
    which then stops the children in order."""
    return ServiceProcess(name, port, env, LOG_DIR / f"{name}.log", new_session=True)


@dataclass
class Platform:
    settings: Settings
    local: LocalServices = field(default_factory=LocalServices)
    children: list[ServiceProcess] = field(default_factory=list)
    dynamodb_note: str = ""

    def ensure_dynamodb(self, endpoint: str) -> None:
        host, port = host_port(endpoint, 8004)
        if port_open(host, port):
            self.dynamodb_note = f"DynamoDB endpoint {endpoint} (already running)"
            return
        node, npm = shutil.which("node"), shutil.which("npm")
        dynalite = LOCAL_DIR / "node_modules" / "dynalite" / "cli.js"
        if node and npm and not dynalite.exists():
            say("installing dynalite into .local/node_modules (first run only)")
            LOCAL_DIR.mkdir(parents=True, exist_ok=True)
            result = subprocess.run(
                [npm, "install", "--prefix", str(LOCAL_DIR), "--no-audit", "--no-fund", "--loglevel=error", "dynalite"],
                stdout=subprocess.DEVNULL,
                check=False,
            )
            if result.returncode != 0:
                say("npm could not install dynalite; falling back to a moto server")
        data_dir = LOCAL_DIR / "dynamodb"
        if node and dynalite.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            command = [
                node,
                str(dynalite),
                "--host",
                host,
                "--port",
                str(port),
                "--path",
                str(data_dir),
                "--createTableMs",
                "0",
                "--deleteTableMs",
                "0",
                "--updateTableMs",
                "0",
            ]
            self.dynamodb_note = f"DynamoDB endpoint {endpoint} (dynalite, data in {data_dir})"
        else:
            command = moto_command(port, host)
            self.dynamodb_note = (
                f"DynamoDB endpoint {endpoint} (moto server, in memory: Node is not installed, "
                "so tenants and keys do not survive a stop)"
            )
        say(f"starting {self.dynamodb_note}")
        endpoint_process = Helper(
            "the DynamoDB endpoint", port, command, LOG_DIR / "dynamodb.log", new_session=True, host=host
        )
        try:
            endpoint_process.start()
        finally:  # adopted even when it never listened: LocalServices.stop stops it either way
            if endpoint_process.process is not None:
                self.local.adopt("the DynamoDB endpoint", endpoint_process.process)

    def start_services(self) -> None:
        endpoint = self.settings.dynamodb.endpoint_url or ""
        # A local demo's webhook receiver listens on this machine: allow loopback/private webhook URLs
        # here (never the default; AWS sets it false and requires https). An explicit setting wins.
        env = {
            "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DYNAMODB_ENDPOINT_URL": endpoint,
        }
        ports = {
            "session": self.settings.session.port,
            "ledger": self.settings.ledger.port,
            "gateway": self.settings.gateway.port,
        }
        for name in SERVICES:
            if port_open("127.0.0.1", ports[name]):
                raise RuntimeError(f"port {ports[name]} ({name}) is already in use; is the platform running already?")
            self.children.append(child(name, ports[name], env).launch())
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        for service in self.children:  # all three start side by side; one deadline for the lot
            service.wait_ready(timeout=max(0.0, deadline - time.monotonic()))

    def supervise(self) -> None:
        """Restart a service that died on its own (not on our stop)."""
        for service in self.children:
            if not service.alive():
                service.restarts += 1
                say(
                    f"the {service.name} service exited ({service.process.returncode if service.process else '?'}); "
                    f"restarting it (see {service.log_path})"
                )
                service.launch()

    def stop(self) -> None:
        for service in reversed(self.children):
            say(f"stopping the {service.name} service")
            service.stop(timeout=25.0)
        self.children.clear()
        self.local.stop()


USAGE = """usage: ./scripts/run [--help]

Runs the whole platform locally in the foreground (PostgreSQL, Redis and DynamoDB where they listen,
else private ones under .local/; migrations; the session, ledger and gateway services) and prints
one line containing "ready" and the gateway URL when it serves. Ctrl-C stops everything.
It takes no arguments: configuration is by environment variables (README.md, shared/settings/).
Logs: .local/logs/<service>.log."""


def main(argv: list[str]) -> int:
    if argv in (["--help"], ["-h"]):
        print(USAGE)
        return 0
    if argv:
        print(USAGE, file=sys.stderr)
        return 2
    settings = get_settings()
    platform = Platform(settings)
    stopping = {"signal": 0}

    def on_signal(signum: int, _: FrameType | None) -> None:
        stopping["signal"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        platform.local.ensure_postgres(settings.database.url)
        platform.local.ensure_redis(settings.redis.url)
        if settings.dynamodb.endpoint_url:
            platform.ensure_dynamodb(settings.dynamodb.endpoint_url)
        from services.ledger.migrate import migrate

        applied = asyncio.run(migrate(settings.database.url))
        say(f"database migrated ({len(applied)} new migration(s) applied)")
        platform.start_services()
        say(platform.dynamodb_note or "DynamoDB: the regional AWS endpoint")
        gateway = f"http://127.0.0.1:{settings.gateway.port}"
        print(
            f"ready: gateway at {gateway} (get an API key with ./scripts/admin create-tenant NAME, "
            f"then POST {gateway}/v1/sessions; logs in {LOG_DIR}; Ctrl-C stops)",
            flush=True,
        )
        while not stopping["signal"]:
            time.sleep(0.2)
            if not stopping["signal"]:
                platform.supervise()
        say(f"received {signal.Signals(stopping['signal']).name}; stopping")
        return 0
    except Exception as exc:
        if stopping["signal"]:
            return 0
        say(f"failed: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        platform.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
