"""``./scripts/test``: lint, type-check and run the whole suite against real services.

PostgreSQL and Redis are used where they listen (``DATABASE_URL``, ``REDIS_URL``); otherwise private
instances are started from the installed binaries and stopped afterwards. Arguments are passed to
pytest; ``--no-lint`` skips ruff and mypy (for quick local iterations only: CI runs everything).
"""

from __future__ import annotations

import subprocess
import sys

from cli.local_services import ROOT, LocalServices, say
from shared.settings import get_settings


def main(argv: list[str]) -> int:
    lint = "--no-lint" not in argv
    pytest_args = [arg for arg in argv if arg != "--no-lint"]
    settings = get_settings()
    services = LocalServices()
    try:
        services.ensure_postgres(settings.database.url)
        services.ensure_redis(settings.redis.url)
        if lint:
            say("ruff")
            if subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT).returncode:
                return 1
            say("mypy")
            if subprocess.run(
                [sys.executable, "-m", "mypy", "shared", "services", "stacks", "cli"], cwd=ROOT
            ).returncode:
                return 1
        say("pytest")
        return subprocess.run([sys.executable, "-m", "pytest", *pytest_args], cwd=ROOT).returncode
    finally:
        services.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
