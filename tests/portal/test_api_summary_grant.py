"""POST /api/v1/tickets/summary-grant: one get-only grant for a list page's tickets."""

import uuid

from django.test import Client

from portal.tickets.services import create_ticket
from tests.portal.base import BaseTestCase, decode_grant, manifest_entry
from tests.support import set_active_location

URL = "/api/v1/tickets/summary-grant"


class SummaryGrantTestCase(BaseTestCase):
    def post(self, body, **extra):
        return self.client.post(URL, body, content_type="application/json", **extra)

    def test_it_grants_gets_under_exactly_the_tickets_prefixes(self):
        second = create_ticket(self.agent_a, [manifest_entry()])
        self.login(self.bob)
        r = self.post({"tickets": [str(second.id), str(self.ticket.id)]})
        self.assertEqual(r.status_code, 200)
        body = r.json()
        self.assertEqual(set(body), {"grant", "gatekeeper_url", "expires_at", "tickets"})
        self.assertEqual(body["tickets"], [
            {"id": str(t.id), "prefix": t.prefix, "key": t.prefix + "summary.json"} for t in (second, self.ticket)])
        claims = decode_grant(body["grant"], self.tenant_a)
        self.assertEqual(claims["scope"], {"prefixes": [second.prefix, self.ticket.prefix], "ops": ["get"]})
        self.assertEqual(claims["sub"], f"user:{self.bob.id}")
        self.assertEqual(claims["exp"] - claims["iat"], 120)

    def test_it_takes_fifty_tickets_and_no_more(self):
        tickets = [create_ticket(self.agent_a, [manifest_entry()]) for _ in range(50)]
        self.login(self.bob)
        r = self.post({"tickets": [str(t.id) for t in tickets]})
        self.assertEqual(len(decode_grant(r.json()["grant"], self.tenant_a)["scope"]["prefixes"]), 50)
        r = self.post({"tickets": [str(t.id) for t in tickets] + [str(self.ticket.id)]})
        self.assertEqual(r.status_code, 400)
        self.assertIn("tickets", r.json())

    def test_another_tenants_ticket_is_a_404_for_the_whole_request(self):
        self.login(self.charlie)
        r = self.post({"tickets": [str(self.ticket_b.id), str(self.ticket.id)]})
        self.assertEqual(r.status_code, 404)
        self.assertNotIn("grant", r.json())
        ghost = self.post({"tickets": [str(self.ticket_b.id), str(uuid.uuid4())]})
        self.assertEqual((ghost.status_code, ghost.json()), (r.status_code, r.json()))

    def test_bad_input_is_a_400_with_a_reason(self):
        self.login(self.bob)
        for body in ({}, {"tickets": []}, {"tickets": ["not-a-uuid"]}, {"tickets": "x"},
                     {"tickets": [str(self.ticket.id)] * 2}, {"tickets": [str(self.ticket.id)], "more": 1}):
            with self.subTest(body=body):
                r = self.post(body)
                self.assertEqual(r.status_code, 400)
                self.assertTrue(r.json())

    def test_it_needs_a_person_of_a_tenant(self):
        body = {"tickets": [str(self.ticket.id)]}
        self.assertEqual(self.post(body).status_code, 403)  # nobody
        self.assertEqual(self.post(body, **self.agent_headers(self.agent_a_token)).status_code, 403)
        self.login(self.victor)
        self.assertEqual(self.post(body).status_code, 404)  # support belongs to no tenant

    def test_it_requires_csrf(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.bob)
        r = client.post(URL, {"tickets": [str(self.ticket.id)]}, content_type="application/json")
        self.assertEqual(r.status_code, 403)

    def test_it_is_post_only(self):
        self.login(self.bob)
        self.assertEqual(self.client.get(URL).status_code, 405)

    def test_without_a_gatekeeper_it_is_a_409(self):
        set_active_location(self.tenant_a, gatekeeper_url="")
        self.login(self.bob)
        self.assertEqual(self.post({"tickets": [str(self.ticket.id)]}).status_code, 409)
