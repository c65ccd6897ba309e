"""Idempotency-Key: request fingerprints and the records kept in Redis.

Key ``<prefix>idem:{<tenant>}:<sha256(Idempotency-Key)>`` holds either

- ``P|<fingerprint>|<claim id>`` while the first request is in flight (expires after
  ``idempotency_lease_seconds`` should its gateway die), or
- ``D|<fingerprint>|<status>|<content type>\\n<body>`` once it answered, for 24 hours, or ``Z|...``
  with the body zlib-compressed when that is shorter (a batch answer compresses ~10x).

Bounds (issue 14): a response whose kept form is over ``IDEMPOTENCY_MAX_KEPT_BYTES`` is not kept
(the claim is released, so a retry runs again: only batches get that large, and every item of a
batch carries its own transfer id, so a re-run answers the applied ones as replays); a tenant keeps
at most ``IDEMPOTENCY_MAX_KEYS_PER_TENANT`` keys (the set ``idemset:{<tenant>}`` scores each by
its expiry), past which a new key is 429 until the oldest expires.

The claim is taken atomically with the rate-limit check (:mod:`.admission`); the first response is
stored only by the claimant (compare-and-set on the claim value), and released instead when its
status is one that must not be kept (401, 409 ``idempotency_key_in_use``, 429, 5xx), so a retry
runs afresh. The fingerprint covers method, path and the body compared as parsed JSON.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib
from dataclasses import dataclass

import msgspec

from shared.errors import ErrorCode, ProblemError

_VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")

# KEYS[1] = idem key, KEYS[2] = the tenant's set of keys; ARGV[1] = the claim value we wrote;
# ARGV[2] = final value ('' = release); ARGV[3] = TTL seconds. Only the claimant may complete or
# release its claim.
FINISH_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  local t = redis.call('TIME')
  local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3]) * 1000
  redis.call('ZADD', KEYS[2], expires, KEYS[1])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]) + 120)
end
return 1
"""

COMPRESS_ABOVE_BYTES = 2048
"""Kept bodies longer than this are stored compressed when that is shorter."""


def validate_key(value: str | None) -> str | None:
    """The Idempotency-Key header, checked (1-255 printable ASCII), or None when absent."""
    if value is None:
        return None
    if not _VALID_KEY.fullmatch(value):  # whole value: `$` would let a final newline through
        raise ProblemError(
            ErrorCode.INVALID_REQUEST,
            "Idempotency-Key must be 1-255 printable ASCII characters",
            field="Idempotency-Key",
        )
    return value


def idem_key(prefix: str, tenant_id: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{prefix}idem:{{{tenant_id}}}:{digest}"


def idem_set_key(prefix: str, tenant_id: str) -> str:
    """The tenant's kept keys, scored by expiry (ms): the per-tenant bound. Same slot as its keys."""
    return f"{prefix}idemset:{{{tenant_id}}}"


def fingerprint(method: str, path: str, body: bytes) -> str:
    """Same method, path and JSON body (as parsed JSON, key order ignored) -> same fingerprint."""
    try:
        canonical = b"json:" + msgspec.json.encode(msgspec.json.decode(body), order="sorted") if body.strip() else b""
    except (msgspec.DecodeError, RecursionError):  # not JSON, or nested too deeply to parse
        canonical = b"raw:" + body
    digest = hashlib.sha256()
    digest.update(method.encode() + b"\n" + path.encode() + b"\n")
    digest.update(canonical)
    return digest.hexdigest()


def new_claim(fp: str) -> bytes:
    return f"P|{fp}|{secrets.token_hex(8)}".encode()


def keep(status: int) -> bool:
    """Whether a response is kept for replays (docs/api.md section 6)."""
    # 409 idempotency_key_in_use is answered by the gateway itself, never kept and never passed here.
    return status not in (401, 429) and status < 500


@dataclass(frozen=True, slots=True)
class KeptResponse:
    status: int
    content_type: str
    body: bytes

    def encode(self, fp: str, max_bytes: int) -> bytes | None:
        """The record to keep, compressed when that is shorter; None when over ``max_bytes``."""
        kind, body = "D", self.body
        if len(body) > COMPRESS_ABOVE_BYTES:
            packed = zlib.compress(body, 6)
            if len(packed) < len(body):
                kind, body = "Z", packed
        record = f"{kind}|{fp}|{self.status:03d}|{self.content_type}\n".encode() + body
        return record if len(record) <= max_bytes else None

    @classmethod
    def decode(cls, record: bytes) -> KeptResponse:
        head, _, body = record.partition(b"\n")
        kind, _, status, content_type = head.decode().split("|", 3)
        return cls(int(status), content_type, zlib.decompress(body) if kind == "Z" else body)
