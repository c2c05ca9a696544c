import uuid

from tests.portal.base import BaseTestCase


class TicketDetailTestCase(BaseTestCase):
    def url(self, ticket_id):
        return f"/api/v1/tickets/{ticket_id}"

    def test_it_returns_the_ticket_with_its_manifest(self):
        self.login(self.bob)
        r = self.client.get(self.url(self.ticket.id))
        self.assertEqual(r.status_code, 200)
        body = r.json()
        self.assertEqual(body["number"], 1)
        self.assertEqual([f["name"] for f in body["files"]], ["message.txt", "screenshot.png"])
        self.assertEqual(body["files"][1]["key"], self.ticket.prefix + "screenshot.png")
        self.assertEqual(body["files"][1]["content_type"], "image/png")

    def test_it_returns_404_for_another_tenants_ticket(self):
        self.login(self.charlie)
        r = self.client.get(self.url(self.ticket.id))
        self.assertEqual(r.status_code, 404)
        self.assertNotIn("Alpha", r.content.decode())

    def test_it_returns_404_for_an_unknown_ticket(self):
        self.login(self.alice)
        self.assertEqual(self.client.get(self.url(uuid.uuid4())).status_code, 404)

    def test_a_malformed_id_is_a_json_404(self):
        # The URL pattern refuses it before DRF: Django's HTML 404 page was the answer.
        self.login(self.alice)
        for ticket_id in ["nope", "null,null", str(self.ticket.id)[:-1] + "g", "%ff"]:
            for r in [self.client.get(self.url(ticket_id)), self.client.post(self.url(ticket_id) + "/grant"),
                      self.client.post(self.url(ticket_id) + "/complete", **self.agent_headers(self.agent_a_token))]:
                with self.subTest(ticket_id=ticket_id, path=r.request["PATH_INFO"]):
                    self.assertEqual(r.status_code, 404)
                    self.assertEqual(r["Content-Type"], "application/json")
                    self.assertEqual(r.json(), {"detail": "not found"})

    def test_it_returns_404_for_vendor_support(self):
        self.login(self.victor)
        self.assertEqual(self.client.get(self.url(self.ticket.id)).status_code, 404)

    def test_an_agent_token_cannot_read_tickets(self):
        r = self.client.get(self.url(self.ticket.id), **self.agent_headers(self.agent_a_token))
        self.assertIn(r.status_code, (401, 403))

    def test_it_requires_login(self):
        self.assertIn(self.client.get(self.url(self.ticket.id)).status_code, (401, 403))

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(self.url(self.ticket.id)).status_code, 405)
