"""Fixtures of the shared-module tests: a moto server on loopback with dummy credentials, and a
private Redis."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cli.launcher import Helper, moto_command
from tests.support.processes import LOG_DIR, free_port


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


@contextmanager
def private_redis(data_dir: Path, *options: str) -> Iterator[Helper]:
    """A Redis of the test's own on a free loopback port (no persistence, ``options`` added), stopped
    afterwards; the test is skipped where redis-server is not installed."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    helper = Helper("redis", port, [*command, "--dir", str(data_dir), *options], LOG_DIR / f"redis-{port}.log")
    try:
        helper.start()
        yield helper
    finally:
        helper.stop()
