"""Minting grants: EdDSA (Ed25519) JWTs that a tenant's gatekeeper verifies.

A grant is the vendor's signature on one request: who (`sub`), where (`aud`: one
gatekeeper), what (`scope`: a key prefix and the ops), and for how long (`exp`).
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# What a grant's scope may name: the gatekeeper's own list, so the two halves agree.
from gatekeeper.errors import MULTI_PREFIX_OPS, OPS
from gatekeeper.grants import MAX_SCOPE_PREFIXES

DEFAULT_LIFETIME = 60


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_b64(private_key: Ed25519PrivateKey) -> str:
    """The public half in the form the gatekeeper's [vendor_keys] takes."""
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return b64url(raw)


def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


def private_key_seed(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, kid: str) -> "SigningKey":
        return cls(kid, Ed25519PrivateKey.generate())

    @property
    def public_b64(self) -> str:
        return public_key_b64(self.private_key)


def mint_grant(
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    subject: str,
    prefix: str | None = None,
    ops: list[str] | tuple[str, ...],
    lifetime: int = DEFAULT_LIFETIME,
    name: str | None = None,
    now: float | None = None,
    jti: str | None = None,
    prefixes: list[str] | tuple[str, ...] | None = None,
    identity: str | None = None,
) -> str:
    """Sign a grant for one `prefix`, or for several `prefixes` (protocol 2: get
    and list only, at most MAX_SCOPE_PREFIXES). `now` is injectable so tests can
    make expired grants. `identity` (protocol 3): the person as the customer's IdP
    names them, which a gatekeeper with [identity] compares with their ID token."""
    if (prefix is None) == (prefixes is None):
        raise ValueError("a grant names a prefix or prefixes")
    named = [prefix] if prefixes is None else list(prefixes)
    if not named or not all(p.endswith("/") for p in named):
        raise ValueError("a grant prefix ends with '/'")
    if prefixes is not None and (len(named) > MAX_SCOPE_PREFIXES or len(set(named)) != len(named)
                                 or not set(ops) <= MULTI_PREFIX_OPS):
        raise ValueError(f"prefixes: 1 to {MAX_SCOPE_PREFIXES} distinct, for get and list only")
    unknown = set(ops) - set(OPS)
    if unknown or not ops:
        raise ValueError(f"unknown ops: {sorted(unknown)}")
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued,
        "exp": issued + int(lifetime),
        "jti": jti or secrets.token_urlsafe(16),
        "scope": {"prefix": prefix, "ops": list(ops)} if prefixes is None
        else {"prefixes": named, "ops": list(ops)},
    }
    if name:
        claims["name"] = name
    if identity:
        claims["identity"] = identity
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})
