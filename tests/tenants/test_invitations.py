"""Inviting a tenant's first admin: vendor support may only while the tenant has no
active admin, never sees a password or the link, and the invitee sets their own
password through a single-use, expiring link sent by mail."""

import datetime as dt
import re

from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from tenants import invitations
from tenants.models import Invitation, Membership, SecurityEvent, Tenant
from tenants.services import create_tenant
from tenants.tokens import hash_token
from tests.portal.base import BaseTestCase

ACCEPT = "/invitations/accept/"
PASSWORD = "a-long-and-unusual-passphrase"


class InvitationTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.initech = create_tenant(slug="initech", name="Initech", region="us-east-1")
        self.charlie.email = "charlie@beta.example"
        self.charlie.save()

    def invite(self, slug="initech", username="dana", email="dana@initech.example"):
        self.login(self.victor)
        return self.client.post(f"/support/tenants/{slug}/invite/", {"username": username, "email": email})

    def mailed_token(self, message=None):
        message = message or mail.outbox[-1]
        return re.search(r"/invitations/accept/\?token=([A-Za-z0-9_-]+)", message.body).group(1)

    def accept(self, token, password=PASSWORD, again=None):
        return self.client.post(ACCEPT, {"token": token, "new_password1": password,
                                         "new_password2": again or password})


class SupportInviteTestCase(InvitationTestCase):
    def test_it_mails_a_link_and_shows_support_neither_link_nor_password(self):
        r = self.invite()
        self.assertRedirects(r, "/support/tenants/initech/")
        self.assertEqual(len(mail.outbox), 1)
        message = mail.outbox[0]
        self.assertEqual(message.to, ["dana@initech.example"])
        self.assertIn("Initech", message.subject)
        self.assertEqual(message.body.count("http://127.0.0.1:8000/invitations/accept/?token="), 1)
        token = self.mailed_token()
        page = self.client.get("/support/tenants/initech/")
        self.assertContains(page, "dana@initech.example")
        self.assertNotContains(page, token)
        self.assertFalse(get_user_model().objects.filter(username="dana").exists())  # no account, no password yet

    def test_it_stores_only_a_hash_of_the_token(self):
        self.invite()
        token = self.mailed_token()
        invitation = Invitation.objects.get()
        self.assertEqual(invitation.token_hash, hash_token(token))
        self.assertNotIn(token, repr(list(Invitation.objects.values())))

    def test_it_refuses_once_the_tenant_has_an_active_admin(self):
        r = self.invite(slug="beta", username="mallory", email="mallory@vendor.example")
        self.assertContains(r, "Beta GmbH has an admin: only its admins add members now.", status_code=409)
        self.assertFalse(Invitation.objects.exists())
        self.assertEqual(mail.outbox, [])
        self.assertNotContains(self.client.get("/support/tenants/beta/"), "Invite the first admin")

    def test_it_refuses_a_link_made_before_the_first_admin_joined(self):
        # Support invites the real admin and a spare; once the admin has joined, the spare is void.
        self.invite(username="dana", email="dana@initech.example")
        dana_token = self.mailed_token()
        self.invite(username="spare", email="support@vendor.example")
        spare_token = self.mailed_token()
        self.client.logout()
        self.assertRedirects(self.accept(dana_token), "/", fetch_redirect_response=False)
        self.client.logout()
        r = self.client.get(ACCEPT, {"token": spare_token})
        self.assertContains(r, "no longer applies", status_code=410)
        self.assertContains(self.accept(spare_token), "no longer applies", status_code=410)
        self.assertFalse(get_user_model().objects.filter(username="spare").exists())

    def test_it_rejects_a_username_taken_by_an_account_or_an_open_invitation(self):
        for username in ["Alice", "dana"]:
            self.invite(username="dana")
            r = self.invite(username=username)
            with self.subTest(username=username):
                self.assertEqual(r.status_code, 400)
                self.assertTrue(r.context["invite_form"].errors["username"])

    def test_it_rejects_a_bad_email(self):
        self.assertEqual(self.invite(email="nope").status_code, 400)

    def test_it_returns_404_for_an_unknown_tenant(self):
        self.assertEqual(self.invite(slug="nope").status_code, 404)

    def test_it_returns_404_for_tenant_admins(self):
        self.login(self.charlie)
        r = self.client.post("/support/tenants/initech/invite/", {"username": "mallory", "email": "m@x.example"})
        self.assertEqual(r.status_code, 404)
        self.assertFalse(Invitation.objects.exists())

    def test_it_rejects_a_wrong_method(self):
        self.login(self.victor)
        self.assertEqual(self.client.get("/support/tenants/initech/invite/").status_code, 405)

    def test_inviting_is_a_security_event(self):
        self.invite()
        event = SecurityEvent.objects.get(tenant=self.initech)
        self.assertEqual((event.kind, event.actor_name, event.subject),
                         (SecurityEvent.Kind.INVITED, "victor (vendor support)", "dana <dana@initech.example>"))


