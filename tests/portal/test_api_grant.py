import time
import uuid

from django.test import Client

from portal.tickets.grants import READ_GRANT_LIFETIME
from tenants.models import Tenant
from tests.portal.base import BaseTestCase, decode_grant
from tests.support import set_active_location


class ReadGrantTestCase(BaseTestCase):
    def url(self, ticket_id):
        return f"/api/v1/tickets/{ticket_id}/grant"

    def test_it_returns_a_read_grant_for_the_ticket(self):
        self.login(self.bob)
        before = int(time.time())
        r = self.client.post(self.url(self.ticket.id))
        self.assertEqual(r.status_code, 200)
        body = r.json()
        self.assertEqual(set(body), {"grant", "gatekeeper_url", "prefix", "expires_at"})
        self.assertEqual(body["prefix"], self.ticket.prefix)
        self.assertEqual(body["gatekeeper_url"], "https://gk.alpha.example/dualkey")
        claims = decode_grant(body["grant"], self.tenant_a)
        self.assertEqual(claims["scope"], {"prefix": self.ticket.prefix, "ops": ["get", "list"]})
        self.assertEqual(claims["sub"], f"user:{self.bob.id}")
        self.assertEqual(claims["name"], "Bob")
        self.assertEqual(claims["aud"], "gk-alpha")
        self.assertEqual(claims["iss"], "http://127.0.0.1:8000")
        self.assertEqual(claims["exp"] - claims["iat"], READ_GRANT_LIFETIME)
        self.assertEqual(READ_GRANT_LIFETIME, 120)
        self.assertGreaterEqual(claims["iat"], before)

    def test_it_names_the_user_by_username_without_a_full_name(self):
        self.alice.first_name = ""
        self.alice.save()
        self.login(self.alice)
        claims = decode_grant(self.client.post(self.url(self.ticket.id)).json()["grant"], self.tenant_a)
        self.assertEqual(claims["name"], "alice")

    def test_it_requires_csrf(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.alice)
        r = client.post(self.url(self.ticket.id))
        self.assertEqual(r.status_code, 403)
        self.assertIn("CSRF", r.json()["detail"])

    def test_it_accepts_the_csrf_token(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.alice)
        client.get("/tickets/")  # sets the CSRF cookie
        token = client.cookies["csrftoken"].value
        # As the report page's fetch() sends it: JSON, or no body at all.
        r = client.post(self.url(self.ticket.id), "{}", content_type="application/json", HTTP_X_CSRFTOKEN=token)
        self.assertEqual(r.status_code, 200)
        r = client.generic("POST", self.url(self.ticket.id), b"", content_type="", HTTP_X_CSRFTOKEN=token)
        self.assertEqual(r.status_code, 200)

    def test_it_refuses_a_malformed_body_with_a_reason(self):
        # The CSRF check reads the body (it looks for csrfmiddlewaretoken), so a body
        # nested too deeply or with a lone surrogate was a 500 before the view ran.
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.alice)
        client.get("/tickets/")
        token = client.cookies["csrftoken"].value
        for body, status, reason in [
            ("[" * 100_000, 400, "nested more than 32 levels"),
            ("[" * 950 + "]" * 950, 400, "nested more than 32 levels"),
            ('{"a": "\\ud800"}', 400, "lone surrogate"),
            ("{x", 400, "JSON parse error"),
            ("a=b", 415, "Unsupported media type"),
        ]:
            content_type = "application/x-www-form-urlencoded" if status == 415 else "application/json"
            with self.subTest(body=body[:10]):
                r = client.post(self.url(self.ticket.id), body, content_type=content_type, HTTP_X_CSRFTOKEN=token)
                self.assertEqual(r.status_code, status)
                self.assertIn(reason, r.json()["detail"])

    def test_it_returns_404_for_another_tenants_ticket(self):
        self.login(self.charlie)
        r = self.client.post(self.url(self.ticket.id))
        self.assertEqual(r.status_code, 404)
        self.assertNotIn("grant", r.json())

    def test_it_returns_404_for_an_unknown_ticket(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(self.url(uuid.uuid4())).status_code, 404)

    def test_it_returns_404_for_vendor_support(self):
        self.login(self.victor)
        self.assertEqual(self.client.post(self.url(self.ticket.id)).status_code, 404)

    def test_it_returns_404_for_a_suspended_tenant(self):
        Tenant.objects.filter(pk=self.tenant_a.pk).update(status=Tenant.Status.SUSPENDED)
        self.login(self.alice)
        self.assertEqual(self.client.post(self.url(self.ticket.id)).status_code, 404)

    def test_an_agent_token_cannot_get_a_read_grant(self):
        r = self.client.post(self.url(self.ticket.id), **self.agent_headers(self.agent_a_token))
        self.assertIn(r.status_code, (401, 403))

    def test_it_requires_login(self):
        self.assertIn(self.client.post(self.url(self.ticket.id)).status_code, (401, 403))

    def test_it_answers_409_without_a_gatekeeper(self):
        set_active_location(self.tenant_a, gatekeeper_id="")
        self.login(self.alice)
        r = self.client.post(self.url(self.ticket.id))
        self.assertEqual(r.status_code, 409)
        self.assertIn("gatekeeper", r.json()["detail"])

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.get(self.url(self.ticket.id)).status_code, 405)
