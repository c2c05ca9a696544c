"""POST /api/v1/tickets/<id>/put-grant: a fresh put grant for an agent whose upload failed."""

import uuid

from portal.tickets.models import Ticket
from tests.portal.base import BaseTestCase, decode_grant
from tests.support import set_active_location


class PutGrantTestCase(BaseTestCase):
    def url(self, ticket_id):
        return f"/api/v1/tickets/{ticket_id}/put-grant"

    def post(self, ticket_id, token):
        return self.client.post(self.url(ticket_id), **self.agent_headers(token))

    def test_an_agent_gets_a_fresh_single_use_put_grant_for_its_unfinished_ticket(self):
        r = self.post(self.ticket.id, self.agent_a_token)
        self.assertEqual(r.status_code, 200)
        body = r.json()
        self.assertEqual(set(body), {"grant", "gatekeeper_url", "gatekeeper_id", "prefix", "expires_at"})
        self.assertEqual(body["gatekeeper_id"], self.tenant_a.gatekeeper_id)
        self.assertEqual(body["prefix"], self.ticket.prefix)
        self.assertEqual(body["gatekeeper_url"], "https://gk.alpha.example/dualkey")
        claims = decode_grant(body["grant"], self.tenant_a)
        self.assertEqual(claims["scope"]["prefix"], self.ticket.prefix)
        self.assertIn("put", claims["scope"]["ops"])
        self.assertNotIn("get", claims["scope"]["ops"])
        self.assertEqual(claims["sub"], f"agent:{self.agent_a.pk}")
        again = decode_grant(self.post(self.ticket.id, self.agent_a_token).json()["grant"], self.tenant_a)
        self.assertNotEqual(again["jti"], claims["jti"])  # each is single-use at the gatekeeper

    def test_a_complete_ticket_gets_no_grant(self):
        Ticket.objects.filter(pk=self.ticket.pk).update(status=Ticket.Status.COMPLETE)
        r = self.post(self.ticket.id, self.agent_a_token)
        self.assertEqual(r.status_code, 409)
        self.assertEqual(r.json(), {"detail": "This ticket is complete: its files can no longer change."})

    def test_no_gatekeeper_is_a_409_with_a_reason(self):
        set_active_location(self.tenant_a, gatekeeper_url="", gatekeeper_id="")  # where the ticket is
        r = self.post(self.ticket.id, self.agent_a_token)
        self.assertEqual(r.status_code, 409)
        self.assertIn("no gatekeeper configured", r.json()["detail"])

    def test_it_returns_404_for_another_tenants_ticket(self):
        r = self.post(self.ticket.id, self.agent_b_token)
        self.assertEqual(r.status_code, 404)
        self.assertEqual(r.json(), {"detail": "not found"})

    def test_it_returns_404_for_an_unknown_ticket(self):
        self.assertEqual(self.post(uuid.uuid4(), self.agent_a_token).status_code, 404)

    def test_it_requires_an_agent_token(self):
        self.assertEqual(self.client.post(self.url(self.ticket.id)).status_code, 401)
        self.assertEqual(self.post(self.ticket.id, "dkat_" + "x" * 43).status_code, 401)

    def test_a_person_gets_no_put_grant(self):
        self.login(self.alice)
        r = self.client.post(self.url(self.ticket.id))
        self.assertEqual((r.status_code, r["WWW-Authenticate"]), (401, "Token"))  # a session is no agent

    def test_it_rejects_a_wrong_method(self):
        self.assertEqual(self.client.get(self.url(self.ticket.id), **self.agent_headers(self.agent_a_token)).status_code,
                         405)

    def test_a_body_is_ignored(self):
        r = self.client.post(self.url(self.ticket.id), data="not json", content_type="application/json",
                             **self.agent_headers(self.agent_a_token))
        self.assertEqual(r.status_code, 200)
