from tenants.models import Tenant, TenantSigningKey
from tests.portal.base import BaseTestCase


class SupportHomeTestCase(BaseTestCase):
    def test_it_lists_all_tenants_for_vendor_support(self):
        self.login(self.victor)
        r = self.client.get("/support/")
        self.assertContains(r, "alpha")
        self.assertContains(r, "beta")

    def test_it_shows_no_tickets(self):
        # Not even what the vendor does hold about them (ids, manifests): vendor support sees tenants only.
        self.login(self.victor)
        entry = self.ticket.files.first()
        for url in ["/support/", "/support/tenants/alpha/"]:
            page = self.client.get(url)
            for held in [str(self.ticket.id), self.ticket.id.hex, entry.name, entry.sha256]:
                with self.subTest(url=url, held=held):
                    self.assertNotContains(page, held)

    def test_it_returns_404_for_tenant_admins(self):
        self.login(self.alice)
        self.assertEqual(self.client.get("/support/").status_code, 404)

    def test_it_returns_404_for_staff_users_who_belong_to_a_tenant(self):
        self.alice.is_staff = True
        self.alice.save()
        self.login(self.alice)
        self.assertEqual(self.client.get("/support/").status_code, 404)

    def test_it_requires_login(self):
        self.assertRedirects(self.client.get("/support/"), "/accounts/login/?next=/support/")

    def test_it_rejects_a_wrong_method(self):
        self.login(self.victor)
        self.assertEqual(self.client.post("/support/").status_code, 405)


class CreateTenantTestCase(BaseTestCase):
    URL = "/support/tenants/new/"

    def test_it_shows_the_form(self):
        self.login(self.victor)
        self.assertContains(self.client.get(self.URL), "Create tenant")

    def test_it_creates_a_tenant_with_a_signing_key(self):
        self.login(self.victor)
        r = self.client.post(self.URL, {"slug": "initech", "name": "Initech", "data_location": "vendor",
                                        "region": "us-east-1"})
        self.assertRedirects(r, "/support/tenants/initech/")
        tenant = Tenant.objects.get(slug="initech")
        self.assertEqual(tenant.status, Tenant.Status.ONBOARDING)
        key = tenant.signing_keys.get()
        self.assertEqual(key.status, TenantSigningKey.Status.ACTIVE)

    def test_it_refuses_control_characters_in_the_name(self):
        self.login(self.victor)
        r = self.client.post(self.URL, {"slug": "ctl", "name": "Bad\x07Name", "data_location": "vendor",
                                        "region": "us-east-1"})
        self.assertEqual(r.status_code, 400)
        self.assertTrue(r.context["form"].errors["name"])
        self.assertFalse(Tenant.objects.filter(slug="ctl").exists())

    def test_it_rejects_a_taken_or_bad_slug(self):
        self.login(self.victor)
        for slug in ["alpha", "Bad Slug", "", "-x", "a" * 41]:
            with self.subTest(slug=slug):
                r = self.client.post(self.URL, {"slug": slug, "name": "X", "data_location": "vendor"})
                self.assertEqual(r.status_code, 400)
                self.assertTrue(r.context["form"].errors["slug"])

    def test_it_returns_404_for_tenant_admins(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(self.URL, {"slug": "evil", "name": "Evil"}).status_code, 404)
        self.assertFalse(Tenant.objects.filter(slug="evil").exists())

    def test_it_rejects_a_wrong_method(self):
        self.login(self.victor)
        self.assertEqual(self.client.delete(self.URL).status_code, 405)


class TenantStatusTestCase(BaseTestCase):
    URL = "/support/tenants/alpha/status/"

    def test_it_suspends_a_tenant(self):
        self.login(self.victor)
        self.assertRedirects(self.client.post(self.URL, {"status": "suspended"}), "/support/tenants/alpha/")
        self.tenant_a.refresh_from_db()
        self.assertEqual(self.tenant_a.status, Tenant.Status.SUSPENDED)

    def test_it_rejects_an_unknown_status(self):
        self.login(self.victor)
        self.assertEqual(self.client.post(self.URL, {"status": "deleted"}).status_code, 400)

    def test_it_returns_404_for_tenant_admins(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(self.URL, {"status": "suspended"}).status_code, 404)

    def test_it_rejects_a_wrong_method(self):
        self.login(self.victor)
        self.assertEqual(self.client.get(self.URL).status_code, 405)


class SupportTenantPageTestCase(BaseTestCase):
    def test_it_shows_onboarding_details(self):
        self.login(self.victor)
        r = self.client.get("/support/tenants/alpha/")
        self.assertContains(r, "gk-alpha")
        self.assertContains(r, "alice")
        self.assertContains(r, "[vendor_keys]")

    def test_it_returns_404_for_an_unknown_tenant(self):
        self.login(self.victor)
        self.assertEqual(self.client.get("/support/tenants/nope/").status_code, 404)

    def test_it_returns_404_for_tenant_admins(self):
        self.login(self.charlie)
        self.assertEqual(self.client.get("/support/tenants/alpha/").status_code, 404)
