from tenants.models import Tenant
from tests.portal.base import BaseTestCase

URL = "/settings/storage/"


class UpdateStorageTestCase(BaseTestCase):
    def form(self, **changes):
        return {
            "data_location": "customer", "region": "us-west-2", "bucket": "alpha-own-bucket",
            "gatekeeper_url": "https://gatekeeper.alpha.example", "gatekeeper_id": "gk-alpha-2",
            "storage_origin": "https://alpha-own-bucket.s3.us-west-2.amazonaws.com", **changes,
        }

    def test_it_saves_the_settings(self):
        self.login(self.alice)
        r = self.client.post(URL, self.form())
        self.assertRedirects(r, "/settings/?saved=verify#onboarding", fetch_redirect_response=False)
        self.tenant_a.refresh_from_db()
        self.assertEqual(self.tenant_a.data_location, "customer")
        self.assertEqual(self.tenant_a.gatekeeper_url, "https://gatekeeper.alpha.example")
        self.assertEqual(self.tenant_a.gatekeeper_id, "gk-alpha-2")

    def test_it_changes_only_the_admins_own_tenant(self):
        self.login(self.charlie)
        self.client.post(URL, self.form())
        self.tenant_a.refresh_from_db()
        self.assertEqual(self.tenant_a.gatekeeper_id, "gk-alpha")
        self.assertEqual(Tenant.objects.get(slug="beta").gatekeeper_id, "gk-alpha-2")

    def test_it_allows_plain_http_for_loopback_only(self):
        self.login(self.alice)
        r = self.client.post(URL, self.form(gatekeeper_url="http://127.0.0.1:9101",
                                            storage_origin="http://localhost:9100"))
        self.assertEqual(r.status_code, 302)
        r = self.client.post(URL, self.form(gatekeeper_url="http://gk.alpha.example"))
        self.assertContains(r, "Use https", status_code=400)

    def test_it_rejects_origins_that_could_break_the_csp_header(self):
        self.login(self.alice)
        bad = [
            "https://a.example; script-src *", "https://a.example/path", "https://a.example/",
            "https://user@a.example", "https://a.example?x=1", "ftp://a.example", "https://",
            "https://a.example 'unsafe-inline'",
        ]
        for origin in bad:
            with self.subTest(origin=origin):
                r = self.client.post(URL, self.form(storage_origin=origin))
                self.assertEqual(r.status_code, 400)
        self.tenant_a.refresh_from_db()
        self.assertEqual(self.tenant_a.storage_origin, "https://alpha-reports.s3.eu-west-1.amazonaws.com")

    def test_it_rejects_a_malformed_host_or_port_with_a_reason(self):
        # urlsplit raises ValueError on "[::1" (and on a bad port once asked): it was a 500.
        self.login(self.alice)
        bad = ["https://[::1", "https://[zz]", "http://[::1", "https://a.example:99999999",
               "https://a.example:abc", "https://a.example:0", "https://a.example:"]
        for value in bad:
            for field in ["gatekeeper_url", "storage_origin"]:
                with self.subTest(field=field, value=value):
                    r = self.client.post(URL, self.form(**{field: value}))
                    self.assertEqual(r.status_code, 400)
                    self.assertTrue(r.context["storage_form"].errors[field])
        self.tenant_a.refresh_from_db()
        self.assertEqual(self.tenant_a.gatekeeper_url, "https://gk.alpha.example/dualkey")

    def test_it_takes_a_port_and_an_ipv6_loopback(self):
        self.login(self.alice)
        r = self.client.post(URL, self.form(gatekeeper_url="http://[::1]:9101", storage_origin="https://s3.example:8443"))
        self.assertEqual(r.status_code, 302)
        self.tenant_a.refresh_from_db()
        self.assertEqual(self.tenant_a.gatekeeper_origin, "http://[::1]:9101")

    def test_it_rejects_bad_values_with_a_reason(self):
        self.login(self.alice)
        cases = {
            "data_location": "moon", "region": "Mars-1", "bucket": "No_Such!",
            "gatekeeper_id": "gk alpha", "gatekeeper_url": "https://gk.example/a b",
        }
        for field, value in cases.items():
            with self.subTest(field=field):
                r = self.client.post(URL, self.form(**{field: value}))
                self.assertEqual(r.status_code, 400)
                self.assertTrue(r.context["storage_form"].errors[field])

    def test_it_returns_403_for_staff(self):
        self.login(self.bob)
        self.assertEqual(self.client.post(URL, self.form()).status_code, 403)
        self.tenant_a.refresh_from_db()
        self.assertEqual(self.tenant_a.gatekeeper_id, "gk-alpha")

    def test_it_returns_404_for_vendor_support(self):
        self.login(self.victor)
        self.assertEqual(self.client.post(URL, self.form()).status_code, 404)

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.get(URL).status_code, 405)


class GatekeeperNeedsItsOriginsTestCase(BaseTestCase):
    def form(self, **changes):
        return UpdateStorageTestCase.form(self, **changes)

    def test_a_gatekeeper_without_a_storage_origin_is_refused_with_a_reason(self):
        self.login(self.alice)
        r = self.client.post(URL, self.form(storage_origin=""))
        self.assertContains(r, "Required with a gatekeeper URL: the origin of its presigned URLs", status_code=400)
        self.tenant_a.refresh_from_db()
        self.assertEqual(self.tenant_a.storage_origin, "https://alpha-reports.s3.eu-west-1.amazonaws.com")

    def test_a_gatekeeper_without_an_id_is_refused_with_a_reason(self):
        self.login(self.alice)
        r = self.client.post(URL, self.form(gatekeeper_id=""))
        self.assertContains(r, "Required with a gatekeeper URL: its gatekeeper_id", status_code=400)

    def test_no_gatekeeper_needs_neither(self):
        self.login(self.alice)
        r = self.client.post(URL, self.form(gatekeeper_url="", gatekeeper_id="", storage_origin=""))
        self.assertEqual(r.status_code, 302)
