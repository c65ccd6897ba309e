"""Private PostgreSQL and Redis for ``./scripts/run`` and ``./scripts/test``.

If a server already listens at the configured URL it is used as it is. Otherwise, when the server
binaries are installed, a private instance is started with its data under ``.local/`` (so what it
stores survives a stop and a new start) and stopped again by :meth:`LocalServices.stop`.
PostgreSQL refuses to run as root, so as root the private cluster runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = ROOT / ".local"


def say(message: str) -> None:
    print(f"[local] {message}", file=sys.stderr, flush=True)


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


PORTS_FROM = 20000
"""The lowest port :func:`free_port` picks."""

_PICK = random.SystemRandom()
"""Not the ``random`` module: pytest plugins (hypothesis) seed it alike in every test worker, and the
workers would then draw the same ports."""

_GIVEN: set[int] = set()
"""Ports this process has handed out: not bound until their child starts, so a second draw could
return one again."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now, for a child to listen on later.

    Picked at random below the kernel's ephemeral range, not by binding port 0: a port from that
    range can be taken by any outgoing connection (the other test worker makes hundreds) in the
    seconds before the child binds it. Below the range only this function in another process can
    take it, by drawing the same number (this process never hands a port out twice). Falls back to
    port 0 where the range starts too low."""
    for _ in range(200 if _EPHEMERAL_FROM - PORTS_FROM >= 1000 else 0):
        port = _PICK.randrange(PORTS_FROM, _EPHEMERAL_FROM)
        if port in _GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken (or lingering); draw again
        _GIVEN.add(port)
        return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_ports_from() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


_EPHEMERAL_FROM = _ephemeral_ports_from()
"""Where the kernel's ephemeral ports start (read once)."""


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The status of a GET (health probes); None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at another database of the same server."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


def wait_for_port(host: str, port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start listening on {host}:{port} within {timeout:.0f}s")


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def find_binary(name: str) -> str | None:
    """The path of a PostgreSQL program (``initdb``, ``pg_ctl``, ``pgbench`` ...): on ``PATH``, else
    the newest ``/usr/lib/postgresql/<version>/bin`` (Debian keeps them off ``PATH``); None when not
    installed. Public: the bench and the tests' throwaway clusters find their binaries the same way."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def as_postgres_user() -> list[str]:
    """Command prefix that drops root to the ``postgres`` user (PostgreSQL refuses root); empty when
    not root. Public: every caller that runs a PostgreSQL server program needs it (tests/support)."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _chown_to_postgres(path: Path) -> None:
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam("postgres")
    for directory in [path, *path.parents]:
        if directory == ROOT.parent or directory == Path("/"):
            break
        # Parents must be traversable by the postgres user.
        os.chmod(directory, os.stat(directory).st_mode | 0o011)
    os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class LocalServices:
    """What this process started, so that exactly that is stopped again."""

    stops: list[tuple[str, list[str] | subprocess.Popen[bytes]]] = field(default_factory=list)

    def ensure_postgres(self, database_url: str, data_dir: Path | None = None) -> None:
        host, port = host_port(database_url, 5432)
        if port_open(host, port):
            return
        initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError(f"nothing listens at {host}:{port} and no PostgreSQL binaries are installed")
        data_dir = data_dir or LOCAL_DIR / "postgres"
        user = urlsplit(database_url).username or "root"
        if not (data_dir / "PG_VERSION").exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            _chown_to_postgres(data_dir)
            say(f"initialising a private PostgreSQL cluster in {data_dir}")
            subprocess.run(
                [*as_postgres_user(), initdb, "-D", str(data_dir), "-U", user, "--auth=trust", "-E", "UTF8"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        say(f"starting a private PostgreSQL on {host}:{port}")
        options = f"-h {host} -p {port} -k {data_dir} -c fsync=on -c max_connections=200"
        subprocess.run(
            [
                *as_postgres_user(),
                pg_ctl,
                "-D",
                str(data_dir),
                "-o",
                options,
                "-l",
                str(data_dir / "server.log"),
                "-w",
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(host, port, 30, "PostgreSQL")
        self.stops.append(
            ("PostgreSQL", [*as_postgres_user(), pg_ctl, "-D", str(data_dir), "-m", "fast", "-w", "stop"])
        )

    def ensure_redis(self, redis_url: str, data_dir: Path | None = None) -> None:
        host, port = host_port(redis_url, 6379)
        if port_open(host, port):
            return
        server = shutil.which("redis-server")
        if not server:
            raise RuntimeError(f"nothing listens at {host}:{port} and redis-server is not installed")
        data_dir = data_dir or LOCAL_DIR / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        say(f"starting a private Redis on {host}:{port} (append-only file in {data_dir})")
        process = subprocess.Popen(
            [
                server,
                "--bind",
                host,
                "--port",
                str(port),
                "--dir",
                str(data_dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                str(data_dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(host, port, 15, "Redis")
        self.stops.append(("Redis", process))

    def adopt(self, name: str, process: subprocess.Popen[bytes]) -> None:
        """Stop ``process`` (started elsewhere) together with the rest."""
        self.stops.append((name, process))

    def stop(self) -> None:
        """Stop everything this object started, newest first."""
        while self.stops:
            name, handle = self.stops.pop()
            say(f"stopping {name}")
            if isinstance(handle, list):
                subprocess.run(handle, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                continue
            if handle.poll() is None:
                handle.terminate()
                try:
                    handle.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    handle.kill()
                    handle.wait()
