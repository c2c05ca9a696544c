from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.tickets.services import create_ticket
from tenants.models import Tenant
from tests.portal.base import BaseTestCase, manifest_entry

URL = "/tickets/"


class TicketListTestCase(BaseTestCase):
    def link(self, ticket):
        return f'<a href="/tickets/{ticket.id}/">#{ticket.number}</a>'

    def test_it_lists_own_tenants_tickets(self):
        self.login(self.bob)
        r = self.client.get(URL)
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, self.link(self.ticket), html=True)
        self.assertNotContains(r, str(self.ticket_b.id))

    def test_it_shows_what_the_vendor_holds_of_each_ticket(self):
        # Number, time, status, agent, file count: nothing the user typed (no subject).
        self.login(self.bob)
        r = self.client.get(URL)
        row = f"""<tr>
          <td>{self.link(self.ticket)}</td>
          <td>{self.ticket.created_at:%Y-%m-%d %H:%M} UTC</td>
          <td><span class="status status-uploading">Uploading</span></td>
          <td>Alpha help button</td>
          <td>2</td>
        </tr>"""
        self.assertContains(r, row, html=True)
        self.assertContains(r, "<th>Agent</th>", html=True)
        self.assertNotContains(r, "Subject")

    def test_a_ticket_whose_agent_token_is_gone_still_lists(self):
        self.agent_a.delete()  # the ticket keeps its row, without an agent
        self.login(self.bob)
        r = self.client.get(URL)
        self.assertContains(r, self.link(self.ticket), html=True)
        self.assertContains(r, "<td>—</td>", html=True)

    def test_it_shows_charlie_only_his_tenants_tickets(self):
        self.login(self.charlie)
        r = self.client.get(URL)
        self.assertContains(r, self.link(self.ticket_b), html=True)
        self.assertNotContains(r, str(self.ticket.id))

    def test_it_paginates_by_25(self):
        bulk = [create_ticket(self.agent_a, [manifest_entry()]) for _ in range(30)]
        self.login(self.alice)
        first = self.client.get(URL)
        self.assertContains(first, self.link(bulk[-1]), html=True)
        self.assertNotContains(first, str(self.ticket.id))
        self.assertContains(first, "Page 1 of 2")
        second = self.client.get(URL, {"page": 2})
        self.assertContains(second, self.link(self.ticket), html=True)

    def test_a_page_takes_the_same_queries_however_many_tickets_it_shows(self):
        self.login(self.alice)
        with CaptureQueriesContext(connection) as one:
            self.client.get(URL)
        for _ in range(30):
            create_ticket(self.agent_a, [manifest_entry()])
        with CaptureQueriesContext(connection) as full:
            r = self.client.get(URL)
        self.assertEqual(len(r.context["page"].object_list), 25)
        self.assertEqual(len(full), len(one))  # agents and file counts come with the tickets

    def test_it_finds_a_ticket_by_number(self):
        self.login(self.alice)
        r = self.client.get(URL, {"number": 1})
        self.assertRedirects(r, f"/tickets/{self.ticket.id}/")

    def test_it_does_not_find_another_tenants_number(self):
        second = create_ticket(self.agent_b, [manifest_entry()])
        self.login(self.alice)
        r = self.client.get(URL, {"number": 2})
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, "No ticket #2")
        self.assertNotContains(r, str(second.id))

    def test_it_rejects_a_bad_number(self):
        self.login(self.alice)
        r = self.client.get(URL, {"number": "abc"})
        self.assertEqual(r.status_code, 400)
        self.assertContains(r, "Enter a whole number", status_code=400)

    def test_it_requires_login(self):
        r = self.client.get(URL)
        self.assertRedirects(r, f"/accounts/login/?next={URL}")

    def test_it_returns_404_for_vendor_support(self):
        self.login(self.victor)
        self.assertEqual(self.client.get(URL).status_code, 404)

    def test_it_returns_404_for_a_suspended_tenant(self):
        Tenant.objects.filter(pk=self.tenant_a.pk).update(status=Tenant.Status.SUSPENDED)
        self.login(self.alice)
        self.assertEqual(self.client.get(URL).status_code, 404)

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(URL).status_code, 405)
