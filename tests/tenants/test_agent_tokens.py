import json

from tenants.models import AgentToken
from tenants.tokens import hash_token
from tests.portal.base import BaseTestCase, manifest_entry


class CreateTokenTestCase(BaseTestCase):
    URL = "/settings/tokens/"

    def test_it_creates_a_token_and_shows_it_once(self):
        self.login(self.alice)
        r = self.client.post(self.URL, {"name": "Front desk"})
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r["Cache-Control"], "no-store")
        plaintext = r.context["new_token"]["plaintext"]
        self.assertTrue(plaintext.startswith("dkat_"))
        self.assertContains(r, plaintext)
        token = AgentToken.objects.get(name="Front desk")
        self.assertEqual(token.tenant, self.tenant_a)
        self.assertEqual(token.token_hash, hash_token(plaintext))
        self.assertNotIn(plaintext, json.dumps(list(AgentToken.objects.values_list("prefix", "token_hash"))))
        self.assertNotContains(self.client.get("/settings/"), plaintext)

    def test_the_new_token_works_at_the_api(self):
        self.login(self.alice)
        plaintext = self.client.post(self.URL, {"name": "Front desk"}).context["new_token"]["plaintext"]
        r = self.client.post(
            "/api/v1/tickets", json.dumps({"files": [manifest_entry()]}),
            content_type="application/json", HTTP_AUTHORIZATION=f"Token {plaintext}",
        )
        self.assertEqual(r.status_code, 201)

    def test_it_requires_a_name(self):
        self.login(self.alice)
        r = self.client.post(self.URL, {"name": ""})
        self.assertEqual(r.status_code, 400)
        self.assertTrue(r.context["token_form"].errors["name"])

    def test_it_refuses_control_characters_in_the_name(self):
        # The name travels into grants and the customer's audit log.
        self.login(self.alice)
        for name in ["evil\x1b[2J", "two\nlines", "c1\x85inside"]:
            with self.subTest(name=name):
                r = self.client.post(self.URL, {"name": name})
                self.assertEqual(r.status_code, 400)
                self.assertTrue(r.context["token_form"].errors["name"])

    def test_it_returns_403_for_staff(self):
        self.login(self.bob)
        self.assertEqual(self.client.post(self.URL, {"name": "x"}).status_code, 403)
        self.assertFalse(AgentToken.objects.filter(name="x").exists())

    def test_it_returns_404_for_vendor_support(self):
        self.login(self.victor)
        self.assertEqual(self.client.post(self.URL, {"name": "x"}).status_code, 404)

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.get(self.URL).status_code, 405)


class RevokeTokenTestCase(BaseTestCase):
    def url(self, token):
        return f"/settings/tokens/{token.id}/revoke/"

    def test_it_revokes_the_token(self):
        self.login(self.alice)
        self.assertRedirects(self.client.post(self.url(self.agent_a)), "/settings/")
        self.agent_a.refresh_from_db()
        self.assertIsNotNone(self.agent_a.revoked_at)
        r = self.client.post("/api/v1/tickets", "{}", content_type="application/json",
                             **self.agent_headers(self.agent_a_token))
        self.assertEqual(r.status_code, 401)

    def test_it_returns_404_for_another_tenants_token(self):
        self.login(self.charlie)
        self.assertEqual(self.client.post(self.url(self.agent_a)).status_code, 404)
        self.agent_a.refresh_from_db()
        self.assertIsNone(self.agent_a.revoked_at)

    def test_it_returns_404_for_an_unknown_token(self):
        self.login(self.alice)
        self.assertEqual(self.client.post("/settings/tokens/999999/revoke/").status_code, 404)

    def test_it_returns_403_for_staff(self):
        self.login(self.bob)
        self.assertEqual(self.client.post(self.url(self.agent_a)).status_code, 403)

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.get(self.url(self.agent_a)).status_code, 405)
