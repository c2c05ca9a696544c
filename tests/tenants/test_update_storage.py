from django.utils import timezone

from portal.tickets.grants import read_grant
from portal.tickets.models import Ticket
from tenants.locations import active_location, record_health
from tenants.models import OnboardingStep, SecurityEvent, Tenant
from tests.tenants.test_locations import audience, health_of
from tests.portal.base import BaseTestCase

URL = "/settings/storage/"


class UpdateStorageTestCase(BaseTestCase):
    """Onboarding: no ticket yet and a gatekeeper never connected, so the form edits
    the active (placeholder) location in place. With tickets: InUseLocationTestCase."""

    def setUp(self):
        super().setUp()
        Ticket.objects.filter(tenant=self.tenant_a).delete()

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
        Ticket.objects.filter(tenant__slug="beta").delete()  # beta onboarding too
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
        self.assertEqual(active_location(self.tenant_a).gatekeeper_url, "http://[::1]:9101")  # the placeholder

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
    def setUp(self):
        super().setUp()
        Ticket.objects.filter(tenant=self.tenant_a).delete()

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


class InUseLocationTestCase(BaseTestCase):
    """Once the active location holds tickets, or its gatekeeper is connected, the
    storage form cannot move it to another gatekeeper: old tickets' grants would
    follow, with no health check and no cut-over event. That is add location + cut over."""

    def form(self, **changes):
        t = self.tenant_a
        return {"data_location": t.data_location, "region": t.region, "bucket": t.bucket,
                "gatekeeper_url": t.gatekeeper_url, "gatekeeper_id": t.gatekeeper_id,
                "storage_origin": t.storage_origin, **changes}

    def assert_refused(self, **changes):
        before = active_location(self.tenant_a)
        self.login(self.alice)
        r = self.client.post(URL, self.form(**changes))
        self.assertContains(r, "add it under Storage locations, connect it and cut over", status_code=400)
        after = active_location(self.tenant_a)
        self.assertEqual((after.pk, after.gatekeeper_url, after.gatekeeper_id, after.storage_origin),
                         (before.pk, before.gatekeeper_url, before.gatekeeper_id, before.storage_origin))
        fresh = Tenant.objects.get(pk=self.tenant_a.pk)
        self.assertEqual((fresh.gatekeeper_url, fresh.gatekeeper_id, fresh.storage_origin),
                         (before.gatekeeper_url, before.gatekeeper_id, before.storage_origin))
        return r

    def test_a_new_gatekeeper_for_a_location_with_tickets_is_refused_and_old_grants_keep_their_audience(self):
        for change in ({"gatekeeper_url": "https://gk-new.alpha.example"}, {"gatekeeper_id": "gk-new"},
                       {"storage_origin": "https://new.s3.eu-west-1.amazonaws.com"}):
            with self.subTest(change=change):
                r = self.assert_refused(**change)
                self.assertContains(r, "it holds 1 ticket", status_code=400)
        token = read_grant(self.ticket, self.alice).token
        self.assertEqual(audience(token, self.tenant_a), "gk-alpha")
        self.assertFalse(SecurityEvent.objects.filter(tenant=self.tenant_a,
                                                      kind=SecurityEvent.Kind.GATEKEEPER_URL).exists())

    def test_a_connected_gatekeeper_without_tickets_is_refused_too(self):
        Ticket.objects.filter(tenant=self.tenant_a).delete()
        location = active_location(self.tenant_a)
        record_health(location, health_of(location))
        self.assert_refused(gatekeeper_url="https://gk-new.alpha.example")

    def test_a_verified_gatekeeper_without_tickets_is_refused_too(self):
        Ticket.objects.filter(tenant=self.tenant_a).delete()
        OnboardingStep.objects.create(tenant=self.tenant_a, step=OnboardingStep.Step.VERIFIED,
                                      state=OnboardingStep.State.DONE, actor_name="Alice",
                                      at=timezone.now(), detail={})
        r = self.assert_refused(gatekeeper_id="gk-new")
        self.assertContains(r, "connected and verified", status_code=400)

    def test_the_rest_of_the_form_still_saves_with_tickets(self):
        self.login(self.alice)
        r = self.client.post(URL, self.form(bucket="alpha-renamed", idp_issuer="https://idp.alpha.example",
                                            idp_client_id="dualkey"))
        self.assertEqual(r.status_code, 302)
        fresh = Tenant.objects.get(pk=self.tenant_a.pk)
        self.assertEqual((fresh.bucket, fresh.idp_client_id), ("alpha-renamed", "dualkey"))
        location = active_location(self.tenant_a)
        self.assertEqual((location.chosen_bucket, location.gatekeeper_id), ("alpha-renamed", "gk-alpha"))
