"""/settings/sign-in/: a tenant admin's "require MFA" and single sign-on settings.
Admins only (staff 403); each tenant sees and changes its own; the client secret is
sealed at rest and never shown or put into a security event; "SSO required" refuses
its members' password sign-in, but for the break-glass path (an admin with MFA)."""

from django.test import Client

from accounts.models import SignInPolicy
from accounts.sealed import unseal
from tenants.models import SecurityEvent
from tests.accounts.test_mfa import MFA, enrol_totp, password_step
from tests.portal.base import BaseTestCase

URL = "/settings/sign-in/"
SSO = {"sso_enabled": "on", "issuer": "https://idp.alpha.example", "client_id": "portal",
       "client_secret": "s3cret-value-xyz", "email_domains": "alpha.example", "default_role": "staff",
       "admin_group": "dualkey-admins"}


class SignInSettingsTestCase(BaseTestCase):
    def save(self, who=None, **fields):
        self.client.force_login(who or self.alice)
        return self.client.post(URL, {"default_role": "staff", **fields})

    def test_an_admin_sees_and_saves_them_a_security_event(self):
        self.client.force_login(self.alice)
        enrol_totp(self.client)
        self.assertContains(self.client.get(URL), "Sign-in settings · Alpha Ltd")
        r = self.save(mfa_required="on", **SSO)
        self.assertRedirects(r, URL, fetch_redirect_response=False)
        policy = SignInPolicy.objects.get(tenant=self.tenant_a)
        self.assertTrue(policy.mfa_required and policy.sso_enabled)
        self.assertEqual(policy.domains(), ["alpha.example"])
        event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.SIGN_IN_POLICY)
        self.assertIn("MFA required", event.new_value)
        self.assertIn("https://idp.alpha.example", event.new_value)

    def test_the_secret_is_sealed_and_never_shown(self):
        self.save(**SSO)
        policy = SignInPolicy.objects.get(tenant=self.tenant_a)
        self.assertNotIn(b"s3cret-value-xyz", bytes(policy.client_secret_sealed))
        self.assertEqual(unseal(policy.client_secret_sealed, purpose="oidc-client-secret", owner=self.tenant_a.pk),
                         b"s3cret-value-xyz")
        page = self.client.get(URL)
        self.assertNotContains(page, "s3cret-value-xyz")
        self.assertContains(page, "A secret is stored")
        self.assertFalse(SecurityEvent.objects.filter(new_value__contains="s3cret").exists())
        # Saving again without a secret keeps it.
        self.save(**{**SSO, "client_secret": ""})
        policy.refresh_from_db()
        self.assertEqual(unseal(policy.client_secret_sealed, purpose="oidc-client-secret", owner=self.tenant_a.pk),
                         b"s3cret-value-xyz")

    def test_a_sealed_secret_moved_to_another_tenant_does_not_open(self):
        self.save(**SSO)
        sealed = SignInPolicy.objects.get(tenant=self.tenant_a).client_secret_sealed
        with self.assertRaises(Exception):
            unseal(sealed, purpose="oidc-client-secret", owner=self.tenant_b.pk)

    def test_bad_input_is_a_400_with_reasons(self):
        for fields, reason in [
            ({**SSO, "issuer": "http://idp.alpha.example"}, "https://"),
            ({**SSO, "issuer": "https://idp.alpha.example/?x=1"}, "no query"),
            ({**SSO, "email_domains": "not a domain!"}, "is not a domain name"),
            ({"sso_required": "on"}, "Turn single sign-on on"),
            ({"sso_enabled": "on"}, "Needed for single sign-on"),
            ({**SSO, "default_role": "owner"}, "Select a valid choice"),
            ({**SSO, "client_id": "x" * 201}, "at most 200"),
        ]:
            with self.subTest(reason=reason):
                r = self.save(**fields)
                self.assertContains(r, reason, status_code=400)
        self.assertFalse(SignInPolicy.objects.exists())

    def test_a_domain_another_tenant_signs_in_with_is_refused(self):
        self.save(who=self.charlie, **{**SSO, "issuer": "https://idp.beta.example"})
        r = self.save(**SSO)
        self.assertContains(r, "Another tenant signs in with alpha.example", status_code=400)

    def test_staff_get_403_and_the_wrong_method_405(self):
        self.client.force_login(self.bob)
        self.assertEqual(self.client.get(URL).status_code, 403)
        self.assertEqual(self.client.post(URL, SSO).status_code, 403)
        self.client.force_login(self.alice)
        self.assertEqual(self.client.put(URL).status_code, 405)
        self.assertEqual(Client().get(URL).status_code, 302)

    def test_requiring_mfa_needs_the_admins_own_first(self):
        r = self.save(mfa_required="on")
        self.assertContains(r, "Add a second factor to your own account first", status_code=400)
        self.assertFalse(SignInPolicy.objects.exists())

    def test_each_tenant_changes_its_own(self):
        self.client.force_login(self.alice)
        enrol_totp(self.client)
        self.save(mfa_required="on")
        self.client.force_login(self.charlie)
        page = self.client.get(URL)
        self.assertContains(page, "Beta GmbH")
        self.assertNotContains(page, "Alpha")
        self.save(who=self.charlie)
        self.assertTrue(SignInPolicy.objects.get(tenant=self.tenant_a).mfa_required)
        self.assertFalse(SignInPolicy.objects.get(tenant=self.tenant_b).mfa_required)


class SSORequiredTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        SignInPolicy.objects.create(tenant=self.tenant_a, sso_enabled=True, sso_required=True,
                                    issuer="https://idp.alpha.example", client_id="portal")

    def test_members_password_sign_in_is_refused(self):
        r = password_step(self.client, "bob")
        self.assertContains(r, "signs in with single sign-on", status_code=403)
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_an_admin_without_mfa_is_refused_too(self):
        self.assertContains(password_step(self.client, "alice"), "signs in with single sign-on", status_code=403)

    def test_break_glass_an_admin_with_mfa_signs_in_and_every_admin_hears(self):
        self.alice.email = "alice@alpha.example"
        self.alice.save()
        self.client.force_login(self.alice)
        secret = enrol_totp(self.client)
        self.client = Client()
        self.assertRedirects(password_step(self.client, "alice"), MFA, fetch_redirect_response=False)
        import pyotp
        import time
        self.client.post(MFA, {"code": pyotp.TOTP(secret).at(time.time() + 30)})
        self.assertEqual(self.client.get("/settings/").status_code, 200)
        event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.BREAK_GLASS)
        self.assertEqual((event.tenant, event.subject), (self.tenant_a, "alice"))

    def test_other_tenants_sign_in_with_passwords(self):
        self.assertRedirects(password_step(self.client, "charlie"), "/", fetch_redirect_response=False)
