"""Second factors, through the portal's real views: TOTP enrolment (the test
computes codes from the enrolled secret), sign-in asking for the code, recovery
codes that work once, "require MFA" holding a member to enrolment, and admins
resetting a member's MFA (a security event). Passkeys are verified in Chromium
(tests/e2e/test_mfa.py)."""

import re
import time

import pyotp
from django.core import mail
from django.test import Client, override_settings

from accounts import mfa
from accounts.models import Authenticator, SignInPolicy
from tenants.models import SecurityEvent
from tests.portal.base import BaseTestCase

LOGIN, MFA, SECURITY, TOTP = "/accounts/login/", "/accounts/mfa/", "/accounts/security/", "/accounts/security/totp/"


def enrol_totp(client) -> str:
    """Enrol an authenticator app through the pages; returns its secret."""
    page = client.get(TOTP)
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page.content.decode()).group(1)
    r = client.post(TOTP, {"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 200, r.status_code
    return secret


def password_step(client, username, password="password", **extra):
    return client.post(LOGIN, {"username": username, "password": password, **extra})


class TOTPTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.client.force_login(self.bob)
        self.secret = enrol_totp(self.client)
        self.client = Client()

    def test_the_secret_is_sealed_at_rest(self):
        row = Authenticator.objects.get(user=self.bob, kind=Authenticator.Kind.TOTP)
        self.assertNotIn(self.secret.encode(), bytes(row.secret_sealed))

    def test_enrolment_shows_recovery_codes_once(self):
        self.assertEqual(mfa.recovery_codes_left(self.bob), 10)

    def test_sign_in_asks_for_the_code_and_signs_in_only_after_it(self):
        r = password_step(self.client, "bob")
        self.assertRedirects(r, MFA, fetch_redirect_response=False)
        self.assertEqual(self.client.get("/tickets/").status_code, 302)  # not signed in yet
        self.assertNotIn("_auth_user_id", self.client.session)
        r = self.client.post(MFA, {"code": pyotp.TOTP(self.secret).at(time.time() + 30)})  # the next step: allowed
        self.assertRedirects(r, "/", fetch_redirect_response=False)
        self.assertEqual(self.client.get("/tickets/").status_code, 200)

    @override_settings(AXES_FAILURE_LIMIT=5)
    def test_a_wrong_code_is_refused_and_five_start_again(self):
        password_step(self.client, "bob")
        for _ in range(4):
            self.assertEqual(self.client.post(MFA, {"code": "000000"}).status_code, 400)
        # The fifth is the fifth failed sign-in for django-axes: paused (429), and the half sign-in is gone.
        self.assertEqual(self.client.post(MFA, {"code": "000000"}).status_code, 429)
        r = self.client.post(MFA, {"code": pyotp.TOTP(self.secret).now()})
        self.assertRedirects(r, LOGIN, fetch_redirect_response=False)

    def test_a_code_works_once(self):
        code = pyotp.TOTP(self.secret).at(time.time() + 30)
        password_step(self.client, "bob")
        self.client.post(MFA, {"code": code})
        other = Client()
        password_step(other, "bob")
        self.assertEqual(other.post(MFA, {"code": code}).status_code, 400)

    def test_bad_input_is_a_400(self):
        password_step(self.client, "bob")
        for code in ["", "x" * 65, "12345", "abcdef"]:
            self.assertEqual(self.client.post(MFA, {"code": code}).status_code, 400, code)

    def test_the_second_step_needs_the_first(self):
        self.assertRedirects(self.client.get(MFA), LOGIN, fetch_redirect_response=False)
        self.assertRedirects(self.client.post(MFA, {"code": pyotp.TOTP(self.secret).now()}), LOGIN,
                             fetch_redirect_response=False)
        self.assertEqual(self.client.put(MFA).status_code, 405)

    def test_a_recovery_code_works_once(self):
        codes = mfa.new_recovery_codes(self.bob)
        password_step(self.client, "bob")
        self.assertRedirects(self.client.post(MFA, {"code": codes[0]}), "/", fetch_redirect_response=False)
        other = Client()
        password_step(other, "bob")
        self.assertEqual(other.post(MFA, {"code": codes[0]}).status_code, 400)
        self.assertEqual(mfa.recovery_codes_left(self.bob), 9)

    def test_a_wrong_enrolment_code_is_refused(self):
        self.client.force_login(self.alice)
        self.client.get(TOTP)
        self.assertEqual(self.client.post(TOTP, {"code": "000000"}).status_code, 400)
        self.assertEqual(self.client.post(TOTP, {"code": ""}).status_code, 400)
        self.assertFalse(Authenticator.objects.filter(user=self.alice).exists())

    def test_removing_the_factor_turns_sign_in_back_to_one_step(self):
        self.client.force_login(self.bob)
        row = Authenticator.objects.get(user=self.bob, kind=Authenticator.Kind.TOTP)
        self.assertEqual(self.client.get(f"/accounts/security/authenticators/{row.id}/remove/").status_code, 405)
        self.client.post(f"/accounts/security/authenticators/{row.id}/remove/")
        self.assertFalse(Authenticator.objects.filter(user=self.bob).exists())
        self.client = Client()
        self.assertRedirects(password_step(self.client, "bob"), "/", fetch_redirect_response=False)

    def test_someone_elses_factor_is_not_found(self):
        row = Authenticator.objects.get(user=self.bob, kind=Authenticator.Kind.TOTP)
        self.client.force_login(self.alice)
        self.assertEqual(self.client.post(f"/accounts/security/authenticators/{row.id}/remove/").status_code, 404)
        self.assertTrue(Authenticator.objects.filter(pk=row.pk).exists())


class RequireMFATestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        SignInPolicy.objects.create(tenant=self.tenant_a, mfa_required=True)

    def test_a_member_without_mfa_is_sent_to_enrol_and_can_do_nothing_else(self):
        self.client.force_login(self.bob)
        self.assertRedirects(self.client.get("/tickets/"), SECURITY, fetch_redirect_response=False)
        self.assertEqual(self.client.get(f"/api/v1/tickets/{self.ticket.id}").status_code, 403)
        page = self.client.get(SECURITY)
        self.assertContains(page, "requires a second factor")
        enrol_totp(self.client)
        self.assertEqual(self.client.get("/tickets/").status_code, 200)

    def test_other_tenants_are_not_held(self):
        self.client.force_login(self.charlie)
        self.assertEqual(self.client.get("/tickets/").status_code, 200)

    @override_settings(DUALKEY_SUPPORT_MFA_REQUIRED=True)
    def test_vendor_support_is_held_when_configured(self):
        self.client.force_login(self.victor)
        self.assertRedirects(self.client.get("/support/"), SECURITY, fetch_redirect_response=False)


class ResetMemberMFATestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.alice.email = "alice@alpha.example"
        self.alice.save()
        bobs = Client()
        bobs.force_login(self.bob)
        enrol_totp(bobs)
        self.bobs_session = bobs
        self.url = f"/settings/members/{self.bob.membership.id}/mfa/reset/"

    def test_the_members_page_shows_mfa_status(self):
        self.client.force_login(self.alice)
        page = self.client.get("/settings/members/").content.decode()
        self.assertRegex(page, r"(?s)data-username=\"bob\">(?:(?!</tr>).)*data-mfa=\"on\"")
        self.assertRegex(page, r'(?s)data-username="alice">(?:(?!</tr>).)*data-mfa="off"')

    def test_an_admin_resets_it_a_security_event_and_the_members_sessions_end(self):
        self.client.force_login(self.alice)
        r = self.client.post(self.url)
        self.assertRedirects(r, "/settings/members/", fetch_redirect_response=False)
        self.assertFalse(Authenticator.objects.filter(user=self.bob).exists())
        self.assertEqual(self.bobs_session.get("/tickets/").status_code, 302)
        event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.MFA_RESET)
        self.assertEqual((event.tenant, event.actor, event.subject), (self.tenant_a, self.alice, "bob"))
        self.assertIn("second factors reset", mail.outbox[-1].subject)
        # One step again at the next sign-in.
        c = Client()
        self.assertRedirects(password_step(c, "bob"), "/", fetch_redirect_response=False)

    def test_staff_get_403_other_tenants_404_and_get_is_405(self):
        self.client.force_login(self.bob)
        self.assertEqual(self.client.post(self.url).status_code, 403)
        self.client.force_login(self.charlie)
        self.assertEqual(self.client.post(self.url).status_code, 404)
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get(self.url).status_code, 405)
        self.assertEqual(self.client.post("/settings/members/999999/mfa/reset/").status_code, 404)
        self.assertTrue(Authenticator.objects.filter(user=self.bob).exists())


