"""Single sign-on's portal side without a browser: where a sign-in starts (by
address or slug), bad input, a callback nobody started, and the just-in-time
rules for the ID token's claims. The whole flow against a real provider is
tests/e2e/test_sso.py."""

from django.contrib.auth import get_user_model
from django.test import override_settings

from accounts import sso
from accounts.forms import SECRET_PURPOSE
from accounts.models import SignInPolicy, SSOIdentity
from accounts.sealed import seal
from tenants.models import Membership, SecurityEvent
from tests.portal.base import BaseTestCase

START, CALLBACK = "/accounts/sso/", "/accounts/sso/callback/"


class SSOTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.policy = SignInPolicy.objects.create(
            tenant=self.tenant_a, sso_enabled=True, issuer="http://127.0.0.1:9", client_id="portal",
            email_domains="alpha.example", admin_group="alpha-admins")
        self.policy.client_secret_sealed = seal(b"secret", purpose=SECRET_PURPOSE, owner=self.tenant_a.pk)
        self.policy.save()


class StartTestCase(SSOTestCase):
    def test_the_page_asks_for_an_address_or_organisation(self):
        self.assertContains(self.client.get(START), "Work email address or organisation")
        self.assertEqual(self.client.put(START).status_code, 405)

    def test_the_tenant_is_found_by_domain_or_slug_and_nothing_else(self):
        self.assertEqual(sso.find_policy("Dana@ALPHA.example"), self.policy)
        self.assertEqual(sso.find_policy("alpha"), self.policy)
        self.assertIsNone(sso.find_policy("dana@beta.example"))
        self.assertIsNone(sso.find_policy("beta"))  # no SSO there
        self.policy.sso_enabled = False
        self.policy.save()
        self.assertIsNone(sso.find_policy("alpha"))

    def test_bad_or_unknown_input_is_a_400_with_the_same_answer(self):
        for value in ["", "x" * 255]:
            self.assertEqual(self.client.post(START, {"identifier": value}).status_code, 400)
        unknown_domain = self.client.post(START, {"identifier": "dana@nowhere.example"})
        unknown_slug = self.client.post(START, {"identifier": "nowhere"})
        self.assertContains(unknown_domain, "No single sign-on is set up", status_code=400)
        self.assertContains(unknown_slug, "No single sign-on is set up", status_code=400)

    def test_an_idp_that_does_not_answer_is_a_502_naming_no_details(self):
        r = self.client.post(START, {"identifier": "alpha"})  # port 9: nothing listens
        self.assertContains(r, "did not answer", status_code=502)
        self.assertNotContains(r, "127.0.0.1:9", status_code=502)

    def test_a_callback_nobody_started_is_refused(self):
        r = self.client.get(CALLBACK, {"code": "x", "state": "y"})
        self.assertContains(r, "was not started here", status_code=400)
        self.assertEqual(self.client.post(CALLBACK).status_code, 405)
        self.assertNotIn("_auth_user_id", self.client.session)


