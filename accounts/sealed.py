"""Secrets at rest (TOTP secrets, tenants' OIDC client secrets): AES-256-GCM under
DUALKEY_MASTER_KEY, as tenants/signing.py seals the signing keys. The associated
data names what the secret is and whose, so a ciphertext copied onto another row
(another user's TOTP, another tenant's client secret) fails to open."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

NONCE_BYTES = 12


def _aad(purpose: str, owner: int) -> bytes:
    return f"dualkey-{purpose}:v1:{owner}".encode()


def seal(plaintext: bytes, *, purpose: str, owner: int, master_key: bytes | None = None) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(master_key or settings.DUALKEY_MASTER_KEY).encrypt(nonce, plaintext, _aad(purpose, owner))


def unseal(sealed: bytes, *, purpose: str, owner: int, master_key: bytes | None = None) -> bytes:
    """Raises cryptography.exceptions.InvalidTag for a wrong key or a moved row."""
    sealed = bytes(sealed)
    return AESGCM(master_key or settings.DUALKEY_MASTER_KEY).decrypt(
        sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _aad(purpose, owner))
