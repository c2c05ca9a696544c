import datetime as dt

import jwt
from cryptography.exceptions import InvalidTag
from django.db import IntegrityError, transaction
from django.utils import timezone

from gatekeeper_client.grants import mint_grant, private_key_seed
from tenants.models import TenantSigningKey
from tenants.signing import (
    RETIRED_KEY_TTL,
    RotationError,
    activate_next_key,
    active_signing_key,
    create_signing_key,
    open_seed,
    prepare_next_key,
    purge_retired_keys,
    rotate_signing_key,
    seal_seed,
    trusted_public_keys,
    vendor_keys_toml,
)
from tests.portal.base import BaseTestCase, decode_grant

WRONG_MASTER_KEY = b"w" * 32


class SigningKeyStorageTestCase(BaseTestCase):
    def test_the_database_never_holds_the_raw_seed(self):
        row = self.tenant_a.signing_keys.get()
        seed = private_key_seed(active_signing_key(self.tenant_a).private_key)
        stored = bytes(row.private_key_encrypted)
        self.assertNotIn(seed, stored)
        self.assertEqual(len(stored), 12 + 32 + 16)  # nonce, ciphertext, tag

    def test_decrypting_with_the_wrong_master_key_fails(self):
        row = self.tenant_a.signing_keys.get()
        with self.assertRaises(InvalidTag):
            open_seed(row.private_key_encrypted, tenant_id=self.tenant_a.pk, kid=row.kid,
                      master_key=WRONG_MASTER_KEY)

    def test_a_ciphertext_moved_to_another_tenant_does_not_decrypt(self):
        row = self.tenant_a.signing_keys.get()
        with self.assertRaises(InvalidTag):
            open_seed(row.private_key_encrypted, tenant_id=self.tenant_b.pk, kid=row.kid)

    def test_sealing_twice_gives_different_ciphertexts(self):
        one = seal_seed(b"s" * 32, tenant_id=1, kid="k")
        two = seal_seed(b"s" * 32, tenant_id=1, kid="k")
        self.assertNotEqual(one, two)
        self.assertEqual(open_seed(one, tenant_id=1, kid="k"), b"s" * 32)

    def test_the_public_key_matches_the_private_key(self):
        row = self.tenant_a.signing_keys.get()
        self.assertEqual(active_signing_key(self.tenant_a).public_b64, row.public_key)

    def test_a_tenant_has_only_one_active_key(self):
        with self.assertRaises(IntegrityError), transaction.atomic():
            create_signing_key(self.tenant_a)

    def test_kids_are_toml_bare_keys(self):
        self.assertRegex(self.tenant_a.signing_keys.get().kid, r"\Aalpha-\d{8}-[0-9a-f]{6}\Z")


class RotationTestCase(BaseTestCase):
    def mint(self, **kwargs):
        return mint_grant(active_signing_key(self.tenant_a), issuer="http://127.0.0.1:8000", audience="gk-alpha",
                          subject="user:1", prefix="tickets/x/", ops=["get"], **kwargs)

    def test_rotation_makes_a_new_active_key_and_keeps_the_previous(self):
        old = self.tenant_a.signing_keys.get()
        new = rotate_signing_key(self.tenant_a)
        old.refresh_from_db()
        self.assertEqual(new.status, TenantSigningKey.Status.ACTIVE)
        self.assertEqual(old.status, TenantSigningKey.Status.PREVIOUS)
        self.assertIsNotNone(old.retired_at)
        self.assertNotEqual(new.kid, old.kid)
        self.assertEqual(active_signing_key(self.tenant_a).kid, new.kid)

    def test_grants_signed_before_rotation_still_verify(self):
        before = self.mint()
        rotate_signing_key(self.tenant_a)
        after = self.mint()
        self.assertNotEqual(jwt.get_unverified_header(before)["kid"], jwt.get_unverified_header(after)["kid"])
        self.assertEqual(decode_grant(before, self.tenant_a)["sub"], "user:1")
        self.assertEqual(decode_grant(after, self.tenant_a)["sub"], "user:1")

    def test_new_grants_use_the_new_key(self):
        new = rotate_signing_key(self.tenant_a)
        self.assertEqual(jwt.get_unverified_header(self.mint())["kid"], new.kid)

    def test_the_previous_key_is_purged_only_after_its_grants_expired(self):
        rotated_at = timezone.now()
        rotate_signing_key(self.tenant_a, now=rotated_at)
        self.assertEqual(purge_retired_keys(now=rotated_at + RETIRED_KEY_TTL - dt.timedelta(seconds=1)), 0)
        self.assertEqual(self.tenant_a.signing_keys.count(), 2)
        self.assertEqual(purge_retired_keys(now=rotated_at + RETIRED_KEY_TTL), 1)
        self.assertEqual(self.tenant_a.signing_keys.get().status, TenantSigningKey.Status.ACTIVE)

    def test_the_retired_key_outlives_every_grant_the_portal_mints(self):
        from portal.tickets.grants import PUT_GRANT_LIFETIME, READ_GRANT_LIFETIME

        self.assertGreaterEqual(RETIRED_KEY_TTL.total_seconds(), max(PUT_GRANT_LIFETIME, READ_GRANT_LIFETIME))

    def test_purging_leaves_other_tenants_alone(self):
        rotated_at = timezone.now()
        rotate_signing_key(self.tenant_b, now=rotated_at)
        purge_retired_keys(tenant=self.tenant_a, now=rotated_at + RETIRED_KEY_TTL)
        self.assertEqual(self.tenant_b.signing_keys.count(), 2)

    def test_the_celery_task_purges(self):
        from tenants.tasks import purge_retired_signing_keys

        rotate_signing_key(self.tenant_a, now=timezone.now() - RETIRED_KEY_TTL)
        self.assertEqual(purge_retired_signing_keys.delay().get(), 1)