class JustInTimeTestCase(SSOTestCase):
    def claims(self, **extra):
        return {"sub": "idp-1", "email": "dana@alpha.example", "email_verified": True, **extra}

    def test_a_new_person_gets_an_account_and_the_default_role(self):
        user = sso.just_in_time(self.policy, self.claims(given_name="Dana"))
        self.assertEqual((user.username, user.first_name, user.has_usable_password()),
                         ("dana@alpha.example", "Dana", False))
        self.assertEqual((user.membership.tenant, user.membership.role), (self.tenant_a, Membership.Role.STAFF))
        event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.JOINED)
        self.assertIn("single sign-on", event.new_value)
        # The same subject next time: the same account, nothing new.
        self.assertEqual(sso.just_in_time(self.policy, self.claims(email="changed@alpha.example")), user)
        self.assertEqual(SSOIdentity.objects.count(), 1)

    def test_the_admin_group_makes_an_admin(self):
        user = sso.just_in_time(self.policy, self.claims(groups=["alpha-admins"]))
        self.assertTrue(user.membership.is_admin)

    def test_a_member_who_joins_the_admin_group_is_promoted(self):
        user = sso.just_in_time(self.policy, self.claims())
        sso.just_in_time(self.policy, self.claims(groups=["alpha-admins"]))
        user.membership.refresh_from_db()
        self.assertTrue(user.membership.is_admin)
        self.assertTrue(SecurityEvent.objects.filter(kind=SecurityEvent.Kind.ROLE_CHANGED).exists())

    def test_refusals(self):
        for claims, reason in [
            (self.claims(email="dana@beta.example"), "does not sign in people with that address"),
            (self.claims(email_verified=False), "no verified email"),
            (self.claims(email=""), "no verified email"),
            ({"email": "dana@alpha.example"}, "no subject"),
        ]:
            with self.subTest(reason=reason):
                with self.assertRaisesMessage(sso.SSOError, reason):
                    sso.just_in_time(self.policy, claims)
        self.assertFalse(get_user_model().objects.filter(email__startswith="dana").exists())

    def test_an_account_of_another_tenant_is_not_taken_over(self):
        user = sso.just_in_time(self.policy, self.claims())
        Membership.objects.filter(user=user).update(tenant=self.tenant_b)
        with self.assertRaisesMessage(sso.SSOError, "another tenant"):
            sso.just_in_time(self.policy, self.claims())

    def test_a_username_taken_already_gets_a_suffix(self):
        get_user_model().objects.create_user("dana@alpha.example")
        user = sso.just_in_time(self.policy, self.claims())
        self.assertTrue(user.username.startswith("dana@alpha.example-"))


@override_settings(DEBUG=False)
class IssuerTestCase(SSOTestCase):
    def test_production_needs_https_issuers(self):
        from accounts.forms import validate_issuer
        from django import forms

        with self.assertRaises(forms.ValidationError):
            validate_issuer("http://127.0.0.1:9")
        self.assertEqual(validate_issuer("https://idp.example/"), "https://idp.example")


class InvitationWithSSOTestCase(SSOTestCase):
    def setUp(self):
        super().setUp()
        import datetime as dt

        from django.utils import timezone

        from tenants.models import Invitation
        from tenants.tokens import hash_token

        self.policy.sso_required = True
        self.policy.save()
        now = timezone.now()
        self.invitation = Invitation.objects.create(
            tenant=self.tenant_a, username="dana", email="Dana@alpha.example", role=Membership.Role.ADMIN,
            token_hash=hash_token("sso-invite"), created_at=now, sent_at=now, expires_at=now + dt.timedelta(days=7))

    def test_the_link_offers_sso_not_a_password(self):
        page = self.client.get("/invitations/accept/", {"token": "sso-invite"})
        self.assertContains(page, "Sign in with single sign-on")
        self.assertNotContains(page, "new_password1")
        r = self.client.post("/invitations/accept/", {"token": "sso-invite", "new_password1": "a long passphrase 77",
                                                      "new_password2": "a long passphrase 77"})
        self.assertContains(r, "signs in with single sign-on", status_code=409)
        self.assertFalse(get_user_model().objects.filter(username="dana").exists())

    def test_sso_gives_the_invitations_role_and_uses_it(self):
        user = sso.just_in_time(self.policy, {"sub": "idp-9", "email": "dana@alpha.example", "email_verified": True})
        self.assertTrue(user.membership.is_admin)
        self.invitation.refresh_from_db()
        self.assertEqual((self.invitation.user, self.invitation.accepted_at is not None), (user, True))


class UnreadableSecretTestCase(SSOTestCase):
    def test_a_secret_that_does_not_open_is_a_clear_refusal(self):
        self.policy.client_secret_sealed = seal(b"secret", purpose=SECRET_PURPOSE, owner=self.tenant_b.pk)
        self.policy.save()
        r = self.client.post(START, {"identifier": "alpha"})
        self.assertContains(r, "enter the client secret again", status_code=502)
