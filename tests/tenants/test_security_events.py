"""Security events: changes of where a tenant's data goes and of who belongs to it
are recorded, listed on the settings page and mailed to every admin of that
tenant, and of no other."""

from django.core import mail

from portal.tickets.models import Ticket
from tenants.models import Membership, SecurityEvent
from tenants.services import MembershipError, change_role, remove_member
from tests.portal.base import BaseTestCase

STORAGE_URL = "/settings/storage/"


class StorageEventsTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        for user, address in [(self.alice, "alice@alpha.example"), (self.bob, "bob@alpha.example"),
                              (self.charlie, "charlie@beta.example")]:
            user.email = address
            user.save()
        self.second_admin = self.make_user("ada", "Ada", self.tenant_a, Membership.Role.ADMIN)
        self.second_admin.email = "ada@alpha.example"
        self.second_admin.save()
        # Onboarding: no ticket yet, so the form may still change the gatekeeper in place.
        Ticket.objects.filter(tenant=self.tenant_a).delete()

    def form(self, **changes):
        t = self.tenant_a
        return {"data_location": t.data_location, "region": t.region, "bucket": t.bucket,
                "gatekeeper_url": t.gatekeeper_url, "gatekeeper_id": t.gatekeeper_id,
                "storage_origin": t.storage_origin, **changes}

    def test_changing_the_gatekeeper_url_is_recorded_with_old_and_new(self):
        self.login(self.alice)
        r = self.client.post(STORAGE_URL, self.form(gatekeeper_url="https://evil.example"))
        self.assertRedirects(r, "/settings/?saved=verify#onboarding", fetch_redirect_response=False)
        event = SecurityEvent.objects.get(tenant=self.tenant_a)
        self.assertEqual(event.kind, SecurityEvent.Kind.GATEKEEPER_URL)
        self.assertEqual((event.actor, event.actor_name), (self.alice, "alice"))
        self.assertEqual((event.old_value, event.new_value), ("https://gk.alpha.example/dualkey", "https://evil.example"))

    def test_it_mails_every_admin_of_the_tenant_and_nobody_else(self):
        self.login(self.alice)
        self.client.post(STORAGE_URL, self.form(gatekeeper_id="gk-other", storage_origin="https://o.example"))
        self.assertEqual(sorted(m.to[0] for m in mail.outbox), ["ada@alpha.example", "alice@alpha.example"])
        message = mail.outbox[0]
        self.assertIn("Alpha Ltd", message.subject)
        self.assertIn("gatekeeper id changed", message.subject)
        self.assertIn("gk-alpha -> gk-other", message.body)
        self.assertIn("https://alpha-reports.s3.eu-west-1.amazonaws.com -> https://o.example", message.body)
        self.assertIn("http://127.0.0.1:8000/settings/#security-events", message.body)
        self.assertEqual(SecurityEvent.objects.filter(tenant=self.tenant_a).count(), 2)

    def test_other_settings_are_no_event(self):
        self.login(self.alice)
        self.client.post(STORAGE_URL, self.form(region="us-west-2", bucket="other-bucket"))
        self.assertFalse(SecurityEvent.objects.exists())
        self.assertEqual(mail.outbox, [])

    def test_a_rejected_form_is_no_event(self):
        self.login(self.alice)
        r = self.client.post(STORAGE_URL, self.form(gatekeeper_url="http://gk.alpha.example"))
        self.assertEqual(r.status_code, 400)
        self.assertFalse(SecurityEvent.objects.exists())

    def test_the_settings_page_lists_the_events(self):
        self.login(self.alice)
        self.client.post(STORAGE_URL, self.form(gatekeeper_url="https://gk2.alpha.example"))
        r = self.client.get("/settings/")
        self.assertContains(r, 'data-testid="security-events"')
        self.assertContains(r, "Gatekeeper URL changed")
        self.assertContains(r, "https://gk2.alpha.example")

    def test_charlie_sees_none_of_tenant_as_events(self):
        self.login(self.alice)
        self.client.post(STORAGE_URL, self.form(gatekeeper_url="https://gk2.alpha.example"))
        self.login(self.charlie)
        r = self.client.get("/settings/")
        self.assertContains(r, "No security events yet.")
        self.assertNotContains(r, "gk2.alpha.example")

    def test_staff_cannot_see_the_events(self):
        self.login(self.bob)
        self.assertEqual(self.client.get("/settings/").status_code, 403)

    def test_a_mail_failure_does_not_undo_the_change(self):
        with self.settings(EMAIL_BACKEND="tests.tenants.test_security_events.FailingBackend"):
            self.login(self.alice)
            with self.assertLogs("tenants.events", "WARNING") as logs:
                r = self.client.post(STORAGE_URL, self.form(gatekeeper_url="https://gk2.alpha.example"))
        self.assertRedirects(r, "/settings/?saved=verify#onboarding", fetch_redirect_response=False)
        self.assertTrue(SecurityEvent.objects.filter(tenant=self.tenant_a).exists())
        self.assertNotIn("alice@alpha.example", "\n".join(logs.output))


class FailingBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("no mail server")


class MembershipEventsTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.alice.email = "alice@alpha.example"
        self.alice.save()

    def test_changing_a_role_is_recorded_and_mailed(self):
        change_role(self.bob.membership, Membership.Role.ADMIN, actor=self.alice)
        event = SecurityEvent.objects.get()
        self.assertEqual((event.kind, event.subject, event.old_value, event.new_value),
                         (SecurityEvent.Kind.ROLE_CHANGED, "bob", "staff", "admin"))
        self.assertEqual([m.to for m in mail.outbox], [["alice@alpha.example"]])

    def test_removing_a_member_is_recorded(self):
        remove_member(self.bob.membership, actor=self.alice)
        event = SecurityEvent.objects.get()
        self.assertEqual((event.kind, event.subject, event.tenant), (SecurityEvent.Kind.REMOVED, "bob", self.tenant_a))
        self.assertFalse(Membership.objects.filter(user=self.bob).exists())

    def test_the_last_admin_stays(self):
        for change in [lambda: remove_member(self.alice.membership, actor=self.alice),
                       lambda: change_role(self.alice.membership, Membership.Role.STAFF, actor=self.alice)]:
            with self.assertRaises(MembershipError):
                change()
        self.alice.refresh_from_db()
        self.assertTrue(self.alice.membership.is_admin)
        self.assertFalse(SecurityEvent.objects.exists())

    def test_an_unknown_role_is_refused(self):
        with self.assertRaises(MembershipError):
            change_role(self.bob.membership, "owner", actor=self.alice)
