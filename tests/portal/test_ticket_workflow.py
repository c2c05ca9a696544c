"""Status and assignee: changed from the list and the report page, each change
recorded (who, when, from, to) and shown as the ticket's history."""

from django.test import Client

from portal.tickets.models import Ticket, TicketEvent
from tests.portal.base import BaseTestCase


class WorkflowTestCase(BaseTestCase):
    def url(self, ticket=None):
        return f"/tickets/{(ticket or self.ticket).id}/workflow/"

    def change(self, stage="open", assignee="", next_url="", ticket=None):
        return self.client.post(self.url(ticket), {"stage": stage, "assignee": assignee, "next": next_url})

    def test_bob_opens_a_ticket_and_takes_it(self):
        self.login(self.bob)
        r = self.change("open", self.bob.pk)
        self.assertRedirects(r, f"/tickets/{self.ticket.id}/", fetch_redirect_response=False)
        self.ticket.refresh_from_db()
        self.assertEqual((self.ticket.stage, self.ticket.assignee), ("open", self.bob))
        events = list(self.ticket.events.values_list("kind", "old", "new", "actor_name"))
        self.assertEqual(events, [("stage", "new", "open", "Bob"), ("assignee", "unassigned", "Bob", "Bob")])
        self.assertTrue(all(e.at and e.actor == self.bob for e in self.ticket.events.all()))

    def test_the_report_page_shows_the_history_and_the_form(self):
        self.login(self.bob)
        self.change("waiting", self.alice.pk)
        r = self.client.get(f"/tickets/{self.ticket.id}/")
        self.assertContains(r, 'data-testid="history"')
        self.assertContains(r, "Bob")
        self.assertContains(r, "New → Waiting")
        self.assertContains(r, "unassigned → Alice")
        self.assertContains(r, '<option value="waiting" selected>Waiting</option>', html=True)

    def test_saving_without_a_change_records_nothing(self):
        self.login(self.bob)
        self.change("new", "")
        self.assertFalse(TicketEvent.objects.exists())

    def test_from_the_list_it_returns_to_the_list_with_its_filters(self):
        self.login(self.alice)
        r = self.change("resolved", "", next_url="/tickets/?stage=new")
        self.assertRedirects(r, "/tickets/?stage=new", fetch_redirect_response=False)

    def test_it_never_redirects_off_the_portal(self):
        self.login(self.alice)
        for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
            r = self.change("open", "", next_url=target)
            self.assertEqual(r["Location"], f"/tickets/{self.ticket.id}/", target)

    def test_the_assignee_must_be_a_member_of_the_tenant(self):
        self.login(self.alice)
        r = self.change("open", self.charlie.pk)
        self.assertContains(r, "Assignee", status_code=400)
        self.assertContains(r, "Select a valid choice", status_code=400)
        self.ticket.refresh_from_db()
        self.assertEqual((self.ticket.stage, self.ticket.assignee), ("new", None))

    def test_bad_input_is_a_400_with_a_reason(self):
        self.login(self.alice)
        for stage in ("lost", ""):
            r = self.change(stage)
            self.assertContains(r, "was not changed", status_code=400)
        self.assertEqual(Ticket.objects.get(pk=self.ticket.pk).stage, "new")

    def test_charlie_gets_404_for_tenant_as_ticket(self):
        self.login(self.charlie)
        self.assertEqual(self.change("closed").status_code, 404)
        self.assertEqual(Ticket.objects.get(pk=self.ticket.pk).stage, "new")

    def test_a_get_goes_to_the_ticket_not_to_a_blank_405(self):
        self.login(self.bob)
        self.assertRedirects(self.client.get(self.url()), f"/tickets/{self.ticket.id}/")

    def test_other_methods_are_405(self):
        self.login(self.bob)
        self.assertEqual(self.client.put(self.url()).status_code, 405)

    def test_it_needs_login_and_csrf(self):
        r = self.change("open")
        self.assertEqual(r.status_code, 302)
        self.assertTrue(r["Location"].startswith("/accounts/login/"))
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.bob)
        self.assertEqual(client.post(self.url(), {"stage": "open"}).status_code, 403)
