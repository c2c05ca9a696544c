from django.db import connection
from django.test.utils import CaptureQueriesContext

import datetime as dt

from portal.tickets.models import Ticket
from portal.tickets.services import change_workflow, create_ticket
from tenants.tokens import issue_agent_token
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
        # Number, time, status, assignee, agent, file count; nothing the user typed
        # (the subject, requester and machine come from storage, in the browser).
        self.login(self.bob)
        r = self.client.get(URL)
        self.assertContains(r, f'<time data-local datetime="{self.ticket.created_at:%Y-%m-%dT%H:%M:%S.%f}+00:00">'
                               f'{self.ticket.created_at:%Y-%m-%d %H:%M} UTC</time>', html=True)
        self.assertContains(r, '<span class="status status-uploading">Uploading</span>', html=True)
        self.assertContains(r, "<td>Alpha help button</td>", html=True)
        self.assertContains(r, "<td>2</td>", html=True)
        for header in ("Subject", "Requester", "Machine", "Status", "Assignee", "Agent", "Files"):
            self.assertContains(r, f"<th>{header}</th>", html=True)

    def test_a_ticket_without_a_summary_says_so_once(self):
        self.login(self.bob)
        r = self.client.get(URL)
        self.assertContains(r, "No summary: submitted by an older agent", count=1)
        self.assertNotContains(r, "data-summary-key")

    def test_a_ticket_with_a_summary_names_its_key_size_and_hash_for_the_browser(self):
        ticket = create_ticket(self.agent_a, [manifest_entry("report.json", 30, "application/json"),
                                              manifest_entry("summary.json", 20, "application/json", b"s")])
        self.login(self.bob)
        r = self.client.get(URL)
        summary = ticket.files.get(name="summary.json")
        self.assertContains(r, f'data-summary-key="{ticket.prefix}summary.json" data-summary-size="20" '
                               f'data-summary-sha256="{summary.sha256}"')
        self.assertContains(r, 'data-summary="subject"', count=1)
        self.assertContains(r, 'data-summary-grant-url="/api/v1/tickets/summary-grant"')
        # Each row names its ticket's location: the page asks one grant per location.
        self.assertContains(r, f'data-location="{ticket.location_id}"')
        self.assertContains(r, "Searching the 2 tickets on this page")

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

    def test_it_paginates_by_50(self):
        bulk = [create_ticket(self.agent_a, [manifest_entry()]) for _ in range(55)]
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
        for _ in range(55):
            create_ticket(self.agent_a, [manifest_entry()])
        with CaptureQueriesContext(connection) as full:
            r = self.client.get(URL)
        self.assertEqual(len(r.context["page"].object_list), 50)
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

    def test_a_suspended_tenants_members_hear_so_and_see_no_tickets(self):
        Tenant.objects.filter(pk=self.tenant_a.pk).update(status=Tenant.Status.SUSPENDED)
        self.login(self.alice)
        r = self.client.get(URL)
        self.assertContains(r, "Alpha Ltd is suspended", status_code=403)
        self.assertNotContains(r, str(self.ticket.id), status_code=403)

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(URL).status_code, 405)



class TicketFilterTestCase(BaseTestCase):
    """Filters on what the vendor holds, applied by the server to every ticket."""

    def setUp(self):
        super().setUp()
        self.other_agent, _ = issue_agent_token(self.tenant_a, "Alpha kiosk")
        self.second = create_ticket(self.other_agent, [manifest_entry()])
        self.third = create_ticket(self.agent_a, [manifest_entry()])
        change_workflow(self.second, self.alice, stage="waiting", assignee=self.bob)
        Ticket.objects.filter(pk=self.third.pk).update(created_at=dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.timezone.utc))
        self.login(self.bob)

    def listed(self, **query):
        r = self.client.get(URL, query)
        self.assertEqual(r.status_code, 200)
        return [t.number for t in r.context["page"].object_list]

    def test_by_status(self):
        self.assertEqual(self.listed(stage="waiting"), [self.second.number])
        self.assertEqual(self.listed(stage="new"), [self.third.number, self.ticket.number])

    def test_by_assignee_or_unassigned(self):
        self.assertEqual(self.listed(assignee=self.bob.pk), [self.second.number])
        self.assertEqual(self.listed(assignee="none"), [self.third.number, self.ticket.number])

    def test_by_agent(self):
        self.assertEqual(self.listed(agent=self.other_agent.pk), [self.second.number])

    def test_by_date_range_in_utc_days(self):
        self.assertEqual(self.listed(created_from="2026-03-01", created_to="2026-03-01"), [self.third.number])
        self.assertEqual(self.listed(created_to="2026-03-02"), [self.third.number])

    def test_filters_combine_and_keep_to_the_tenant(self):
        self.assertEqual(self.listed(stage="waiting", agent=self.agent_a.pk), [])
        self.client.force_login(self.charlie)
        self.assertEqual(self.listed(stage="new"), [self.ticket_b.number])

    def test_the_pager_keeps_the_filters(self):
        for _ in range(50):
            create_ticket(self.agent_a, [manifest_entry()])
        r = self.client.get(URL, {"stage": "new"})
        self.assertContains(r, "stage=new&amp;page=2")

    def test_bad_filters_are_a_400_that_says_why(self):
        for query, reason in [({"stage": "lost"}, "Select a valid choice"),
                              ({"assignee": self.charlie.pk}, "Select a valid choice"),  # not a member of A
                              ({"agent": self.agent_b.pk}, "Select a valid choice"),
                              ({"created_from": "yesterday"}, "Enter a valid date"),
                              ({"created_from": "2026-03-02", "created_to": "2026-03-01"}, "start is after its end")]:
            with self.subTest(query=query):
                r = self.client.get(URL, query)
                self.assertContains(r, reason, status_code=400)
