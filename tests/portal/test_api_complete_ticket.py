import uuid

from portal.tickets.models import Ticket
from tests.portal.base import BaseTestCase


class CompleteTicketTestCase(BaseTestCase):
    def url(self, ticket_id):
        return f"/api/v1/tickets/{ticket_id}/complete"

    def post(self, ticket_id, token):
        return self.client.post(self.url(ticket_id), **self.agent_headers(token))

    def test_it_completes_the_ticket(self):
        r = self.post(self.ticket.id, self.agent_a_token)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json(), {"id": str(self.ticket.id), "status": "complete"})
        self.ticket.refresh_from_db()
        self.assertEqual(self.ticket.status, Ticket.Status.COMPLETE)
        self.assertIsNotNone(self.ticket.completed_at)

    def test_it_is_idempotent(self):
        self.post(self.ticket.id, self.agent_a_token)
        self.ticket.refresh_from_db()
        first = self.ticket.completed_at
        r = self.post(self.ticket.id, self.agent_a_token)
        self.assertEqual(r.status_code, 200)
        self.ticket.refresh_from_db()
        self.assertEqual(self.ticket.completed_at, first)

    def test_any_agent_of_the_same_tenant_may_complete(self):
        from tenants.tokens import issue_agent_token

        _, other_token = issue_agent_token(self.tenant_a, "second button")
        self.assertEqual(self.post(self.ticket.id, other_token).status_code, 200)

    def test_it_returns_404_for_another_tenants_ticket(self):
        r = self.post(self.ticket.id, self.agent_b_token)
        self.assertEqual(r.status_code, 404)
        self.assertEqual(r.json(), {"detail": "not found"})
        self.ticket.refresh_from_db()
        self.assertEqual(self.ticket.status, Ticket.Status.UPLOADING)

    def test_it_returns_404_for_an_unknown_ticket(self):
        self.assertEqual(self.post(uuid.uuid4(), self.agent_a_token).status_code, 404)

    def test_it_returns_404_for_a_malformed_id(self):
        r = self.client.post("/api/v1/tickets/not-a-uuid/complete", **self.agent_headers(self.agent_a_token))
        self.assertEqual(r.status_code, 404)

    def test_it_requires_an_agent_token(self):
        self.assertEqual(self.client.post(self.url(self.ticket.id)).status_code, 401)

    def test_a_logged_in_admin_cannot_complete(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(self.url(self.ticket.id)).status_code, 401)

    def test_it_rejects_a_wrong_method(self):
        r = self.client.get(self.url(self.ticket.id), **self.agent_headers(self.agent_a_token))
        self.assertEqual(r.status_code, 405)
