"""The settings page's two-step key rotation: make a next key, then switch to it."""

import re

from tenants.models import TenantSigningKey
from tenants.signing import prepare_next_key
from tests.portal.base import BaseTestCase
from tests.tenants.test_settings_page import check_panel

PREPARE = "/settings/keys/next/"
ACTIVATE = "/settings/keys/activate/"


class PrepareNextKeyTestCase(BaseTestCase):
    def test_alice_makes_a_next_key_that_is_published_but_not_signing(self):
        active = self.tenant_a.signing_keys.get()
        self.login(self.alice)
        r = self.client.post(PREPARE)
        self.assertRedirects(r, "/settings/#vendor-keys", fetch_redirect_response=False)
        waiting = self.tenant_a.signing_keys.get(status=TenantSigningKey.Status.NEXT)
        page = self.client.get("/settings/")
        self.assertEqual(page.context["vendor_keys_toml"],
                         f'[vendor_keys]\n{active.kid} = "{active.public_key}"\n{waiting.kid} = "{waiting.public_key}"\n')
        panel = check_panel(page.content.decode())
        self.assertIn(f'data-active-kid="{active.kid}"', panel)
        self.assertIn(f'data-next-kid="{waiting.kid}"', panel)
        self.assertIn('data-previous-kids=""', panel)
        self.assertContains(page, f'<input type="hidden" name="kid" value="{waiting.kid}">')
        # The switch waits for the browser's gatekeeper check to confirm the key is trusted.
        self.assertRegex(page.content.decode(), r'<button type="submit" data-action="activate-next-key"[^>]* disabled')
        self.assertContains(page, "is published")

    def test_a_second_prepare_keeps_the_waiting_key(self):
        self.login(self.alice)
        self.client.post(PREPARE)
        self.client.post(PREPARE)
        self.assertEqual(self.tenant_a.signing_keys.filter(status=TenantSigningKey.Status.NEXT).count(), 1)

    def test_it_only_touches_the_admins_own_tenant(self):
        self.login(self.charlie)
        self.client.post(PREPARE)
        self.assertEqual(self.tenant_a.signing_keys.count(), 1)
        self.assertEqual(self.tenant_b.signing_keys.filter(status=TenantSigningKey.Status.NEXT).count(), 1)

    def test_it_returns_403_for_staff(self):
        self.login(self.bob)
        self.assertEqual(self.client.post(PREPARE).status_code, 403)
        self.assertEqual(self.tenant_a.signing_keys.count(), 1)

    def test_it_returns_404_for_vendor_support(self):
        self.login(self.victor)
        self.assertEqual(self.client.post(PREPARE).status_code, 404)

    def test_it_requires_login(self):
        self.assertRedirects(self.client.post(PREPARE), f"/accounts/login/?next={PREPARE}",
                             fetch_redirect_response=False)
        self.assertEqual(self.tenant_a.signing_keys.count(), 1)

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.get(PREPARE).status_code, 405)

    def test_it_requires_csrf(self):
        from django.test import Client

        client = Client(enforce_csrf_checks=True)
        client.force_login(self.alice)
        self.assertEqual(client.post(PREPARE).status_code, 403)
        self.assertEqual(self.tenant_a.signing_keys.count(), 1)


class ActivateNextKeyTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.active = self.tenant_a.signing_keys.get()
        self.waiting = prepare_next_key(self.tenant_a)

    def status_of(self, key):
        key.refresh_from_db()
        return key.status

    def test_alice_switches_to_the_next_key(self):
        self.login(self.alice)
        r = self.client.post(ACTIVATE, {"kid": self.waiting.kid})
        self.assertRedirects(r, "/settings/#vendor-keys", fetch_redirect_response=False)
        self.assertEqual(self.status_of(self.waiting), TenantSigningKey.Status.ACTIVE)
        self.assertEqual(self.status_of(self.active), TenantSigningKey.Status.PREVIOUS)
        page = self.client.get("/settings/")
        panel = check_panel(page.content.decode())
        self.assertIn(f'data-active-kid="{self.waiting.kid}"', panel)
        self.assertIn(f'data-previous-kids="{self.active.kid}"', panel)
        self.assertIn('data-next-kid=""', panel)
        self.assertContains(page, f"Grants are now signed with {self.waiting.kid}")
        self.assertContains(page, 'data-action="prepare-next-key"')

    def test_new_grants_carry_the_new_kid(self):
        import jwt

        self.login(self.alice)
        self.client.post(ACTIVATE, {"kid": self.waiting.kid})
        self.login(self.bob)
        r = self.client.post(f"/api/v1/tickets/{self.ticket.id}/grant")
        self.assertEqual(jwt.get_unverified_header(r.json()["grant"])["kid"], self.waiting.kid)

    def test_a_stale_kid_is_refused_with_a_reason_and_changes_nothing(self):
        self.login(self.alice)
        r = self.client.post(ACTIVATE, {"kid": "alpha-20200101-abcdef"})
        self.assertEqual(r.status_code, 400)
        self.assertRegex(r.content.decode(), r'data-testid="rotation-error">The next key is [\w-]+, not alpha-20200101')
        self.assertEqual(self.status_of(self.active), TenantSigningKey.Status.ACTIVE)
        self.assertEqual(self.status_of(self.waiting), TenantSigningKey.Status.NEXT)

    def test_bad_input_is_a_400_with_a_reason(self):
        self.login(self.alice)
        for body in [{}, {"kid": ""}, {"kid": "x" * 65}, {"kid": "\x00"}]:
            with self.subTest(body=body):
                r = self.client.post(ACTIVATE, body)
                self.assertEqual(r.status_code, 400)
                self.assertContains(r, 'data-testid="rotation-error"', status_code=400)
        self.assertEqual(self.status_of(self.active), TenantSigningKey.Status.ACTIVE)

    def test_without_a_next_key_it_says_to_prepare_one(self):
        self.login(self.alice)
        self.client.post(ACTIVATE, {"kid": self.waiting.kid})
        r = self.client.post(ACTIVATE, {"kid": self.waiting.kid})
        self.assertContains(r, "prepare one first", status_code=400)

    def test_charlie_cannot_switch_alphas_key(self):
        self.login(self.charlie)
        r = self.client.post(ACTIVATE, {"kid": self.waiting.kid})
        self.assertEqual(r.status_code, 400)  # his tenant has no such next key
        self.assertNotContains(r, self.waiting.kid, status_code=400)
        self.assertEqual(self.status_of(self.waiting), TenantSigningKey.Status.NEXT)

    def test_it_returns_403_for_staff(self):
        self.login(self.bob)
        self.assertEqual(self.client.post(ACTIVATE, {"kid": self.waiting.kid}).status_code, 403)
        self.assertEqual(self.status_of(self.waiting), TenantSigningKey.Status.NEXT)

    def test_it_returns_404_for_vendor_support(self):
        self.login(self.victor)
        self.assertEqual(self.client.post(ACTIVATE, {"kid": self.waiting.kid}).status_code, 404)

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.get(ACTIVATE).status_code, 405)

    def test_without_a_gatekeeper_the_switch_is_not_held_back(self):
        from tenants.models import Tenant

        Tenant.objects.filter(pk=self.tenant_a.pk).update(gatekeeper_url="", gatekeeper_id="")
        self.login(self.alice)
        html = self.client.get("/settings/").content.decode()
        button = re.search(r'<button type="submit" data-action="activate-next-key"[^>]*>', html).group(0)
        self.assertNotIn("disabled", button)


class SigningKeysCommandTestCase(BaseTestCase):
    def run_command(self, *args):
        from io import StringIO

        from django.core.management import call_command

        out = StringIO()
        call_command("signing_keys", *args, stdout=out)
        return out.getvalue()

    def test_support_rotates_in_two_steps(self):
        active = self.tenant_a.signing_keys.get()
        out = self.run_command("alpha", "--prepare")
        waiting = self.tenant_a.signing_keys.get(status=TenantSigningKey.Status.NEXT)
        self.assertIn(f"--activate {waiting.kid}", out)
        self.assertIn(f'{waiting.kid} = "{waiting.public_key}"', out)
        out = self.run_command("alpha", "--activate", waiting.kid)
        self.assertIn(f"grants are now signed with {waiting.kid}", out)
        self.assertIn(f"  {active.kid}  previous", out)

    def test_rotate_now_switches_at_once(self):
        active = self.tenant_a.signing_keys.get()
        out = self.run_command("alpha", "--rotate-now")
        self.assertIn("refuses them until its [vendor_keys] lists it", out)
        self.assertEqual(self.tenant_a.signing_keys.get(kid=active.kid).status, TenantSigningKey.Status.PREVIOUS)

    def test_mistakes_are_errors_that_change_nothing(self):
        from django.core.management.base import CommandError

        with self.assertRaisesMessage(CommandError, "no tenant 'nope'"):
            self.run_command("nope")
        with self.assertRaisesMessage(CommandError, "prepare one first"):
            self.run_command("alpha", "--activate", "alpha-x")
        self.assertEqual(self.tenant_a.signing_keys.count(), 1)
        self.assertIn("[vendor_keys]", self.run_command("alpha"))
