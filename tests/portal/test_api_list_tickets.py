from portal.tickets.services import create_ticket
from tests.portal.base import BaseTestCase, manifest_entry

URL = "/api/v1/tickets"


class ListTicketsTestCase(BaseTestCase):
    def test_it_lists_own_tenants_tickets(self):
        self.login(self.bob)
        r = self.client.get(URL)
        self.assertEqual(r.status_code, 200)
        body = r.json()
        self.assertEqual(body["count"], 1)
        self.assertEqual(body["results"][0]["id"], str(self.ticket.id))
        self.assertEqual(body["results"][0]["prefix"], self.ticket.prefix)
        self.assertEqual(  # what the vendor holds: no subject, nothing the user typed
            set(body["results"][0]), {"id", "number", "status", "created_at", "completed_at", "prefix"}
        )
        self.assertNotIn(str(self.ticket_b.id), r.content.decode())

    def test_it_shows_charlie_only_tenant_bs_tickets(self):
        self.login(self.charlie)
        body = self.client.get(URL).json()
        self.assertEqual([t["id"] for t in body["results"]], [str(self.ticket_b.id)])

    def test_it_paginates_by_25(self):
        for i in range(30):
            create_ticket(self.agent_a, [manifest_entry()])
        self.login(self.alice)
        first = self.client.get(URL).json()
        self.assertEqual(first["count"], 31)
        self.assertEqual(len(first["results"]), 25)
        self.assertEqual(first["results"][0]["number"], 31)  # newest first
        second = self.client.get(first["next"]).json()
        self.assertEqual(len(second["results"]), 6)

    def test_it_filters_by_number(self):
        second = create_ticket(self.agent_a, [manifest_entry()])
        self.login(self.alice)
        body = self.client.get(URL, {"number": 2}).json()
        self.assertEqual([t["id"] for t in body["results"]], [str(second.id)])

    def test_a_number_of_another_tenant_finds_nothing(self):
        create_ticket(self.agent_a, [manifest_entry()])
        self.login(self.charlie)
        self.assertEqual(self.client.get(URL, {"number": 2}).json()["count"], 0)

    def test_it_rejects_a_bad_number(self):
        self.login(self.alice)
        # The schema says a positive integer: DRF also read "", " 1", "+1" and "1.0", and a repeated one.
        for number in ["abc", "0", "-3", "", " 1", "+1", "1.0", ["1", "1"], "9" * 1001]:
            with self.subTest(number=number):
                r = self.client.get(URL, {"number": number})
                self.assertEqual(r.status_code, 400)
                self.assertIn("number", r.json())

    def test_a_huge_number_finds_nothing(self):
        self.login(self.alice)
        for number in [2**31, 2**63, 10**30]:
            with self.subTest(number=number):
                r = self.client.get(URL, {"number": number})
                self.assertEqual(r.status_code, 200)
                self.assertEqual(r.json()["count"], 0)

    def test_it_rejects_a_malformed_page(self):
        self.login(self.alice)
        for page in ["abc", "0", "-1", "", "1.0", "last", ["1", "2"], "9" * 1001]:
            with self.subTest(page=page):
                r = self.client.get(URL, {"page": page})
                self.assertEqual(r.status_code, 400)
                self.assertIn("page", r.json())

    def test_it_answers_404_for_a_page_past_the_last(self):
        self.login(self.alice)
        for page in [9, 10**30]:
            with self.subTest(page=page):
                r = self.client.get(URL, {"page": page})
                self.assertEqual(r.status_code, 404)
                self.assertIn("detail", r.json())

    def test_it_requires_login(self):
        self.assertIn(self.client.get(URL).status_code, (401, 403))

    def test_it_returns_404_for_vendor_support(self):
        self.login(self.victor)
        self.assertEqual(self.client.get(URL).status_code, 404)

    def test_an_agent_token_cannot_list(self):
        r = self.client.get(URL, **self.agent_headers(self.agent_a_token))
        self.assertEqual(r.status_code, 403)

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.delete(URL).status_code, 405)
