"""Fixtures of the shared-module tests that need AWS: a moto server on loopback, dummy credentials."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from cli.launcher import Helper, moto_command, wait_until
from cli.local_services import port_open
from tests.support.processes import LOG_DIR, free_port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    """Until ``proc`` listens on loopback ``port`` (the launcher's wait); a test failure if it never does."""
    try:
        wait_until(lambda: port_open("127.0.0.1", port, timeout=1), proc, 30, what)
    except RuntimeError:
        pytest.fail(f"{what} did not start")


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server, and dummy credentials so nothing can reach a real account."""
    port = free_port()
    moto = Helper("moto", port, moto_command(port), LOG_DIR / f"moto-{port}.log")
    none = tmp_path_factory.mktemp("aws") / "none"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": str(none),
            "AWS_SHARED_CREDENTIALS_FILE": str(none),
        }.items():
            mp.setenv(key, value)
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        try:
            moto.start()
            yield f"http://127.0.0.1:{port}"
        finally:
            moto.stop()