class VendorSupportTestCase(BaseTestCase):
    @override_settings(DUALKEY_SUPPORT_MFA_REQUIRED=True)
    def test_support_signs_in_with_password_then_code(self):
        self.client.force_login(self.victor)
        secret = enrol_totp(self.client)
        self.assertEqual(self.client.get("/support/").status_code, 200)
        self.client = Client()
        self.assertRedirects(password_step(self.client, "victor"), MFA, fetch_redirect_response=False)
        self.assertEqual(self.client.get("/support/").status_code, 302)
        self.client.post(MFA, {"code": pyotp.TOTP(secret).at(time.time() + 30)})
        self.assertEqual(self.client.get("/support/").status_code, 200)

    def test_support_never_uses_a_tenants_sso(self):
        SignInPolicy.objects.create(tenant=self.tenant_a, sso_enabled=True, sso_required=True,
                                    issuer="https://idp.alpha.example", client_id="portal")
        self.assertRedirects(password_step(self.client, "victor"), "/", fetch_redirect_response=False)


class SecurityPageTestCase(BaseTestCase):
    def test_it_shows_ones_own_factors_only(self):
        self.client.force_login(self.bob)
        enrol_totp(self.client)
        self.client.force_login(self.alice)
        page = self.client.get(SECURITY)
        self.assertContains(page, 'data-testid="mfa-status">Off')
        self.assertNotContains(page, "data-authenticator=")
        self.client.force_login(self.bob)
        self.assertContains(self.client.get(SECURITY), 'data-authenticator="totp"')

    def test_wrong_methods_are_405_and_anonymous_visitors_log_in(self):
        self.client.force_login(self.bob)
        for url, method in [(SECURITY, "post"), (TOTP, "put"), ("/accounts/security/recovery-codes/", "get")]:
            self.assertEqual(getattr(self.client, method)(url).status_code, 405, url)
        anonymous = Client()
        for url in (SECURITY, TOTP):
            self.assertTrue(anonymous.get(url)["Location"].startswith("/accounts/login/"))

    def test_new_recovery_codes_need_a_second_factor_and_replace_the_old(self):
        self.client.force_login(self.bob)
        self.assertEqual(self.client.post("/accounts/security/recovery-codes/").status_code, 409)
        enrol_totp(self.client)
        old = mfa.new_recovery_codes(self.bob)
        r = self.client.post("/accounts/security/recovery-codes/")
        self.assertContains(r, "shown only now")
        self.assertFalse(mfa.use_recovery_code(self.bob, old[0]))
        self.assertEqual(mfa.recovery_codes_left(self.bob), 10)

    def test_a_totp_confirmation_needs_its_setup_first(self):
        self.client.force_login(self.bob)
        self.assertEqual(self.client.post(TOTP, {"code": "123456"}).status_code, 409)


