"""Sessions end when idle too long, when too old, when their owner signs out
everywhere (a security event for a tenant's member), and — the other sessions — on
a password change. Times are moved by editing the session's stamps, not the clock."""

import time

from django.core import mail
from django.http import HttpRequest
from django.test import Client, override_settings

from accounts import sessions
from tenants.models import SecurityEvent
from tests.portal.base import BaseTestCase

END_ALL = "/accounts/sessions/end-all/"


def signed_in_client(user, password="password"):
    client = Client()
    assert client.login(request=HttpRequest(), username=user.get_username(), password=password)
    return client


def shift(client, **seconds_ago):
    """Move the client's session stamps `seconds_ago` into the past."""
    session = client.session
    now = int(time.time())
    for key, name in (("signed_in", sessions.SIGNED_IN_AT), ("seen", sessions.SEEN_AT)):
        if key in seconds_ago:
            session[name] = now - seconds_ago[key]
    session.save()


@override_settings(DUALKEY_SESSION_IDLE_SECONDS=600, DUALKEY_SESSION_ABSOLUTE_SECONDS=3600)
class SessionTimeoutTestCase(BaseTestCase):
    def test_a_fresh_session_works(self):
        client = signed_in_client(self.bob)
        self.assertEqual(client.get("/tickets/").status_code, 200)

    def test_an_idle_session_ends(self):
        client = signed_in_client(self.bob)
        shift(client, seen=601)
        r = client.get("/tickets/")
        self.assertEqual(r.status_code, 302)
        self.assertTrue(r["Location"].startswith("/accounts/login/"))
        self.assertContains(client.get(r["Location"]), "without activity")
        self.assertEqual(client.get("/tickets/").status_code, 302)  # for good

    def test_activity_keeps_it_alive_until_the_absolute_limit(self):
        client = signed_in_client(self.bob)
        shift(client, signed_in=3000, seen=500)
        self.assertEqual(client.get("/tickets/").status_code, 200)
        self.assertLess(int(time.time()) - client.session[sessions.SEEN_AT], 5)  # touched
        shift(client, signed_in=3601)
        r = client.get("/tickets/")
        self.assertEqual(r.status_code, 302)
        self.assertContains(client.get(r["Location"]), "maximum length")

    def test_the_api_is_refused_too(self):
        client = signed_in_client(self.bob)
        shift(client, seen=601)
        self.assertIn(client.get("/api/v1/tickets").status_code, (401, 403))

    def test_the_checks_take_the_time(self):
        stamped = {sessions.SIGNED_IN_AT: 1000, sessions.SEEN_AT: 1000, sessions.EPOCH: 0}
        self.assertIsNone(sessions.expiry_reason(stamped, 0, now=1600))
        self.assertEqual(sessions.expiry_reason(stamped, 0, now=1601), "idle")
        self.assertEqual(sessions.expiry_reason(stamped, 1, now=1001), "signed_out_everywhere")
        self.assertEqual(sessions.expiry_reason({**stamped, sessions.SEEN_AT: 4500}, 0, now=4601), "absolute")
        self.assertEqual(sessions.expiry_reason({}, 0, now=1), "unstamped")


class SignOutEverywhereTestCase(BaseTestCase):
    def test_it_ends_every_session_of_the_account_and_only_those(self):
        laptop, phone, alice = signed_in_client(self.bob), signed_in_client(self.bob), signed_in_client(self.alice)
        self.alice.email = "alice@alpha.example"
        self.alice.save()
        r = phone.post(END_ALL)
        self.assertRedirects(r, "/accounts/login/", fetch_redirect_response=False)
        for client in (laptop, phone):
            self.assertEqual(client.get("/tickets/").status_code, 302)
        self.assertEqual(alice.get("/tickets/").status_code, 200)
        # Signing in again works, with the new epoch.
        self.assertEqual(signed_in_client(self.bob).get("/tickets/").status_code, 200)
        event = SecurityEvent.objects.get(tenant=self.tenant_a, kind=SecurityEvent.Kind.SESSIONS_ENDED)
        self.assertEqual((event.actor, event.subject), (self.bob, "bob"))
        self.assertEqual(mail.outbox[0].to, ["alice@alpha.example"])

    def test_vendor_support_can_too_without_a_tenant_event(self):
        client = signed_in_client(self.victor)
        self.assertEqual(client.post(END_ALL).status_code, 302)
        self.assertEqual(client.get("/support/").status_code, 302)
        self.assertFalse(SecurityEvent.objects.exists())

    def test_it_is_post_only_and_needs_a_session(self):
        client = signed_in_client(self.bob)
        self.assertEqual(client.get(END_ALL).status_code, 405)
        self.assertEqual(client.get("/tickets/").status_code, 200)
        r = Client().post(END_ALL)
        self.assertTrue(r["Location"].startswith("/accounts/login/"))

    def test_it_needs_the_csrf_token(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.bob)
        self.assertEqual(client.post(END_ALL).status_code, 403)
        self.assertEqual(client.get("/tickets/").status_code, 200)


class PasswordChangeEndsOtherSessionsTestCase(BaseTestCase):
    def test_the_other_sessions_end_and_this_one_stays(self):
        here, elsewhere = signed_in_client(self.bob), signed_in_client(self.bob)
        new = "a fresh long passphrase 42"
        r = here.post("/accounts/password/change/", {"old_password": "password", "new_password1": new,
                                                     "new_password2": new})
        self.assertRedirects(r, "/accounts/password/change/done/")
        self.assertEqual(here.get("/tickets/").status_code, 200)
        self.assertEqual(elsewhere.get("/tickets/").status_code, 302)