class AcceptInvitationTestCase(InvitationTestCase):
    def setUp(self):
        super().setUp()
        self.invite()
        self.token = self.mailed_token()
        self.client.logout()
        mail.outbox.clear()

    def test_the_invitee_sets_their_own_password_and_is_signed_in(self):
        page = self.client.get(ACCEPT, {"token": self.token})
        self.assertContains(page, "Join Initech")
        self.assertEqual(page["Cache-Control"], "no-store")
        r = self.accept(self.token)
        self.assertRedirects(r, "/", fetch_redirect_response=False)
        dana = get_user_model().objects.get(username="dana")
        self.assertTrue(dana.check_password(PASSWORD))
        self.assertEqual((dana.email, dana.membership.tenant, dana.membership.role),
                         ("dana@initech.example", self.initech, Membership.Role.ADMIN))
        self.assertEqual(int(self.client.session["_auth_user_id"]), dana.pk)
        self.assertEqual(SecurityEvent.objects.filter(tenant=self.initech).first().kind, SecurityEvent.Kind.JOINED)
        self.assertEqual([m.to for m in mail.outbox], [["dana@initech.example"]])  # the admins hear of it

    def test_it_applies_djangos_password_validators(self):
        for password, again, reason in [("short", None, "too short"), ("password1234", None, "too common"),
                                        ("12345678901234", None, "entirely numeric"),
                                        (PASSWORD, PASSWORD + "x", "didn’t match")]:
            with self.subTest(password=password):
                self.assertContains(self.accept(self.token, password, again), reason, status_code=400)
        self.assertFalse(get_user_model().objects.filter(username="dana").exists())

    def test_a_used_link_says_so(self):
        self.accept(self.token)
        self.client.logout()
        self.assertContains(self.client.get(ACCEPT, {"token": self.token}), "already used", status_code=410)
        self.assertContains(self.accept(self.token, "another-long-passphrase"), "already used", status_code=410)
        self.assertTrue(get_user_model().objects.get(username="dana").check_password(PASSWORD))

    def test_an_expired_link_says_so(self):
        Invitation.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
        self.assertContains(self.client.get(ACCEPT, {"token": self.token}), "has expired", status_code=410)
        self.assertContains(self.accept(self.token), "has expired", status_code=410)

    def test_it_expires_after_the_configured_days(self):
        invitation = Invitation.objects.get()
        self.assertEqual(invitation.expires_at - invitation.created_at, dt.timedelta(days=7))

    def test_a_revoked_link_says_so(self):
        self.login(self.victor)
        invitation = Invitation.objects.get()
        url = f"/support/tenants/initech/invitations/{invitation.id}/revoke/"
        self.assertRedirects(self.client.post(url), "/support/tenants/initech/")
        self.client.logout()
        self.assertContains(self.client.get(ACCEPT, {"token": self.token}), "was revoked", status_code=410)
        self.assertEqual(SecurityEvent.objects.filter(tenant=self.initech).first().kind,
                         SecurityEvent.Kind.INVITATION_REVOKED)

    def test_a_resent_invitation_has_a_new_link_and_the_old_one_stops(self):
        self.login(self.victor)
        invitation = Invitation.objects.get()
        Invitation.objects.update(expires_at=timezone.now() - dt.timedelta(days=1))
        r = self.client.post(f"/support/tenants/initech/invitations/{invitation.id}/resend/")
        self.assertRedirects(r, "/support/tenants/initech/")
        new_token = self.mailed_token()
        self.assertNotEqual(new_token, self.token)
        self.client.logout()
        self.assertContains(self.client.get(ACCEPT, {"token": self.token}), "not valid", status_code=404)
        self.assertRedirects(self.accept(new_token), "/", fetch_redirect_response=False)

    def test_an_unknown_or_missing_token_is_a_404(self):
        for query in [{}, {"token": ""}, {"token": "nope"}, {"token": "x" * 5000}, {"token": self.token[:-1]}]:
            with self.subTest(query=str(query)[:30]):
                self.assertContains(self.client.get(ACCEPT, query), "not valid", status_code=404)

    def test_a_signed_in_visitor_is_asked_to_log_out(self):
        self.login(self.charlie)
        r = self.client.get(ACCEPT, {"token": self.token})
        self.assertContains(r, "Log out first", status_code=409)
        self.assertNotContains(r, "Initech", status_code=409)
        self.assertEqual(self.accept(self.token).status_code, 409)

    def test_a_suspended_tenants_link_is_void(self):
        Tenant.objects.filter(pk=self.initech.pk).update(status=Tenant.Status.SUSPENDED)
        self.assertContains(self.client.get(ACCEPT, {"token": self.token}), "no longer applies", status_code=410)

    def test_it_rejects_a_wrong_method(self):
        self.assertEqual(self.client.put(ACCEPT).status_code, 405)


