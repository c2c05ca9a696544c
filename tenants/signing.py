"""The vendor half of signing: per-tenant Ed25519 keys, encrypted at rest.

The private key (its 32-byte seed) is sealed with AES-256-GCM under
DUALKEY_MASTER_KEY. The associated data binds each ciphertext to its tenant and
kid, so a row's ciphertext copied onto another tenant's row fails to decrypt
instead of signing that tenant's grants.

Rotation is in two steps, because the customer's gatekeeper trusts only the keys
in its own configuration and the portal must not sign with a key it has not been
told about:

1. `prepare_next_key`: a "next" key is made and published (the settings page's
   [vendor_keys] block lists it); nothing is signed with it yet.
2. `activate_next_key`: once the gatekeeper trusts it (the settings page's check
   sees its kid in the gatekeeper's health), it becomes the active key, and the
   old one stays "previous" until every grant it signed has expired;
   `purge_retired_keys` drops it after.

`rotate_signing_key` does both at once, for a key that must stop signing now
(a suspected compromise): grants are refused until the customer adds the new key.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gatekeeper_client.grants import SigningKey, private_key_from_seed, private_key_seed
from tenants.models import Tenant, TenantSigningKey

NONCE_BYTES = 12
# The longest grant the portal mints (the agent's put grant), plus the clock skew
# a gatekeeper tolerates: a retired key must verify grants for at least this long.
MAX_GRANT_LIFETIME = 300
CLOCK_LEEWAY = 30
RETIRED_KEY_TTL = dt.timedelta(seconds=MAX_GRANT_LIFETIME + CLOCK_LEEWAY)


def _associated_data(tenant_id: int, kid: str) -> bytes:
    return f"dualkey-signing-key:v1:{tenant_id}:{kid}".encode()


def seal_seed(seed: bytes, *, tenant_id: int, kid: str, master_key: bytes | None = None) -> bytes:
    """nonce || AES-GCM(seed), authenticated together with the tenant and kid."""
    nonce = os.urandom(NONCE_BYTES)
    aead = AESGCM(master_key or settings.DUALKEY_MASTER_KEY)
    return nonce + aead.encrypt(nonce, seed, _associated_data(tenant_id, kid))


def open_seed(sealed: bytes, *, tenant_id: int, kid: str, master_key: bytes | None = None) -> bytes:
    """Raises cryptography.exceptions.InvalidTag for a wrong key or a moved row."""
    sealed = bytes(sealed)
    aead = AESGCM(master_key or settings.DUALKEY_MASTER_KEY)
    return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _associated_data(tenant_id, kid))


def new_kid(tenant: Tenant, now: dt.datetime) -> str:
    # Bare-key safe in TOML and within the gatekeeper's kid alphabet.
    return f"{tenant.slug}-{now:%Y%m%d}-{secrets.token_hex(3)}"


class RotationError(Exception):
    """A rotation step that cannot be done now; the message says why."""


def _new_key_row(tenant: Tenant, status: str, now: dt.datetime) -> TenantSigningKey:
    fresh = SigningKey.generate(new_kid(tenant, now))
    return TenantSigningKey.objects.create(
        tenant=tenant,
        kid=fresh.kid,
        public_key=fresh.public_b64,
        private_key_encrypted=seal_seed(private_key_seed(fresh.private_key), tenant_id=tenant.pk, kid=fresh.kid),
        status=status,
        created_at=now,
    )


def create_signing_key(tenant: Tenant, *, now: dt.datetime | None = None) -> TenantSigningKey:
    """A new active key. The caller makes sure no other key of the tenant is active."""
    return _new_key_row(tenant, TenantSigningKey.Status.ACTIVE, now or timezone.now())


def _lock(tenant: Tenant) -> None:
    # Lock the tenant row so two rotations cannot both find "the" active or next key.
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()


def prepare_next_key(tenant: Tenant, *, now: dt.datetime | None = None) -> TenantSigningKey:
    """Step 1: the tenant's next key, made now unless one is already waiting."""
    with transaction.atomic():
        _lock(tenant)
        waiting = tenant.signing_keys.filter(status=TenantSigningKey.Status.NEXT).first()
        return waiting or _new_key_row(tenant, TenantSigningKey.Status.NEXT, now or timezone.now())


def activate_next_key(tenant: Tenant, kid: str, *, now: dt.datetime | None = None) -> TenantSigningKey:
    """Step 2: sign with the next key `kid` from now on; the active one becomes previous.

    `kid` names the key the caller saw the gatekeeper trust, so a stale form (the
    next key was replaced meanwhile) activates nothing.
    """
    now = now or timezone.now()
    with transaction.atomic():
        _lock(tenant)
        waiting = tenant.signing_keys.filter(status=TenantSigningKey.Status.NEXT).first()
        if waiting is None:
            raise RotationError("There is no next key to switch to: prepare one first.")
        if waiting.kid != kid:
            raise RotationError(f"The next key is {waiting.kid}, not {kid[:64]}: reload the page.")
        tenant.signing_keys.filter(status=TenantSigningKey.Status.ACTIVE).update(
            status=TenantSigningKey.Status.PREVIOUS, retired_at=now
        )
        waiting.status = TenantSigningKey.Status.ACTIVE
        waiting.save(update_fields=["status"])
        return waiting


def rotate_signing_key(tenant: Tenant, *, now: dt.datetime | None = None) -> TenantSigningKey:
    """Both steps at once: a new key signs from now on (for a key that must stop now)."""
    now = now or timezone.now()
    with transaction.atomic():
        return activate_next_key(tenant, prepare_next_key(tenant, now=now).kid, now=now)


def purge_retired_keys(*, tenant: Tenant | None = None, now: dt.datetime | None = None) -> int:
    """Delete previous keys whose last grant has certainly expired. Returns the count."""
    now = now or timezone.now()
    expired = TenantSigningKey.objects.filter(
        status=TenantSigningKey.Status.PREVIOUS, retired_at__lte=now - RETIRED_KEY_TTL
    )
    if tenant is not None:
        expired = expired.filter(tenant=tenant)
    deleted, _ = expired.delete()
    return deleted


def active_signing_key(tenant: Tenant) -> SigningKey:
    """The key grants for this tenant are signed with. Raises DoesNotExist if none."""
    row = tenant.signing_keys.get(status=TenantSigningKey.Status.ACTIVE)
    return SigningKey(row.kid, private_key_from_seed(open_seed(row.private_key_encrypted, tenant_id=tenant.pk, kid=row.kid)))


KEY_ORDER = {TenantSigningKey.Status.ACTIVE: 0, TenantSigningKey.Status.NEXT: 1, TenantSigningKey.Status.PREVIOUS: 2}


def trusted_public_keys(tenant: Tenant) -> list[TenantSigningKey]:
    """Keys the tenant's gatekeeper should trust now: active, next, then previous."""
    keys = list(tenant.signing_keys.all())
    return sorted(keys, key=lambda key: (KEY_ORDER[key.status], -key.created_at.timestamp()))


def vendor_keys_toml(tenant: Tenant) -> str:
    """The exact [vendor_keys] table the gatekeeper's config file takes."""
    lines = ["[vendor_keys]"]
    lines += [f'{key.kid} = "{key.public_key}"' for key in trusted_public_keys(tenant)]
    return "\n".join(lines) + "\n"
