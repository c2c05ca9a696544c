"""What a new user tripped over (issue 12's list), server side: a page instead of a
blank 405, a suspended tenant's members told so, the vendor-hosted tenant's report
page not claiming the customer's own storage, confirmations, the favicon."""

import re

from tenants.models import Tenant
from tests.portal.base import BaseTestCase


class MethodNotAllowedTestCase(BaseTestCase):
    def test_a_get_on_a_form_target_says_what_the_address_is_for(self):
        self.login(self.alice)
        r = self.client.get(f"/settings/tokens/{self.agent_a.id}/revoke/")
        self.assertEqual(r.status_code, 405)
        self.assertEqual(r["Allow"], "POST")
        self.assertContains(r, "This address is not for visiting", status_code=405)
        self.assertContains(r, "use its button", status_code=405)
        self.assertIn("default-src 'self'", r["Content-Security-Policy"])
        self.assertTrue(self.agent_a.__class__.objects.get(pk=self.agent_a.pk).is_active)  # nothing revoked

    def test_the_api_keeps_its_json_405(self):
        self.login(self.alice)
        r = self.client.get(f"/api/v1/tickets/{self.ticket.id}/grant")
        self.assertEqual(r.status_code, 405)
        self.assertEqual(r["Content-Type"], "application/json")

    def test_other_methods_name_what_the_address_takes(self):
        self.login(self.alice)
        r = self.client.put("/tickets/")
        self.assertContains(r, "It takes GET", status_code=405)


class SuspendedTenantTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        Tenant.objects.filter(pk=self.tenant_a.pk).update(status=Tenant.Status.SUSPENDED)

    def test_its_members_see_a_page_that_says_so(self):
        self.login(self.bob)
        for url in ("/", "/tickets/"):
            r = self.client.get(url)
            self.assertContains(r, "Alpha Ltd is suspended", status_code=403)
            self.assertNotContains(r, str(self.ticket.id), status_code=403)

    def test_its_tickets_stay_out_of_reach(self):
        self.login(self.bob)
        self.assertEqual(self.client.get(f"/tickets/{self.ticket.id}/").status_code, 404)

    def test_someone_without_a_tenant_still_hears_there_is_none(self):
        self.client.force_login(self.make_user("nobody", "No", self.tenant_b, "staff"))
        self.tenant_b.memberships.filter(user__username="nobody").delete()
        r = self.client.get("/")
        self.assertContains(r, "No tenant", status_code=404)

    def test_charlie_is_not_told_about_alpha(self):
        self.login(self.charlie)
        self.assertNotContains(self.client.get("/tickets/"), "suspended")


class OriginNoteTestCase(BaseTestCase):
    def test_a_vendor_hosted_tenants_report_page_does_not_claim_its_own_storage(self):
        self.assertEqual(self.tenant_a.data_location, Tenant.DataLocation.VENDOR)
        self.login(self.bob)
        r = self.client.get(f"/tickets/{self.ticket.id}/")
        note = re.search(r'data-testid="origin-note">(.*?)</p>', r.content.decode(), re.S).group(1)
        self.assertIn("the storage we host for Alpha Ltd", note)
        self.assertNotIn("own storage", note)

    def test_a_customer_hosted_tenants_page_says_its_own_storage(self):
        self.login(self.charlie)
        r = self.client.get(f"/tickets/{self.ticket_b.id}/")
        self.assertContains(r, "Beta GmbH's own storage")


class ConfirmationsTestCase(BaseTestCase):
    def test_revoking_a_token_and_switching_the_key_ask_first(self):
        self.login(self.alice)
        html = self.client.get("/settings/").content.decode()
        self.assertIn('data-confirm="Revoke the agent token Alpha help button?', html)

    def test_changing_a_tenants_status_asks_first(self):
        self.login(self.victor)
        html = self.client.get(f"/support/tenants/{self.tenant_a.slug}/").content.decode()
        self.assertIn('data-confirm="Change the status of Alpha Ltd?', html)

    def test_every_page_loads_the_confirmation_script_and_the_favicon(self):
        self.login(self.alice)
        html = self.client.get("/settings/members/").content.decode()
        self.assertIn('<script type="module" src="/static/js/lib/page.js"></script>', html)
        self.assertIn('<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">', html)
