"""The Redis users of the platform and what each may do: the one definition of their ACLs.

ElastiCache RBAC (``stacks.data_redis``) gives each service its own Redis user whose access string is
:meth:`RedisUser.access_string`; the local test (``tests/e2e/test_redis_acl.py``) creates the same
users on a private Redis with ``ACL SETUSER`` built from the same method and runs the real services
against them. A key family or command added to a service without being added here is therefore
refused in that test (and in AWS), never silently allowed.

Invariants:

- Every user is limited to keys under the platform's prefix (:data:`KEY_PREFIX`, which the compute
  tier passes as ``REDIS_KEY_PREFIX``), by family. What a service only reads it may not write
  (Redis 7 key permissions and selectors): the gateway cannot forge or delete a session record or
  an API-key revocation marker; the session service, which only writes those, cannot read them.
- Commands are an allow list after ``-@all``: only what the service's scripts and calls use.
  Scripts run with the caller's permissions (Redis 7), so the commands inside them are listed too.
- The ``default`` user (which ElastiCache requires in every user group) is switched off: a client
  that does not name its user can do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

KEY_PREFIX = "fl:"
"""``REDIS_KEY_PREFIX`` of every service in AWS (``shared.settings``' default), and of the ACLs."""

CONNECTION_COMMANDS = ("ping",)
"""Health checks. AUTH and HELLO need no grant: Redis lets any connection run them. (redis-py also
sends CLIENT SETINFO on connect, best effort; Redis 7.0 and 7.1 do not know it.)"""

SCRIPT_COMMANDS = ("evalsha", "script|load")
"""How redis-py runs a registered script: EVALSHA, and SCRIPT LOAD once when the server lacks it.
Plain EVAL (arbitrary Lua) is not granted."""

DISABLED_DEFAULT_ACCESS = "off -@all"
"""Access string of the ``default`` user: no connection can act without naming its user."""


@dataclass(frozen=True)
class RedisUser:
    """One service's Redis user: its name and the key families and commands it may use."""

    name: str
    """Redis user name (``AUTH <name> <password>``); also the service that connects as it."""

    read_write: tuple[str, ...]
    """Key families (after the prefix, ending in ``:``) the service reads and writes."""

    write_only: tuple[str, ...]
    """Key families it only writes (``%W~``: SET without GET)."""

    commands: tuple[str, ...]
    """Commands it runs on those families, directly or inside its scripts (lower case)."""

    read_only: tuple[str, ...] = ()
    """Key families it only reads. A script that reads one gets it in KEYS, and EVALSHA declares
    its keys read-write, so ``%R~`` alone would refuse the script: one selector lets EVALSHA name
    these keys, another lets :attr:`read_commands` (and nothing else) touch them. A script the
    service loads may therefore read them and still cannot write one."""

    read_commands: tuple[str, ...] = ()
    """The commands allowed on :attr:`read_only` families."""

    def key_patterns(self, prefix: str = KEY_PREFIX) -> list[str]:
        """The key selectors of the user's root permissions, e.g. ``~fl:idem:*``, ``%W~fl:sess:*``."""
        return [f"~{_scoped(prefix)}{family}*" for family in self.read_write] + [
            f"%W~{_scoped(prefix)}{family}*" for family in self.write_only
        ]

    def access_string(self, prefix: str = KEY_PREFIX) -> str:
        """The user's access string: ElastiCache's ``AccessString``; with a password rule in front,
        the arguments of ``ACL SETUSER``. Channel patterns are left alone: no Pub/Sub command is
        granted."""
        grants = [f"+{command}" for command in (*CONNECTION_COMMANDS, *SCRIPT_COMMANDS, *self.commands)]
        parts = ["on", *self.key_patterns(prefix), "-@all", *grants]
        if self.read_only:
            read = [f"%R~{_scoped(prefix)}{family}*" for family in self.read_only]
            parts.append("(" + " ".join([*read, *(f"+{c}" for c in self.read_commands)]) + ")")
            named = [f"~{_scoped(prefix)}{family}*" for family in self.read_only]
            parts.append("(" + " ".join([*named, "+evalsha"]) + ")")
        return " ".join(parts)


def _scoped(prefix: str) -> str:
    if not prefix or any(c in prefix for c in "*?[]\\ ()"):
        raise ValueError(f"a key prefix must be non-empty, without glob characters or blanks: {prefix!r}")
    return prefix


GATEWAY = RedisUser(
    name="gateway",
    # Idempotency records and their per-tenant index, tenant rate limits, login and refusal limits.
    read_write=("idem:", "idemset:", "rl:", "login:", "refused:"),
    write_only=(),
    commands=(
        "get",
        "set",
        "del",
        "exists",
        "time",
        "expire",
        "pexpire",
        "pttl",
        "zadd",
        "zrem",
        "zcard",
        "zrange",
        "zremrangebyscore",
    ),
    # The session cache and revocation markers are written by the session service only (ADR 0021):
    # the gateway's lookup script reads them (GET, EXISTS) and can change neither.
    read_only=("sess:", "keyrev:"),
    read_commands=("get", "exists"),
)
"""The gateway: everything it does in Redis is a script over its own families, plus session lookups."""

SESSION = RedisUser(
    name="session",
    # The live-session set of each API key (the per-key session cap).
    read_write=("live:",),
    # Cache fills, tombstones and revocation markers: written, never read back by this service.
    write_only=("sess:", "keyrev:"),
    commands=("set", "del", "time", "expireat", "zadd", "zrem", "zcard", "zrange", "zremrangebyscore"),
)
"""The session service: the session cache's writer and the per-key session cap."""

USERS = (GATEWAY, SESSION)
"""Every service that uses Redis (the ledger does not)."""


def user(name: str) -> RedisUser:
    """The Redis user of service ``name``."""
    for candidate in USERS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)
