from portal.tickets.services import create_ticket
from tenants.models import Tenant
from tests.portal.base import BaseTestCase, manifest_entry

URL = "/tickets/"


class TicketListTestCase(BaseTestCase):
    def test_it_lists_own_tenants_tickets(self):
        self.login(self.bob)
        r = self.client.get(URL)
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, "Alpha printer on fire")
        self.assertContains(r, f"/tickets/{self.ticket.id}/")
        self.assertNotContains(r, "Beta laptop slow")

    def test_it_shows_charlie_only_his_tenants_tickets(self):
        self.login(self.charlie)
        r = self.client.get(URL)
        self.assertContains(r, "Beta laptop slow")
        self.assertNotContains(r, "Alpha printer on fire")

    def test_it_paginates_by_25(self):
        for i in range(30):
            create_ticket(self.agent_a, f"bulk ticket {i:02d}", [manifest_entry()])
        self.login(self.alice)
        first = self.client.get(URL)
        self.assertContains(first, "bulk ticket 29")
        self.assertNotContains(first, "Alpha printer on fire")
        self.assertContains(first, "Page 1 of 2")
        second = self.client.get(URL, {"page": 2})
        self.assertContains(second, "Alpha printer on fire")

    def test_it_finds_a_ticket_by_number(self):
        self.login(self.alice)
        r = self.client.get(URL, {"number": 1})
        self.assertRedirects(r, f"/tickets/{self.ticket.id}/")

    def test_it_does_not_find_another_tenants_number(self):
        create_ticket(self.agent_b, "Beta second", [manifest_entry()])
        self.login(self.alice)
        r = self.client.get(URL, {"number": 2})
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, "No ticket #2")
        self.assertNotContains(r, "Beta second")

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
