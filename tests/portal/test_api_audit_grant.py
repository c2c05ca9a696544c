import time

import jwt

from django.test import Client

from portal.tickets.grants import AUDIT_GRANT_LIFETIME
from tenants.models import Tenant
from tenants.signing import rotate_signing_key
from tests.portal.base import BaseTestCase, decode_grant

URL = "/api/v1/audit/grant"


class AuditGrantTestCase(BaseTestCase):
    def test_it_returns_an_audit_grant_to_the_tenant_admin(self):
        self.login(self.alice)
        before = int(time.time())
        r = self.client.post(URL)
        self.assertEqual(r.status_code, 200)
        body = r.json()
        self.assertEqual(set(body), {"grant", "gatekeeper_url", "expires_at"})
        self.assertEqual(body["gatekeeper_url"], "https://gk.alpha.example/dualkey")
        claims = decode_grant(body["grant"], self.tenant_a)  # verifies with A's public key
        self.assertEqual(claims["scope"], {"prefix": "tickets/", "ops": ["audit"]})
        self.assertEqual(claims["sub"], f"user:{self.alice.id}")
        self.assertEqual(claims["name"], "Alice")
        self.assertEqual(claims["aud"], "gk-alpha")
        self.assertEqual(claims["iss"], "http://127.0.0.1:8000")
        self.assertEqual(claims["exp"] - claims["iat"], AUDIT_GRANT_LIFETIME)
        self.assertEqual(AUDIT_GRANT_LIFETIME, 120)
        self.assertGreaterEqual(claims["iat"], before)
        self.assertTrue(claims["jti"])
        self.assertTrue(body["expires_at"].endswith("Z"))

    def test_it_signs_with_the_active_key(self):
        new_key = rotate_signing_key(self.tenant_a)
        self.login(self.alice)
        grant = self.client.post(URL).json()["grant"]
        self.assertEqual(jwt.get_unverified_header(grant), {"alg": "EdDSA", "kid": new_key.kid, "typ": "JWT"})
        decode_grant(grant, self.tenant_a)

    def test_charlie_gets_a_grant_for_his_own_gatekeeper(self):
        self.login(self.charlie)
        body = self.client.post(URL).json()
        self.assertEqual(body["gatekeeper_url"], "https://gk.beta.example")
        claims = decode_grant(body["grant"], self.tenant_b)
        self.assertEqual(claims["aud"], "gk-beta")
        self.assertEqual(claims["sub"], f"user:{self.charlie.id}")

    def test_it_names_the_user_by_username_without_a_full_name(self):
        self.alice.first_name = ""
        self.alice.save()
        self.login(self.alice)
        claims = decode_grant(self.client.post(URL).json()["grant"], self.tenant_a)
        self.assertEqual(claims["name"], "alice")

    def test_it_returns_403_for_staff(self):
        self.login(self.bob)
        r = self.client.post(URL)
        self.assertEqual(r.status_code, 403)
        self.assertNotIn("grant", r.json())

    def test_it_returns_404_for_vendor_support(self):
        self.login(self.victor)
        r = self.client.post(URL)
        self.assertEqual(r.status_code, 404)
        self.assertEqual(r.json(), {"detail": "not found"})

    def test_it_returns_404_for_a_suspended_tenant(self):
        Tenant.objects.filter(pk=self.tenant_a.pk).update(status=Tenant.Status.SUSPENDED)
        self.login(self.alice)
        self.assertEqual(self.client.post(URL).status_code, 404)

    def test_it_requires_login(self):
        r = self.client.post(URL)
        self.assertIn(r.status_code, (401, 403))
        self.assertNotIn("grant", r.json())

    def test_an_agent_token_cannot_get_an_audit_grant(self):
        r = self.client.post(URL, **self.agent_headers(self.agent_a_token))
        self.assertIn(r.status_code, (401, 403))
        self.assertNotIn("grant", r.json())

    def test_it_requires_csrf(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.alice)
        r = client.post(URL)
        self.assertEqual(r.status_code, 403)
        self.assertIn("CSRF", r.json()["detail"])

    def test_it_accepts_the_csrf_token(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.alice)
        client.get("/audit/")  # sets the CSRF cookie
        token = client.cookies["csrftoken"].value
        # As the audit page's fetch() sends it: no body at all, or JSON.
        r = client.generic("POST", URL, b"", content_type="", HTTP_X_CSRFTOKEN=token)
        self.assertEqual(r.status_code, 200)
        r = client.post(URL, "{}", content_type="application/json", HTTP_X_CSRFTOKEN=token)
        self.assertEqual(r.status_code, 200)

    def test_it_refuses_json_nested_too_deeply(self):
        # Read by the CSRF check before the view: a RecursionError, so a 500, before.
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.alice)
        client.get("/audit/")
        token = client.cookies["csrftoken"].value
        r = client.post(URL, "[" * 100_000, content_type="application/json", HTTP_X_CSRFTOKEN=token)
        self.assertEqual(r.status_code, 400)
        self.assertIn("nested more than 32 levels", r.json()["detail"])

    def test_it_answers_409_without_a_gatekeeper(self):
        Tenant.objects.filter(pk=self.tenant_a.pk).update(gatekeeper_id="")
        self.login(self.alice)
        r = self.client.post(URL)
        self.assertEqual(r.status_code, 409)
        self.assertIn("gatekeeper", r.json()["detail"])
        self.assertNotIn("grant", r.json())

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.get(URL).status_code, 405)
        self.assertEqual(self.client.put(URL).status_code, 405)

    def test_it_is_in_the_openapi_schema(self):
        schema = self.client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
        operation = schema["paths"]["/api/v1/audit/grant"]["post"]
        self.assertEqual(operation["operationId"], "audit_grant")
        self.assertEqual(set(operation["responses"]), {"200", "400", "403", "404", "409", "413", "415"})
        self.assertEqual(operation["security"], [{"cookieAuth": []}])
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        answer = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        self.assertEqual(set(answer["properties"]), {"grant", "gatekeeper_url", "expires_at"})