class TwoStepRotationTestCase(BaseTestCase):
    """Prepare (publish a next key), then activate it once the gatekeeper trusts it."""

    def kid_of(self, token):
        return jwt.get_unverified_header(token)["kid"]

    def mint(self):
        return mint_grant(active_signing_key(self.tenant_a), issuer="http://127.0.0.1:8000", audience="gk-alpha",
                          subject="user:1", prefix="tickets/x/", ops=["get"])

    def test_a_prepared_key_is_published_but_signs_nothing(self):
        active = self.tenant_a.signing_keys.get()
        waiting = prepare_next_key(self.tenant_a)
        self.assertEqual(waiting.status, TenantSigningKey.Status.NEXT)
        self.assertEqual(self.kid_of(self.mint()), active.kid)
        self.assertEqual([k.kid for k in trusted_public_keys(self.tenant_a)], [active.kid, waiting.kid])
        self.assertIn(f'{waiting.kid} = "{waiting.public_key}"', vendor_keys_toml(self.tenant_a))

    def test_preparing_twice_gives_the_same_key(self):
        self.assertEqual(prepare_next_key(self.tenant_a).kid, prepare_next_key(self.tenant_a).kid)
        self.assertEqual(self.tenant_a.signing_keys.count(), 2)

    def test_a_tenant_has_only_one_next_key(self):
        prepare_next_key(self.tenant_a)
        from tenants.signing import _new_key_row

        with self.assertRaises(IntegrityError), transaction.atomic():
            _new_key_row(self.tenant_a, TenantSigningKey.Status.NEXT, timezone.now())

    def test_activating_signs_with_the_next_key_and_keeps_the_old_as_previous(self):
        old = self.tenant_a.signing_keys.get()
        before = self.mint()
        waiting = prepare_next_key(self.tenant_a)
        activate_next_key(self.tenant_a, waiting.kid)
        old.refresh_from_db()
        self.assertEqual(old.status, TenantSigningKey.Status.PREVIOUS)
        self.assertIsNotNone(old.retired_at)
        self.assertEqual(self.kid_of(self.mint()), waiting.kid)
        self.assertEqual(decode_grant(before, self.tenant_a)["sub"], "user:1")  # still verifies

    def test_activating_a_stale_kid_changes_nothing(self):
        old = self.tenant_a.signing_keys.get()
        prepare_next_key(self.tenant_a)
        with self.assertRaisesMessage(RotationError, "reload the page"):
            activate_next_key(self.tenant_a, "alpha-20200101-abcdef")
        old.refresh_from_db()
        self.assertEqual(old.status, TenantSigningKey.Status.ACTIVE)

    def test_activating_without_a_next_key_is_refused(self):
        with self.assertRaisesMessage(RotationError, "prepare one first"):
            activate_next_key(self.tenant_a, self.tenant_a.signing_keys.get().kid)

    def test_another_tenants_next_key_cannot_be_activated(self):
        theirs = prepare_next_key(self.tenant_b)
        with self.assertRaises(RotationError):
            activate_next_key(self.tenant_a, theirs.kid)
        self.assertEqual(TenantSigningKey.objects.get(kid=theirs.kid).status, TenantSigningKey.Status.NEXT)

    def test_immediate_rotation_uses_a_waiting_next_key(self):
        waiting = prepare_next_key(self.tenant_a)
        self.assertEqual(rotate_signing_key(self.tenant_a).kid, waiting.kid)
