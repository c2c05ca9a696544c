"""The members page (/settings/members/): Alice, admin of A, sees A's people and
pending invitations, invites by mail with a role, changes roles, removes members,
re-sends and revokes invitations; every change is a security event mailed to A's
admins. The last admin stays. Bob (staff) gets 403: the page is admins' only.
Charlie, of tenant B, finds none of A's members or invitations (404)."""

import datetime as dt
import re

from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from tenants.models import Invitation, Membership, SecurityEvent
from tests.portal.base import BaseTestCase

MEMBERS = "/settings/members/"
INVITE = "/settings/members/invite/"
ACCEPT = "/invitations/accept/"
PASSWORD = "a-long-and-unusual-passphrase"


class MembersTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        for user, address in [(self.alice, "alice@alpha.example"), (self.bob, "bob@alpha.example"),
                              (self.charlie, "charlie@beta.example")]:
            user.email = address
            user.save()
        self.bob.last_login = timezone.now().replace(year=2026, month=11, day=30, hour=9, minute=15)
        self.bob.save()
        self.bob_membership = self.bob.membership
        self.alice_membership = self.alice.membership

    def invite(self, username="dana", email="dana@alpha.example", role="staff", who=None):
        self.login(who or self.alice)
        return self.client.post(INVITE, {"username": username, "email": email, "role": role})

    def invitation(self, **fields) -> Invitation:
        self.invite(**fields)
        mail.outbox.clear()
        return Invitation.objects.get(username=fields.get("username", "dana"))

    def mailed_token(self, message=None):
        message = message or mail.outbox[0]
        return re.search(r"/invitations/accept/\?token=([A-Za-z0-9_-]+)", message.body).group(1)

    def role_url(self, membership):
        return f"/settings/members/{membership.id}/role/"

    def remove_url(self, membership):
        return f"/settings/members/{membership.id}/remove/"

    def events(self):
        return list(SecurityEvent.objects.filter(tenant=self.tenant_a).values_list("kind", "subject", "old_value",
                                                                                  "new_value"))


class MembersPageTestCase(MembersTestCase):
    def test_it_lists_members_with_name_email_role_and_last_sign_in(self):
        self.make_user("ada", "Ada", self.tenant_a, Membership.Role.STAFF)  # never signed in
        self.login(self.alice)
        r = self.client.get(MEMBERS)
        self.assertEqual(r.status_code, 200)
        for text in ["bob@alpha.example", "Bob", "Help-desk staff", "Tenant admin", "2026-11-30 09:15",
                     "alice@alpha.example", "never"]:
            self.assertContains(r, text)
        self.assertNotContains(r, "charlie")
        self.assertEqual(r["Cache-Control"], "no-store")

    def test_it_is_linked_from_the_settings_page_and_the_nav_for_admins_only(self):
        self.login(self.alice)
        self.assertContains(self.client.get("/settings/"), 'href="/settings/members/"', count=2)
        self.login(self.bob)
        self.assertNotContains(self.client.get("/tickets/"), 'href="/settings/members/"')

    def test_it_lists_pending_invitations_with_their_expiry(self):
        invitation = self.invitation()
        r = self.client.get(MEMBERS)
        self.assertContains(r, "dana@alpha.example")
        self.assertContains(r, f"{invitation.expires_at:%Y-%m-%d %H:%M}")
        self.assertContains(r, f"/settings/members/invitations/{invitation.id}/revoke/")

    def test_it_shows_staff_nothing(self):
        """Staff: not at all. Members' addresses and invitations are the admins' business."""
        self.login(self.bob)
        self.assertEqual(self.client.get(MEMBERS).status_code, 403)

    def test_it_shows_charlie_only_his_own_tenant(self):
        self.invitation()
        self.client.logout()  # and Alice's "Invitation mailed" message with her session
        self.login(self.charlie)
        r = self.client.get(MEMBERS)
        self.assertContains(r, "charlie@beta.example")
        for text in ["alice", "bob@alpha.example", "dana@alpha.example", "Alpha Ltd"]:
            self.assertNotContains(r, text)

    def test_it_is_404_for_vendor_support_and_a_login_for_visitors(self):
        self.login(self.victor)
        self.assertEqual(self.client.get(MEMBERS).status_code, 404)
        self.client.logout()
        self.assertRedirects(self.client.get(MEMBERS), "/accounts/login/?next=/settings/members/",
                             fetch_redirect_response=False)

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(MEMBERS).status_code, 405)
        membership = self.bob_membership
        invitation = self.invitation()
        for url in [INVITE, self.role_url(membership), self.remove_url(membership),
                    f"/settings/members/invitations/{invitation.id}/resend/",
                    f"/settings/members/invitations/{invitation.id}/revoke/"]:
            with self.subTest(url=url):
                self.assertEqual(self.client.get(url).status_code, 405)

    def test_its_posts_need_csrf(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.alice)
        r = client.post(self.remove_url(self.bob_membership))
        self.assertEqual(r.status_code, 403)
        self.assertTrue(Membership.objects.filter(pk=self.bob_membership.pk).exists())