class SupportInvitationActionsTestCase(InvitationTestCase):
    def setUp(self):
        super().setUp()
        self.invite()
        self.invitation = Invitation.objects.get()
        self.urls = [f"/support/tenants/initech/invitations/{self.invitation.id}/{action}/"
                     for action in ("resend", "revoke")]

    def test_charlie_gets_404(self):
        self.login(self.charlie)
        for url in self.urls:
            self.assertEqual(self.client.post(url).status_code, 404)
        self.assertTrue(Invitation.objects.get().is_open)

    def test_another_tenants_slug_gets_404(self):
        self.login(self.victor)
        for action in ("resend", "revoke"):
            url = f"/support/tenants/beta/invitations/{self.invitation.id}/{action}/"
            self.assertEqual(self.client.post(url).status_code, 404)

    def test_nothing_can_be_resent_once_the_tenant_has_an_admin(self):
        self.make_user("ed", "Ed", self.initech, Membership.Role.ADMIN)
        self.login(self.victor)
        r = self.client.post(self.urls[0])
        self.assertContains(r, "cannot be re-sent", status_code=409)
        # Revoking stays possible: it only takes a way in away.
        self.assertRedirects(self.client.post(self.urls[1]), "/support/tenants/initech/")

    def test_a_revoked_invitation_cannot_be_revoked_or_resent_again(self):
        self.login(self.victor)
        self.client.post(self.urls[1])
        for url in self.urls:
            self.assertEqual(self.client.post(url).status_code, 409)

    def test_they_reject_a_wrong_method(self):
        self.login(self.victor)
        for url in self.urls:
            self.assertEqual(self.client.get(url).status_code, 405)

    def test_a_mail_failure_is_reported_to_support(self):
        self.login(self.victor)
        with self.settings(EMAIL_BACKEND="tests.tenants.test_security_events.FailingBackend"):
            r = self.client.post(self.urls[0], follow=True)
        self.assertContains(r, "could not be sent")


class InvitationServiceTestCase(InvitationTestCase):
    def test_support_cannot_invite_into_a_tenant_with_an_admin(self):
        with self.assertRaises(invitations.InvitationError):
            invitations.invite_first_admin(self.tenant_a, "mallory", "m@vendor.example", actor=self.victor)

    def test_an_inactive_admin_does_not_count(self):
        ed = self.make_user("ed", "Ed", self.initech, Membership.Role.ADMIN)
        ed.is_active = False
        ed.save()
        self.assertFalse(invitations.has_active_admin(self.initech))
