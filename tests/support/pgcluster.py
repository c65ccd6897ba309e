"""A private, throwaway PostgreSQL cluster that a test may restart, crash or cut off.

The machine's shared PostgreSQL (``DATABASE_URL``) is used by other test runs at the same time, so
tests that restart the database server get their own cluster instead: ``initdb`` into a temporary
directory, ``pg_ctl`` on a free loopback port, and everything removed again by :meth:`destroy`.
PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` user (the same
way ``cli/local_services.py`` starts the local one).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cli.local_services import as_postgres_user, find_binary
from tests.support.processes import free_port


def _binary(name: str) -> str:
    found = find_binary(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: the private PostgreSQL cluster needs the server binaries")
    return found


@dataclass
class PrivatePostgres:
    """One cluster: superuser ``root`` with trust auth, listening on 127.0.0.1:``port`` only."""

    port: int = field(default_factory=free_port)
    user: str = "root"
    data_dir: Path = field(init=False)
    _root: Path = field(init=False)

    def __post_init__(self) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="private-pg-"))
        self.data_dir = self._root / "data"

    def url(self, database: str = "ledger") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        subprocess.run([*as_postgres_user(), *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> PrivatePostgres:
        self.data_dir.mkdir(parents=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            for path in (self._root, self.data_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(_binary("initdb"), "-D", str(self.data_dir), "-U", self.user, "--auth=trust", "-E", "UTF8")
        return self

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -c fsync=on -c max_connections=100"
        self._run(
            _binary("pg_ctl"),
            "-D",
            str(self.data_dir),
            "-o",
            options,
            "-l",
            str(self.data_dir / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clean shutdown; ``immediate``: like a crash (WAL recovery on the next start)."""
        self._run(_binary("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                [*as_postgres_user(), _binary("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        shutil.rmtree(self._root, ignore_errors=True)