class InviteMemberTestCase(MembersTestCase):
    def test_it_mails_the_invitee_a_link_and_the_admins_the_event(self):
        r = self.invite(role="admin")
        self.assertRedirects(r, MEMBERS)
        invite_mail = [m for m in mail.outbox if m.to == ["dana@alpha.example"]]
        self.assertEqual(len(invite_mail), 1)
        self.assertIn("as tenant admin", invite_mail[0].body)
        token = self.mailed_token(invite_mail[0])
        self.assertNotContains(self.client.get(MEMBERS), token)
        event_mail = [m for m in mail.outbox if m.to == ["alice@alpha.example"]]
        self.assertEqual(len(event_mail), 1)
        self.assertIn("member invited", event_mail[0].subject)
        self.assertEqual(self.events(), [("invited", "dana <dana@alpha.example>", "", "admin")])
        invitation = Invitation.objects.get()
        self.assertEqual((invitation.onboarding, invitation.invited_by, invitation.role), (False, self.alice, "admin"))

    def test_the_invitee_joins_with_the_role_although_the_tenant_has_an_admin(self):
        self.invite(role="staff")
        token = self.mailed_token([m for m in mail.outbox if m.to == ["dana@alpha.example"]][0])
        self.client.logout()
        r = self.client.post(ACCEPT, {"token": token, "new_password1": PASSWORD, "new_password2": PASSWORD})
        self.assertRedirects(r, "/", fetch_redirect_response=False)
        dana = get_user_model().objects.get(username="dana")
        self.assertEqual((dana.membership.tenant, dana.membership.role), (self.tenant_a, "staff"))
        self.assertEqual(self.events()[0][:2], ("joined", "dana <dana@alpha.example>"))

    def test_it_rejects_bad_input_with_a_reason(self):
        cases = [({"email": "nope"}, "email", "Enter a valid email address."),
                 ({"role": "owner"}, "role", "Select a valid choice."),
                 ({"username": "bob"}, "username", "That username is taken."),
                 ({"username": "x y"}, "username", "Letters, digits and @.+-_ only.")]
        for change, field, reason in cases:
            with self.subTest(change=change):
                r = self.invite(**change)
                self.assertEqual(r.status_code, 400)
                self.assertIn(reason, " ".join(r.context["invite_form"].errors[field]))
                self.assertContains(r, reason[:20], status_code=400)
        self.assertFalse(Invitation.objects.exists())
        self.assertEqual(mail.outbox, [])

    def test_a_mail_failure_is_reported_and_the_invitation_kept_to_resend(self):
        self.login(self.alice)
        with self.settings(EMAIL_BACKEND="tests.tenants.test_security_events.FailingBackend"):
            r = self.client.post(INVITE, {"username": "dana", "email": "dana@alpha.example", "role": "staff"},
                                 follow=True)
        self.assertContains(r, "could not be sent")
        self.assertContains(r, "Re-send")
        self.assertTrue(Invitation.objects.get().is_open)

    def test_it_is_403_for_staff_and_404_for_support(self):
        self.assertEqual(self.invite(who=self.bob).status_code, 403)
        self.assertEqual(self.invite(who=self.victor).status_code, 404)
        self.assertFalse(Invitation.objects.exists())

    def test_charlie_invites_into_his_own_tenant_only(self):
        self.invite(who=self.charlie, username="erin", email="erin@beta.example")
        self.assertEqual(Invitation.objects.get().tenant, self.tenant_b)
        self.assertEqual(self.events(), [])


