"""Password change and reset: Django's views, our rules (no enumeration, links from
DUALKEY_PORTAL_ORIGIN, single use, other sessions ended, throttled requests)."""

import re

from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.test import Client, override_settings

from tenants.models import SecurityEvent
from tests.portal.base import BaseTestCase

RESET = "/accounts/password/reset/"
CHANGE = "/accounts/password/change/"
NEW = "a fresh long passphrase 42"


@override_settings(DUALKEY_PORTAL_ORIGIN="https://portal.example.com", ALLOWED_HOSTS=["*"])
class PasswordResetTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        cache.clear()
        self.alice.email = "alice@alpha.example"
        self.alice.save()

    def request_reset(self, email, **extra):
        return self.client.post(RESET, {"email": email}, **extra)

    def link(self):
        self.assertEqual(len(mail.outbox), 1)
        return re.search(r"https?://\S+", mail.outbox[0].body).group(0)

    def test_the_same_answer_whether_or_not_the_address_exists(self):
        known = self.request_reset("alice@alpha.example")
        unknown = self.request_reset("nobody@alpha.example")
        self.assertEqual((known.status_code, known["Location"]), (unknown.status_code, unknown["Location"]))
        self.assertEqual(self.client.get(known["Location"]).content, self.client.get(unknown["Location"]).content)
        self.assertEqual([m.to for m in mail.outbox], [["alice@alpha.example"]])

    def test_the_link_uses_the_configured_origin_not_the_host_header(self):
        self.request_reset("alice@alpha.example", HTTP_HOST="evil.example")
        link = self.link()
        self.assertTrue(link.startswith("https://portal.example.com/accounts/password/reset/"), link)
        self.assertNotIn("evil.example", mail.outbox[0].body)

    def test_the_link_sets_a_new_password_once(self):
        self.request_reset("alice@alpha.example")
        path = self.link().removeprefix("https://portal.example.com")
        form = self.client.get(path, follow=True)
        self.assertContains(form, "Choose a new password")
        done = self.client.post(form.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW})
        self.assertRedirects(done, "/accounts/password/reset/complete/")
        self.alice.refresh_from_db()
        self.assertTrue(self.alice.check_password(NEW))
        again = Client().get(path, follow=True)
        self.assertContains(again, "This link does not work", status_code=404)
        self.assertEqual(Client().get("/accounts/password/reset/MQ/bad-token/").status_code, 404)

    def test_a_password_set_by_a_link_is_a_security_event_the_admins_hear_of(self):
        self.bob.email = "bob@alpha.example"
        self.bob.save()
        self.request_reset("bob@alpha.example")
        path = self.link().removeprefix("https://portal.example.com")
        mail.outbox.clear()
        form_url = self.client.get(path, follow=True).redirect_chain[-1][0]
        self.client.post(form_url, {"new_password1": NEW, "new_password2": NEW})
        event = SecurityEvent.objects.get(tenant=self.tenant_a, kind="password_reset")
        self.assertEqual((event.actor, event.subject), (self.bob, "bob"))
        self.assertEqual([m.to for m in mail.outbox], [["alice@alpha.example"]])
        self.assertIn("password reset by mail link", mail.outbox[0].subject)
        self.assertFalse(SecurityEvent.objects.filter(tenant=self.tenant_b).exists())

    def test_a_refused_new_password_records_nothing(self):
        self.request_reset("alice@alpha.example")
        path = self.link().removeprefix("https://portal.example.com")
        form_url = self.client.get(path, follow=True).redirect_chain[-1][0]
        self.client.post(form_url, {"new_password1": "short1", "new_password2": "short1"})
        self.assertFalse(SecurityEvent.objects.filter(kind="password_reset").exists())

    def test_validators_apply_to_the_new_password(self):
        self.request_reset("alice@alpha.example")
        path = self.link().removeprefix("https://portal.example.com")
        form_url = self.client.get(path, follow=True).redirect_chain[-1][0]
        short = self.client.post(form_url, {"new_password1": "short1", "new_password2": "short1"})
        self.assertEqual(short.status_code, 400)
        self.assertContains(short, "at least 12 characters", status_code=400)
        self.alice.refresh_from_db()
        self.assertTrue(self.alice.check_password("password"))

    def test_a_bad_address_is_a_400_with_a_reason(self):
        r = self.request_reset("not an address")
        self.assertEqual(r.status_code, 400)
        self.assertContains(r, "valid email", status_code=400)
        self.assertEqual(self.request_reset("a" * 300 + "@x.example").status_code, 400)

    @override_settings(DUALKEY_RESET_LIMIT=2)
    def test_requests_are_throttled_with_the_same_answer(self):
        answers = [self.request_reset("alice@alpha.example", REMOTE_ADDR="198.51.100.1")["Location"]
                   for _ in range(4)]
        self.assertEqual(len(set(answers)), 1)
        self.assertEqual(len(mail.outbox), 2)

    def test_the_login_page_links_to_reset(self):
        self.assertContains(self.client.get("/accounts/login/"), f'href="{RESET}"')


class PasswordChangeTestCase(BaseTestCase):
    def test_change_keeps_this_session_and_ends_the_others(self):
        other = Client()
        other.force_login(self.alice)
        self.client.force_login(self.alice)
        self.assertContains(self.client.get("/tickets/"), f'href="{CHANGE}"')
        r = self.client.post(CHANGE, {"old_password": "password", "new_password1": NEW, "new_password2": NEW})
        self.assertRedirects(r, "/accounts/password/change/done/", fetch_redirect_response=False)
        self.assertEqual(self.client.get("/accounts/password/change/done/").status_code, 200)
        self.assertEqual(other.get("/tickets/").status_code, 302)
        self.alice.refresh_from_db()
        self.assertTrue(self.alice.check_password(NEW))

    def test_a_change_is_a_security_event_of_the_members_tenant(self):
        self.alice.email = "alice@alpha.example"
        self.alice.save()
        self.client.force_login(self.bob)
        self.client.post(CHANGE, {"old_password": "password", "new_password1": NEW, "new_password2": NEW})
        event = SecurityEvent.objects.get(kind="password_changed")
        self.assertEqual((event.tenant, event.actor, event.actor_name, event.subject),
                         (self.tenant_a, self.bob, "bob", "bob"))
        self.assertEqual([m.to for m in mail.outbox], [["alice@alpha.example"]])
        self.client.force_login(self.alice)
        self.assertContains(self.client.get("/settings/"), "Password changed")

    def test_vendor_supports_change_belongs_to_no_tenant(self):
        self.client.force_login(self.victor)
        r = self.client.post(CHANGE, {"old_password": "password", "new_password1": NEW, "new_password2": NEW})
        self.assertEqual(r.status_code, 302)
        self.assertFalse(SecurityEvent.objects.exists())

    def test_a_wrong_old_password_or_a_weak_new_one_is_a_400(self):
        self.client.force_login(self.alice)
        wrong = self.client.post(CHANGE, {"old_password": "nope", "new_password1": NEW, "new_password2": NEW})
        self.assertEqual(wrong.status_code, 400)
        weak = self.client.post(CHANGE, {"old_password": "password", "new_password1": "123456789012",
                                         "new_password2": "123456789012"})
        self.assertContains(weak, "entirely numeric", status_code=400)
        self.assertTrue(get_user_model().objects.get(pk=self.alice.pk).check_password("password"))
        self.assertFalse(SecurityEvent.objects.exists())

    def test_anonymous_visitors_are_sent_to_log_in(self):
        self.assertEqual(self.client.get(CHANGE).status_code, 302)
