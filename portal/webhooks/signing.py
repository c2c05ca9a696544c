"""The signature on every webhook request (docs/webhooks.md).

    Dualkey-Signature: t=1767225600,v1=<hex HMAC-SHA256(secret, "1767225600." + body)>

The timestamp is signed with the body, so a receiver that refuses timestamps more
than TOLERANCE_SECONDS from its own clock refuses replays of an old request. One
canonical signed string, one verify path, a constant-time compare, time injected.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Dualkey-Signature"
EVENT_HEADER = "Dualkey-Event"
DELIVERY_HEADER = "Dualkey-Delivery"
TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"


class SignatureError(Exception):
    pass


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, now: int) -> str:
    return f"t={now},v1={_mac(secret, now, body)}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance: int = TOLERANCE_SECONDS) -> None:
    """Raises SignatureError unless `header` signs `body` with `secret` within `tolerance`."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError):
        raise SignatureError("malformed signature header") from None
    if abs(now - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerance")
    if not hmac.compare_digest(given.encode(), _mac(secret, timestamp, body).encode()):
        raise SignatureError("signature does not match")