class ChangeRoleTestCase(MembersTestCase):
    def test_alice_makes_bob_an_admin(self):
        self.login(self.alice)
        r = self.client.post(self.role_url(self.bob_membership), {"role": "admin"})
        self.assertRedirects(r, MEMBERS)
        self.bob_membership.refresh_from_db()
        self.assertEqual(self.bob_membership.role, "admin")
        self.assertEqual(self.events(), [("role_changed", "bob", "staff", "admin")])
        self.assertEqual(sorted(m.to[0] for m in mail.outbox), ["alice@alpha.example", "bob@alpha.example"])

    def test_the_last_admin_cannot_be_made_staff(self):
        self.login(self.alice)
        r = self.client.post(self.role_url(self.alice_membership), {"role": "staff"})
        self.assertContains(r, "The last admin of a tenant cannot be made staff", status_code=409)
        self.alice_membership.refresh_from_db()
        self.assertEqual(self.alice_membership.role, "admin")
        self.assertEqual((self.events(), mail.outbox), ([], []))

    def test_an_admin_who_makes_herself_staff_goes_home(self):
        self.make_user("ada", "Ada", self.tenant_a, Membership.Role.ADMIN)
        self.login(self.alice)
        r = self.client.post(self.role_url(self.alice_membership), {"role": "staff"})
        self.assertRedirects(r, "/", fetch_redirect_response=False)
        self.assertEqual(self.client.get(MEMBERS).status_code, 403)

    def test_it_rejects_a_bad_role_with_a_reason(self):
        self.login(self.alice)
        for data, reason in [({"role": "owner"}, "Choose a role: staff or admin."), ({}, "Choose a role.")]:
            with self.subTest(data=data):
                self.assertContains(self.client.post(self.role_url(self.bob_membership), data), reason,
                                    status_code=400)
        self.assertEqual(self.events(), [])

    def test_it_is_403_for_bob_and_404_for_charlie(self):
        self.login(self.bob)
        self.assertEqual(self.client.post(self.role_url(self.bob_membership), {"role": "admin"}).status_code, 403)
        self.login(self.charlie)
        self.assertEqual(self.client.post(self.role_url(self.bob_membership), {"role": "admin"}).status_code, 404)
        self.assertEqual(self.client.post("/settings/members/999999/role/", {"role": "admin"}).status_code, 404)
        self.bob_membership.refresh_from_db()
        self.assertEqual(self.bob_membership.role, "staff")


class RemoveMemberTestCase(MembersTestCase):
    def test_alice_removes_bob_and_bob_loses_the_tenant(self):
        self.login(self.alice)
        self.assertRedirects(self.client.post(self.remove_url(self.bob_membership)), MEMBERS)
        self.assertFalse(Membership.objects.filter(user=self.bob).exists())
        self.assertEqual(self.events(), [("removed", "bob", "staff", "")])
        self.assertEqual([m.to for m in mail.outbox], [["alice@alpha.example"]])
        self.login(self.bob)
        self.assertEqual(self.client.get(f"/tickets/{self.ticket.id}/").status_code, 404)

    def test_the_last_admin_cannot_be_removed(self):
        self.login(self.alice)
        r = self.client.post(self.remove_url(self.alice_membership))
        self.assertContains(r, "The last admin of a tenant cannot be removed", status_code=409)
        self.assertTrue(Membership.objects.filter(pk=self.alice_membership.pk).exists())
        self.assertEqual(self.events(), [])

    def test_it_is_403_for_bob_and_404_for_charlie(self):
        self.login(self.bob)
        self.assertEqual(self.client.post(self.remove_url(self.alice_membership)).status_code, 403)
        self.login(self.charlie)
        self.assertEqual(self.client.post(self.remove_url(self.bob_membership)).status_code, 404)
        self.assertEqual(Membership.objects.filter(tenant=self.tenant_a).count(), 2)
        self.assertEqual(self.events(), [])


class PendingInvitationsTestCase(MembersTestCase):
    def resend(self, invitation):
        return self.client.post(f"/settings/members/invitations/{invitation.id}/resend/")

    def revoke(self, invitation):
        return self.client.post(f"/settings/members/invitations/{invitation.id}/revoke/")

    def test_resending_mails_a_new_link_and_the_old_one_stops_working(self):
        self.invite()
        old_token = self.mailed_token([m for m in mail.outbox if m.to == ["dana@alpha.example"]][0])
        mail.outbox.clear()
        invitation = Invitation.objects.get()
        self.assertRedirects(self.resend(invitation), MEMBERS)
        new_token = self.mailed_token([m for m in mail.outbox if m.to == ["dana@alpha.example"]][0])
        self.assertNotEqual(old_token, new_token)
        self.assertEqual(self.events()[0][:2], ("invitation_resent", "dana <dana@alpha.example>"))
        self.assertIn(["alice@alpha.example"], [m.to for m in mail.outbox])
        self.client.logout()
        self.assertEqual(self.client.get(ACCEPT, {"token": old_token}).status_code, 404)
        self.assertEqual(self.client.get(ACCEPT, {"token": new_token}).status_code, 200)

    def test_resending_an_expired_invitation_gives_it_a_new_expiry(self):
        invitation = self.invitation()
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - dt.timedelta(days=1))
        self.assertContains(self.client.get(MEMBERS), 'data-state="expired"')
        self.assertRedirects(self.resend(invitation), MEMBERS)
        invitation.refresh_from_db()
        self.assertGreater(invitation.expires_at, timezone.now() + dt.timedelta(days=6))

    def test_revoking_kills_the_link_and_is_an_event(self):
        self.invite()
        token = self.mailed_token([m for m in mail.outbox if m.to == ["dana@alpha.example"]][0])
        invitation = Invitation.objects.get()
        self.assertRedirects(self.revoke(invitation), MEMBERS)
        self.assertEqual(self.events()[0][:2], ("invitation_revoked", "dana <dana@alpha.example>"))
        self.assertNotContains(self.client.get(MEMBERS), "dana@alpha.example")
        self.assertContains(self.revoke(invitation), "already used or revoked", status_code=409)
        self.assertContains(self.resend(invitation), "cannot be re-sent: it is revoked", status_code=409)
        self.client.logout()
        self.assertEqual(self.client.get(ACCEPT, {"token": token}).status_code, 410)

    def test_a_used_invitation_cannot_be_resent_or_revoked(self):
        invitation = self.invitation()
        Invitation.objects.filter(pk=invitation.pk).update(accepted_at=timezone.now())
        self.assertEqual(self.resend(invitation).status_code, 409)
        self.assertEqual(self.revoke(invitation).status_code, 409)

    def test_it_is_403_for_bob_and_404_for_charlie(self):
        invitation = self.invitation()
        self.login(self.bob)
        self.assertEqual(self.resend(invitation).status_code, 403)
        self.assertEqual(self.revoke(invitation).status_code, 403)
        self.login(self.charlie)
        self.assertEqual(self.resend(invitation).status_code, 404)
        self.assertEqual(self.revoke(invitation).status_code, 404)
        invitation.refresh_from_db()
        self.assertTrue(invitation.is_open)
        self.assertEqual(mail.outbox, [])


