"""Versioned SQL migrations, applied once each, safe to run from several processes at once.

Files ``migrations/NNNN_name.sql`` are applied in order, each in its own transaction together with
its row in ``schema_migrations`` (version, name, checksum). A session-level advisory lock makes
concurrent runners wait for each other instead of racing; an already-applied file whose checksum
changed is refused, since editing history would make environments silently differ. Once migration
0005 has created the least-privilege roles, every later migration runs as ``ledger_migrate``
(``SET ROLE``), the owner of the schema; the service connects as the DML-only ``ledger_app``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x1ED6E5  # arbitrary, constant: the advisory lock every runner takes
MIGRATION_ROLE = "ledger_migrate"
"""Owner of the schema objects (migration 0005); the application connects as ``APP_ROLE``."""
APP_ROLE = "ledger_app"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover() -> list[Migration]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        version, _, name = path.stem.partition("_")
        found.append(Migration(int(version), name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {MIGRATIONS_DIR}")
    return found


async def ensure_database(dsn: str) -> None:
    """Create the DSN's database when it does not exist yet (connecting to ``postgres``)."""
    parts = urlsplit(dsn)
    database = parts.path.lstrip("/") or "postgres"
    admin_dsn = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # Another runner may create it first.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                await conn.execute(f'CREATE DATABASE "{database.replace(chr(34), "")}"')
    finally:
        await conn.close()


async def _become_migration_role(conn: asyncpg.Connection) -> None:
    """Run the next migration as ``ledger_migrate`` once migration 0005 has set that role up in this
    database, so every schema object is created by (and owned by) the migration role, whoever
    connected: the master user on Aurora, a superuser locally, or the role itself. Checked before
    each migration because 0005 may be among the ones this run applies."""
    ready = await conn.fetchval(
        """SELECT current_user <> $1
                  AND has_schema_privilege($1, current_schema(), 'CREATE')
                  AND pg_has_role(current_user, $1, 'MEMBER')
             FROM pg_roles WHERE rolname = $1""",
        MIGRATION_ROLE,
    )
    if ready:
        await conn.execute(f"SET ROLE {MIGRATION_ROLE}")


async def migrate(dsn: str) -> list[int]:
    """Create the database if needed and apply pending migrations; returns the versions applied."""
    await ensure_database(dsn)
    conn = await asyncpg.connect(dsn)
    applied_now: list[int] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    integer PRIMARY KEY,
                       name       text NOT NULL,
                       checksum   text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"""
            )
            applied = {
                r["version"]: r["checksum"] for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
            }
            for migration in discover():
                if migration.version in applied:
                    if applied[migration.version] != migration.checksum:
                        raise RuntimeError(
                            f"migration {migration.version}_{migration.name} changed after it was applied"
                        )
                    continue
                await _become_migration_role(conn)
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
                log.info("applied migration", extra={"version": migration.version, "migration": migration.name})
                applied_now.append(migration.version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()
    return applied_now


def main() -> int:
    """``python -m services.ledger.migrate``: apply pending migrations to ``DATABASE_URL`` (the
    one-off ``<env>-ledger-migrate`` task in AWS, docs/runbooks.md)."""
    import asyncio

    from shared.settings import get_settings

    logging.basicConfig(level=logging.INFO)
    applied = asyncio.run(migrate(get_settings().database.url))
    print(f"applied migrations: {applied or 'none (up to date)'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