class EnrolmentRedirectTestCase(BaseTestCase):
    def test_the_redirect_to_enrol_carries_the_csp(self):
        SignInPolicy.objects.create(tenant=self.tenant_a, mfa_required=True)
        self.client.force_login(self.bob)
        r = self.client.get("/tickets/")
        self.assertEqual(r.status_code, 302)
        self.assertIn("default-src 'self'", r["Content-Security-Policy"])


class UnreadableTOTPSecretTestCase(BaseTestCase):
    def test_a_secret_sealed_for_another_row_does_not_verify(self):
        self.client.force_login(self.bob)
        secret = enrol_totp(self.client)
        row = Authenticator.objects.get(user=self.bob, kind=Authenticator.Kind.TOTP)
        row.secret_sealed = mfa.seal(secret.encode(), purpose=mfa.TOTP_PURPOSE, owner=row.pk + 1)
        row.save()
        self.assertFalse(mfa.verify_totp(self.bob, pyotp.TOTP(secret).at(time.time() + 30)))


class CodeGuessingTestCase(BaseTestCase):
    def test_wrong_codes_count_as_failed_sign_ins_and_pause_the_password_step(self):
        self.client.force_login(self.bob)
        secret = enrol_totp(self.client)
        self.client = Client()
        password_step(self.client, "bob")
        for _ in range(5):
            self.client.post(MFA, {"code": "000000"})
        # The right password, then: paused like any account with five failures (django-axes).
        r = password_step(Client(), "bob")
        self.assertEqual(r.status_code, 429)
        self.assertNotIn("_auth_user_id", self.client.session)
        self.assertTrue(secret)