class ExistingAccountTestCase(MembersTestCase):
    """Erin's account belongs to no tenant (Beta removed her): Alice invites her by
    username, and she joins A by signing in with her own password and opening the link."""

    def setUp(self):
        super().setUp()
        self.erin = get_user_model().objects.create_user("erin", password="erins-own-password", email="erin@x.example")

    def erins_token(self):
        self.assertEqual(self.invite(username="Erin", email="erin@x.example", role="staff").status_code, 302)
        token = self.mailed_token([m for m in mail.outbox if m.to == ["erin@x.example"]][0])
        self.client.logout()
        return token

    def test_erin_signs_in_from_the_link_and_joins(self):
        token = self.erins_token()
        self.assertEqual(Invitation.objects.get().username, "erin")
        erins_mail = [m for m in mail.outbox if m.to == ["erin@x.example"]][0]
        self.assertIn("You have an account already: open this link, sign in", erins_mail.body)
        page = self.client.get(ACCEPT, {"token": token})
        self.assertContains(page, "your existing account")
        self.assertNotContains(page, "new_password1")
        next_url = f"{ACCEPT}?token={token}"
        r = self.client.post("/accounts/login/?" + f"next={ACCEPT}%3Ftoken%3D{token}",
                             {"username": "erin", "password": "erins-own-password"})
        self.assertRedirects(r, next_url, fetch_redirect_response=False)
        self.assertContains(self.client.get(next_url), "Join Alpha Ltd")
        mail.outbox.clear()
        self.assertRedirects(self.client.post(ACCEPT, {"token": token}), "/", fetch_redirect_response=False)
        self.erin.refresh_from_db()
        self.assertEqual((self.erin.membership.tenant, self.erin.membership.role), (self.tenant_a, "staff"))
        self.assertTrue(self.erin.check_password("erins-own-password"))
        self.assertEqual(self.events()[0][:2], ("joined", "erin <erin@x.example>"))
        self.assertEqual([m.to for m in mail.outbox], [["alice@alpha.example"]])
        self.assertEqual(self.client.post(ACCEPT, {"token": token}).status_code, 410)  # single use

    def test_signed_out_posting_joins_nobody(self):
        token = self.erins_token()
        self.assertContains(self.client.post(ACCEPT, {"token": token}), "Sign in")
        self.assertFalse(Membership.objects.filter(user=self.erin).exists())

    def test_another_signed_in_account_cannot_take_it(self):
        token = self.erins_token()
        self.login(self.bob)
        self.assertContains(self.client.post(ACCEPT, {"token": token}), "for another account", status_code=409)
        self.assertFalse(Membership.objects.filter(user=self.erin).exists())
        self.assertEqual(self.bob.membership.tenant, self.tenant_a)

    def test_an_account_that_joined_a_tenant_meanwhile_is_refused(self):
        token = self.erins_token()
        Membership.objects.create(user=self.erin, tenant=self.tenant_b)
        self.login(self.erin)
        self.assertContains(self.client.post(ACCEPT, {"token": token}), "one tenant per account", status_code=410)
        self.assertEqual(self.erin.membership.tenant, self.tenant_b)

    def test_members_of_a_tenant_and_vendor_support_cannot_be_invited(self):
        for username in ["charlie", "victor"]:
            with self.subTest(username=username):
                r = self.invite(username=username, email="x@x.example")
                self.assertContains(r, "That username is taken.", status_code=400)
        self.assertFalse(Invitation.objects.exists())
