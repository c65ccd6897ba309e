"""Standard Webhooks (https://www.standardwebhooks.com) secrets, message ids and signatures.

The secret is ``whsec_`` + base64 of 32 random bytes; the signing key is those bytes. A delivery
carries ``webhook-id`` (the same on every retry of one event to one endpoint, so receivers can drop
duplicates), ``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``:
``v1,`` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), computed over the exact body bytes
sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret (the prefix is optional, as the specification allows)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def message_id(tenant_id: uuid.UUID, seq: int) -> str:
    """``webhook-id``: the event's identity, stable across retries and unique across tenants."""
    return f"evt_{tenant_id.hex}_{seq}"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
