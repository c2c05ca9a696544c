"""The webhook settings page and its endpoints (portal/webhooks), as a story:
Alice (A's admin) adds, tests, disables and deletes; Bob (A's staff) is refused
(403); Charlie (B's admin) finds nothing of A's (404). Deliveries here run in
this process (eager Celery) against a receiver thread on loopback; the real worker
on real Redis is tests/portal/test_webhooks_worker.py."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.test import override_settings

from accounts.sealed import unseal
from portal.tickets.services import complete_ticket, create_ticket
from portal.webhooks import signing
from portal.webhooks.models import WebhookDelivery, WebhookEndpoint
from portal.webhooks.services import SECRET_PURPOSE, add_endpoint, queue_test_event, ticket_event
from portal.webhooks.tasks import backoff, deliver
from portal.webhooks.urlcheck import UnsafeURL, check_url
from tests.portal.base import BaseTestCase, manifest_entry

PUBLIC_URL = "https://93.184.215.14/hooks/dualkey"  # a public address literal: nothing is resolved or sent


class Receiver:
    """A real HTTP server on loopback that answers `status` and keeps what it got."""

    def __init__(self, status=204):
        self.status, self.requests = status, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class WebhookPageTestCase(BaseTestCase):
    def add(self, user, url=PUBLIC_URL, description="PSA"):
        self.login(user)
        return self.client.post("/settings/webhooks/add/", {"url": url, "description": description})

    def test_alice_sees_her_tenants_webhooks_page(self):
        add_endpoint(self.tenant_a, PUBLIC_URL, "Alpha PSA", self.alice)
        self.login(self.alice)
        response = self.client.get("/settings/webhooks/")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, PUBLIC_URL)
        self.assertContains(response, "Dualkey-Signature")

    def test_the_settings_page_links_to_it(self):
        self.login(self.alice)
        self.assertContains(self.client.get("/settings/"), 'href="/settings/webhooks/"')

    def test_it_returns_403_for_staff(self):
        self.login(self.bob)
        self.assertEqual(self.client.get("/settings/webhooks/").status_code, 403)
        self.assertEqual(self.add(self.bob).status_code, 403)
        self.assertFalse(WebhookEndpoint.objects.exists())

    def test_charlie_sees_only_his_own_tenants_endpoints(self):
        add_endpoint(self.tenant_a, PUBLIC_URL, "Alpha PSA", self.alice)
        self.login(self.charlie)
        response = self.client.get("/settings/webhooks/")
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, PUBLIC_URL)
        self.assertNotContains(response, "Alpha PSA")

    def test_it_requires_login_and_post(self):
        self.assertEqual(self.client.get("/settings/webhooks/").status_code, 302)
        self.login(self.alice)
        self.assertEqual(self.client.get("/settings/webhooks/add/").status_code, 405)

    def test_adding_shows_the_secret_once_and_keeps_it_sealed(self):
        response = self.add(self.alice)
        self.assertEqual(response.status_code, 200)
        secret = response.context["new_secret"]["secret"]
        self.assertTrue(secret.startswith("whsec_"))
        self.assertContains(response, secret)
        self.assertEqual(response["Cache-Control"], "no-store")
        endpoint = WebhookEndpoint.objects.get(tenant=self.tenant_a)
        self.assertNotIn(secret.encode(), bytes(endpoint.secret_sealed))
        self.assertEqual(unseal(endpoint.secret_sealed, purpose=SECRET_PURPOSE, owner=endpoint.pk).decode(), secret)
        self.assertNotContains(self.client.get("/settings/webhooks/"), secret)

    def test_adding_refuses_unsafe_urls_with_a_reason(self):
        for url, reason in [("http://93.184.215.14/hook", "must use https"),
                            ("https://10.1.2.3/hook", "private or reserved"),
                            ("https://169.254.169.254/latest/meta-data/", "private or reserved"),
                            ("https://[fd00::1]/hook", "private or reserved"),
                            ("https://user:pw@93.184.215.14/hook", "user name or password"),
                            ("ftp://93.184.215.14/hook", "https://HOST/PATH"),
                            ("https://93.184.215.14:99999/hook", "not a valid URL"),
                            ("not a url", "https://HOST/PATH")]:
            with self.subTest(url=url):
                response = self.add(self.alice, url)
                self.assertEqual(response.status_code, 400)
                self.assertContains(response, reason, status_code=400)
        self.assertFalse(WebhookEndpoint.objects.exists())

    def test_loopback_is_refused_without_debug(self):
        with override_settings(DUALKEY_WEBHOOK_ALLOW_LOOPBACK=False):
            response = self.add(self.alice, "https://127.0.0.1:8443/hook")
        self.assertContains(response, "private or reserved", status_code=400)

    def test_loopback_is_allowed_only_in_debug(self):
        self.assertEqual(check_url("http://127.0.0.1:9/hook", debug=True, allow_private=False),
                         "http://127.0.0.1:9/hook")
        with self.assertRaisesMessage(UnsafeURL, "must use https"):
            check_url("http://127.0.0.1:9/hook", debug=False, allow_private=False)
        with self.assertRaisesMessage(UnsafeURL, "private or reserved"):
            check_url("https://127.0.0.1:9/hook", debug=False, allow_private=False)

    def test_ipv6_forms_that_carry_an_ipv4_address_are_judged_by_it(self):
        # ipaddress calls all of these global (Python 3.11): the IPv4 address inside decides.
        for form, private, public in [("IPv4-mapped", "::ffff:10.1.2.3", "::ffff:93.184.215.14"),
                                      ("IPv4-compatible", "::10.1.2.3", "::93.184.215.14"),
                                      ("6to4", "2002:a01:203::1", "2002:5db8:d70e::1"),
                                      ("NAT64", "64:ff9b::10.1.2.3", "64:ff9b::93.184.215.14"),
                                      ("NAT64 metadata", "64:ff9b::169.254.169.254", "64:ff9b::93.184.215.14"),
                                      ("mapped loopback", "::ffff:127.0.0.1", "::ffff:93.184.215.14")]:
            with self.subTest(form=form):
                with self.assertRaisesMessage(UnsafeURL, "a private or reserved address"):
                    check_url(f"https://[{private}]/hook", debug=False, allow_private=False)
                self.assertEqual(check_url(f"https://[{public}]/hook", debug=False, allow_private=False),
                                 f"https://[{public}]/hook")
                self.assertEqual(check_url(f"https://[{private}]/hook", debug=False, allow_private=True),
                                 f"https://[{private}]/hook")
        with self.assertRaisesMessage(UnsafeURL, "(which carries 10.1.2.3)"):
            check_url("https://[2002:a01:203::1]/hook", debug=False, allow_private=False)
        # A local-use NAT64 prefix (RFC 8215) places the IPv4 address as its site chooses: refused.
        with self.assertRaisesMessage(UnsafeURL, "a private or reserved address"):
            check_url("https://[64:ff9b:1::93.184.215.14]/hook", debug=False, allow_private=False)
        response = self.add(self.alice, "https://[::ffff:10.1.2.3]/hook")
        self.assertContains(response, "private or reserved", status_code=400)
        self.assertFalse(WebhookEndpoint.objects.exists())

    def test_the_allow_private_setting_admits_private_addresses(self):
        with override_settings(DUALKEY_WEBHOOK_ALLOW_PRIVATE=True):
            self.assertEqual(self.add(self.alice, "https://10.1.2.3/hook").status_code, 200)

    def test_alice_disables_enables_and_deletes(self):
        endpoint, _ = add_endpoint(self.tenant_a, PUBLIC_URL, "", self.alice)
        self.login(self.alice)
        self.assertRedirects(self.client.post(f"/settings/webhooks/{endpoint.id}/enabled/", {"enabled": "0"}),
                             "/settings/webhooks/")
        endpoint.refresh_from_db()
        self.assertFalse(endpoint.enabled)
        self.client.post(f"/settings/webhooks/{endpoint.id}/enabled/", {"enabled": "1"})
        endpoint.refresh_from_db()
        self.assertTrue(endpoint.enabled)
        self.assertRedirects(self.client.post(f"/settings/webhooks/{endpoint.id}/delete/"), "/settings/webhooks/")
        self.assertFalse(WebhookEndpoint.objects.exists())

    def test_a_bad_enabled_value_is_a_400(self):
        endpoint, _ = add_endpoint(self.tenant_a, PUBLIC_URL, "", self.alice)
        self.login(self.alice)
        response = self.client.post(f"/settings/webhooks/{endpoint.id}/enabled/", {"enabled": "maybe"})
        self.assertContains(response, "enabled must be 1 (on) or 0 (off)", status_code=400)

    def test_bob_and_charlie_cannot_touch_alices_endpoint(self):
        endpoint, _ = add_endpoint(self.tenant_a, PUBLIC_URL, "", self.alice)
        for user, status in [(self.bob, 403), (self.charlie, 404)]:
            self.login(user)
            for action in ["enabled", "delete", "test"]:
                with self.subTest(user=user.username, action=action):
                    answer = self.client.post(f"/settings/webhooks/{endpoint.id}/{action}/", {"enabled": "0"})
                    self.assertEqual(answer.status_code, status)
        endpoint.refresh_from_db()
        self.assertTrue(endpoint.enabled)
        self.assertFalse(WebhookDelivery.objects.exists())

    def test_a_missing_endpoint_is_a_404(self):
        self.login(self.alice)
        self.assertEqual(self.client.post("/settings/webhooks/999999/test/").status_code, 404)

    def test_send_a_test_event_queues_one(self):
        endpoint, _ = add_endpoint(self.tenant_a, PUBLIC_URL, "", self.alice)
        self.login(self.alice)
        with self.captureOnCommitCallbacks(execute=False) as queued:
            self.assertRedirects(self.client.post(f"/settings/webhooks/{endpoint.id}/test/"), "/settings/webhooks/")
        delivery = WebhookDelivery.objects.get()
        self.assertEqual((delivery.event, delivery.payload["type"]), ("webhook.test", "webhook.test"))
        self.assertEqual(len(queued), 1)
        self.assertContains(self.client.get("/settings/webhooks/"), "webhook.test")


class WebhookEventTestCase(BaseTestCase):
    def test_ticket_events_carry_metadata_and_the_link_never_content(self):
        add_endpoint(self.tenant_a, PUBLIC_URL, "", self.alice)
        add_endpoint(self.tenant_b, "https://93.184.215.15/beta", "", self.charlie)
        ticket = create_ticket(self.agent_a, [manifest_entry("secret-subject.txt", content_type="text/plain")])
        complete_ticket(ticket)
        complete_ticket(ticket)  # an agent's retry: no second event
        deliveries = WebhookDelivery.objects.filter(endpoint__tenant=self.tenant_a).order_by("created_at")
        self.assertEqual([d.event for d in deliveries], ["ticket.created", "ticket.completed"])
        self.assertFalse(WebhookDelivery.objects.filter(endpoint__tenant=self.tenant_b).exists())
        payload = deliveries[1].payload
        self.assertEqual(set(payload), {"id", "type", "sent_for", "tenant", "ticket"})
        self.assertEqual(set(payload["ticket"]), {"id", "number", "status", "stage", "created_at", "completed_at",
                                                  "file_count", "url"})
        self.assertEqual(payload["ticket"]["url"], f"http://127.0.0.1:8000/tickets/{ticket.id}/")
        self.assertEqual(payload["ticket"]["status"], "complete")
        self.assertNotIn("secret-subject", json.dumps(payload))

    def test_a_disabled_endpoint_gets_no_ticket_events(self):
        endpoint, _ = add_endpoint(self.tenant_a, PUBLIC_URL, "", self.alice)
        endpoint.enabled = False
        endpoint.save()
        ticket_event(self.ticket, "ticket.created")
        self.assertFalse(WebhookDelivery.objects.exists())


class SignatureTestCase(BaseTestCase):
    def test_a_signature_verifies_and_a_changed_byte_does_not(self):
        header = signing.sign("whsec_x", b'{"a":1}', now=1_000)
        signing.verify("whsec_x", header, b'{"a":1}', now=1_100)
        for secret, body, now, problem in [("whsec_x", b'{"a":2}', 1_100, "does not match"),
                                           ("whsec_y", b'{"a":1}', 1_100, "does not match"),
                                           ("whsec_x", b'{"a":1}', 1_000 + 301, "outside the tolerance"),
                                           ("whsec_x", b'{"a":1}', 1_000 - 301, "outside the tolerance")]:
            with self.subTest(problem=problem, now=now), self.assertRaisesMessage(signing.SignatureError, problem):
                signing.verify(secret, header, body, now=now)

    def test_a_malformed_header_is_refused(self):
        for header in ["", "v1=abc", "t=x,v1=abc", "t=1000"]:
            with self.subTest(header=header), self.assertRaisesMessage(signing.SignatureError, "malformed"):
                signing.verify("whsec_x", header, b"{}", now=1_000)

    def test_backoff_doubles(self):
        with override_settings(DUALKEY_WEBHOOK_RETRY_SECONDS=30):
            self.assertEqual([backoff(n) for n in (1, 2, 3, 8, 20)], [30, 60, 120, 3600, 3600])


class DeliveryTestCase(BaseTestCase):
    """The task itself, eagerly, against a real receiver on loopback."""

    def setUp(self):
        super().setUp()
        self.receiver = Receiver()
        self.addCleanup(self.receiver.close)
        self.endpoint, self.secret = add_endpoint(self.tenant_a, self.receiver.url, "", self.alice)

    def test_a_delivery_is_signed_and_logged(self):
        delivery = queue_test_event(self.endpoint)
        deliver.apply(args=[str(delivery.id)])
        self.assertTrue(self.receiver.requests, [a.error for a in delivery.attempts.all()])
        headers, body = self.receiver.requests[0]
        signing.verify(self.secret, headers["Dualkey-Signature"], body, now=int(time.time()))
        self.assertEqual(headers["Dualkey-Event"], "webhook.test")
        self.assertEqual(headers["Dualkey-Delivery"], str(delivery.id))
        delivery.refresh_from_db()
        self.assertEqual(delivery.outcome, "delivered")
        attempt = delivery.attempts.get()
        self.assertEqual((attempt.number, attempt.status_code, attempt.error), (1, 204, ""))

    @override_settings(DUALKEY_WEBHOOK_MAX_ATTEMPTS=3, DUALKEY_WEBHOOK_RETRY_SECONDS=0)
    def test_a_failing_receiver_is_retried_then_given_up(self):
        self.receiver.status = 500
        delivery = queue_test_event(self.endpoint)
        deliver.apply(args=[str(delivery.id)])
        delivery.refresh_from_db()
        self.assertEqual(delivery.outcome, "failed")
        self.assertEqual([(a.number, a.status_code, a.error) for a in delivery.attempts.all()],
                         [(1, 500, "HTTP 500"), (2, 500, "HTTP 500"), (3, 500, "HTTP 500")])
        self.assertEqual(len(self.receiver.requests), 3)
        self.login(self.alice)
        page = self.client.get("/settings/webhooks/").content.decode()
        self.assertIn("HTTP 500", page)
        self.assertNotIn(self.secret, page)

    def test_an_unreachable_receiver_is_logged_by_the_errors_kind(self):
        self.receiver.close()
        with override_settings(DUALKEY_WEBHOOK_MAX_ATTEMPTS=1):
            delivery = queue_test_event(self.endpoint)
            deliver.apply(args=[str(delivery.id)])
        attempt = delivery.attempts.get()
        self.assertEqual((attempt.status_code, attempt.error), (None, "ConnectionError"))

    def test_a_url_that_turned_unsafe_is_not_sent_to(self):
        with override_settings(DUALKEY_WEBHOOK_ALLOW_LOOPBACK=False):
            delivery = queue_test_event(self.endpoint)
            deliver.apply(args=[str(delivery.id)])
        self.assertEqual(self.receiver.requests, [])
        self.assertIn("refused: the URL must use https", delivery.attempts.get().error)
