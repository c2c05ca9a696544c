"""Storage locations (tenants/locations.py): one active per tenant, each ticket at
its own, and the settings page's add / connect / cut over / retire, with their
story tests (own tenant, other tenant 404, wrong role, bad input)."""

import datetime as dt
import json

from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.tickets.grants import read_grant
from portal.tickets.models import Ticket
from portal.tickets.services import create_ticket
from tenants import locations, onboarding
from tenants.csp import HEADER
from tenants.locations import LocationError, active_location, add_location, cut_over, record_health, retire
from tenants.models import SecurityEvent, StorageLocation, Tenant
import jwt
from django.conf import settings

from tests.portal.base import BaseTestCase, manifest_entry, public_key
from tests.stack import csp_directives
from tests.support import record_passed_verification

B_URL = "https://gk-b.alpha.example"
B_ORIGIN = "https://alpha-b.s3.eu-north-1.amazonaws.com"


def audience(token: str, tenant) -> str:
    """A grant's audience, verified the way a gatekeeper does (EdDSA, the tenant's key)."""
    key = public_key(tenant, jwt.get_unverified_header(token)["kid"])
    return jwt.decode(token, key, algorithms=["EdDSA"], issuer=settings.DUALKEY_PORTAL_ORIGIN,
                      options={"verify_aud": False})["aud"]


def health_of(location, **changes) -> dict:
    """What a gatekeeper's /v1/health answers (gatekeeper/app.py), for this location."""
    answer = {"status": "ok", "gatekeeper_id": location.gatekeeper_id, "storage_origin": location.storage_origin,
              "bucket": "alpha-b", "region": "eu-north-1", "storage": "ok", "storage_problem": None,
              "encryption": "aws:kms", "kms_key_id": "arn:aws:kms:eu-north-1:111122223333:key/k1",
              "time": 1, "vendor_kids": []}
    answer.update(changes)
    return answer


class LocationsTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.a = active_location(self.tenant_a)

    def add_b(self, **fields):
        values = {"kind": "customer", "gatekeeper_url": B_URL, "gatekeeper_id": "gk-alpha-b",
                  "storage_origin": B_ORIGIN, "chosen_bucket": "alpha-b", "chosen_region": "eu-north-1"} | fields
        return add_location(self.tenant_a, self.alice, **values)

    def connected_b(self, **health):
        """Added, connected and verified: ready to cut over to."""
        b = self.add_b()
        b = record_health(b, health_of(b, **health))
        record_passed_verification(self.tenant_a, self.alice)
        return b


class ModelTestCase(LocationsTestCase):
    def test_a_new_tenant_has_one_active_location_with_its_settings(self):
        self.assertEqual(list(self.tenant_a.locations.values_list("state", flat=True)), ["active"])
        self.assertEqual((self.a.gatekeeper_url, self.a.gatekeeper_id, self.a.storage_origin, self.a.chosen_bucket),
                         (self.tenant_a.gatekeeper_url, self.tenant_a.gatekeeper_id, self.tenant_a.storage_origin,
                          self.tenant_a.bucket))
        self.assertEqual(self.ticket.location, self.a)

    def test_saving_the_tenant_never_rewrites_its_active_location(self):
        """The mirror goes one way (location -> tenant): a save of changed or stale
        fields is undone from the location, which keeps what its tickets' grants name."""
        self.tenant_a.gatekeeper_url = "https://gk2.alpha.example"
        self.tenant_a.save()
        self.a.refresh_from_db()
        self.assertEqual(self.a.gatekeeper_url, "https://gk.alpha.example/dualkey")
        self.assertEqual(self.tenant_a.gatekeeper_url, "https://gk.alpha.example/dualkey")
        self.assertEqual(Tenant.objects.get(pk=self.tenant_a.pk).gatekeeper_url, "https://gk.alpha.example/dualkey")
        self.assertEqual(self.tenant_a.locations.count(), 1)

    def test_a_stale_tenant_saved_after_a_cut_over_does_not_undo_it(self):
        stale = Tenant.objects.get(pk=self.tenant_a.pk)
        b = self.connected_b()
        cut_over(b, self.alice)
        stale.name = "Alpha renamed"
        stale.save()  # every field, the old gatekeeper's among them
        b.refresh_from_db()
        self.assertEqual((b.state, b.gatekeeper_url), ("active", B_URL))
        fresh = Tenant.objects.get(pk=self.tenant_a.pk)
        self.assertEqual((fresh.name, fresh.gatekeeper_url, fresh.gatekeeper_id),
                         ("Alpha renamed", B_URL, "gk-alpha-b"))
        self.a.refresh_from_db()
        self.assertEqual((self.a.state, self.a.gatekeeper_url), ("draining", "https://gk.alpha.example/dualkey"))

    def test_two_active_locations_are_refused_by_the_database(self):
        b = self.add_b()
        with self.assertRaises(IntegrityError), transaction.atomic():
            StorageLocation.objects.filter(pk=b.pk).update(state="active")

    def test_a_ticket_cannot_be_at_another_tenants_location(self):
        with self.assertRaises(ValueError):
            Ticket.objects.create(tenant=self.tenant_b, number=99, location=self.a)


class HealthTestCase(LocationsTestCase):
    def test_what_the_gatekeeper_reports_is_recorded(self):
        b = self.connected_b()
        self.assertEqual((b.reported_bucket, b.reported_region, b.reported_storage, b.reported_encryption),
                         ("alpha-b", "eu-north-1", "ok", "aws:kms"))
        self.assertIsNotNone(b.reported_at)
        self.assertEqual(b.mismatches(), [])

    def test_the_ops_its_gatekeeper_asks_an_id_token_for_are_recorded(self):
        self.assertEqual(self.connected_b().identity_ops, frozenset())
        b = self.connected_b(identity={"issuer": "https://idp.example", "audience": "pages",
                                       "ops": ["list", "get", "delete", "audit"]})
        self.assertEqual((b.reported_identity_ops, b.identity_ops),
                         ("audit,delete,get,list", frozenset({"audit", "delete", "get", "list"})))
        b = record_health(b, health_of(b, identity=None))  # [identity] switched off since
        self.assertEqual(b.identity_ops, frozenset())

    def test_an_s3_compatible_stores_own_region_name_is_recorded(self):
        b = self.add_b()
        b = record_health(b, health_of(b, region="default"))
        self.assertEqual(b.reported_region, "default")

    def test_a_mismatch_with_what_the_admin_chose_is_a_warning(self):
        b = self.connected_b(bucket="someone-elses", region="us-east-1")
        self.assertEqual(b.mismatches(), ["You chose bucket alpha-b, the gatekeeper reports someone-elses.",
                                          "You chose region eu-north-1, the gatekeeper reports us-east-1."])

    def test_another_gatekeepers_health_is_refused_with_a_reason(self):
        b = self.add_b()
        for health, reason in [(health_of(b, gatekeeper_id="gk-other"), "not 'gk-alpha-b'"),
                               (health_of(b, storage_origin="https://evil.example"), "storage origin"),
                               (health_of(b, storage="maybe"), "no storage state"),
                               (health_of(b, bucket="x" * 64), "bucket"),
                               (health_of(b, bucket="b\ntouch /tmp/pwned\n#"), "not an S3 bucket name"),
                               (health_of(b, bucket="Alpha_B"), "not an S3 bucket name"),
                               (health_of(b, region="eu-north-1; rm"), "not a region name"),
                               (health_of(b, region=7), "region"),
                               (health_of(b, identity={"ops": ["get", "sudo"]}), "identity"),
                               (health_of(b, identity="on"), "identity"),
                               (["not", "a", "dict"], "not a JSON object")]:
            with self.subTest(reason=reason), self.assertRaisesRegex(LocationError, reason):
                record_health(b, health)
        b.refresh_from_db()
        self.assertIsNone(b.reported_at)


class CutOverTestCase(LocationsTestCase):
    def test_new_tickets_go_to_the_new_location_and_old_ones_stay(self):
        b = cut_over(self.connected_b(), self.alice)
        self.a.refresh_from_db()
        self.tenant_a.refresh_from_db()
        self.assertEqual((self.a.state, b.state), ("draining", "active"))
        self.assertEqual((b.state_changed_by, self.a.state_changed_by_name), (self.alice, "alice"))
        # The tenant's fields mirror the active location.
        self.assertEqual((self.tenant_a.gatekeeper_url, self.tenant_a.gatekeeper_id, self.tenant_a.storage_origin),
                         (B_URL, "gk-alpha-b", B_ORIGIN))
        new = create_ticket(self.agent_a, [manifest_entry()])
        self.assertEqual(new.location, b)
        self.ticket.refresh_from_db()
        self.assertEqual(self.ticket.location, self.a)
        # Each ticket's grant is addressed to its own location's gatekeeper.
        self.assertEqual(audience(read_grant(self.ticket, self.alice).token, self.tenant_a), "gk-alpha")
        self.assertEqual(audience(read_grant(new, self.alice).token, self.tenant_a), "gk-alpha-b")
        event = SecurityEvent.objects.get(tenant=self.tenant_a, kind=SecurityEvent.Kind.LOCATION_CUT_OVER)
        self.assertEqual((event.old_value, event.new_value, event.actor), (self.a.gatekeeper_url, B_URL, self.alice))

    def test_it_needs_a_fresh_health_report_with_storage_ok(self):
        b = self.add_b()
        with self.assertRaisesRegex(LocationError, "Connect first"):
            cut_over(b, self.alice)
        record_health(b, health_of(b))
        later = timezone.now() + locations.HEALTH_FRESH_FOR + dt.timedelta(seconds=1)
        with self.assertRaisesRegex(LocationError, "Connect first"):
            cut_over(b, self.alice, now=later)
        record_health(b, health_of(b, storage="unreachable", storage_problem="NoSuchBucket"))
        with self.assertRaisesRegex(LocationError, "unreachable \\(NoSuchBucket\\)"):
            cut_over(b, self.alice)
        self.a.refresh_from_db()
        self.assertEqual(self.a.state, "active")

    def test_it_needs_a_passed_verification_of_this_gatekeeper_within_a_day(self):
        b = self.add_b()
        b = record_health(b, health_of(b))
        with self.assertRaisesRegex(LocationError, "Verify it first"):
            cut_over(b, self.alice)
        failing = {name: "pass" for name in onboarding.MUST_PASS} | {"storage": "fail"}
        onboarding.record_verification(self.tenant_a, self.alice, failing)
        with self.assertRaisesRegex(LocationError, "Verify it first"):
            cut_over(b, self.alice)
        past = timezone.now() - locations.VERIFIED_FRESH_FOR - dt.timedelta(seconds=1)
        record_passed_verification(self.tenant_a, self.alice, now=past)
        with self.assertRaisesRegex(LocationError, "Verify it first"):
            cut_over(b, self.alice)
        record_passed_verification(self.tenant_a, self.alice)
        # A verification of another gatekeeper does not count for this one.
        StorageLocation.objects.filter(pk=b.pk).update(gatekeeper_id="gk-alpha-c")
        b.refresh_from_db()
        with self.assertRaisesRegex(LocationError, "Verify it first"):
            cut_over(b, self.alice)
        StorageLocation.objects.filter(pk=b.pk).update(gatekeeper_id="gk-alpha-b")
        b.refresh_from_db()
        self.assertEqual(cut_over(b, self.alice).state, "active")

    def test_only_a_connecting_location_is_cut_over_to(self):
        with self.assertRaisesRegex(LocationError, "this one is active"):
            cut_over(self.a, self.alice)


class RetireTestCase(LocationsTestCase):
    def test_a_drained_location_holding_tickets_is_not_retired(self):
        cut_over(self.connected_b(), self.alice)
        with self.assertRaisesRegex(LocationError, "still holds 1 ticket"):
            retire(self.a, self.alice)

    def test_an_unused_location_is_retired_and_the_active_one_never(self):
        b = retire(self.add_b(), self.alice)
        self.assertEqual((b.state, b.state_changed_by), ("retired", self.alice))
        self.assertTrue(SecurityEvent.objects.filter(kind=SecurityEvent.Kind.LOCATION_RETIRED).exists())
        with self.assertRaisesRegex(LocationError, "this one is active"):
            retire(self.a, self.alice)
        with self.assertRaisesRegex(LocationError, "retired"):
            record_health(b, health_of(b))


class TicketPagesAcrossLocationsTestCase(LocationsTestCase):
    """After a cut over, each ticket's pages, grants and CSP name its own location."""

    def setUp(self):
        super().setUp()
        self.b = cut_over(self.connected_b(), self.alice)
        self.new = create_ticket(self.agent_a, [manifest_entry("summary.json", 20, "application/json")])
        self.login(self.bob)

    def test_the_report_page_and_its_grant_are_at_the_tickets_location(self):
        for ticket, gatekeeper, storage in [(self.ticket, "https://gk.alpha.example", self.a.storage_origin),
                                            (self.new, "https://gk-b.alpha.example", B_ORIGIN)]:
            with self.subTest(ticket=ticket.number):
                r = self.client.get(f"/tickets/{ticket.id}/")
                csp = csp_directives(r[HEADER])
                self.assertEqual(csp["connect-src"], ["'self'", gatekeeper, storage])
                self.assertEqual(csp["img-src"], ["'self'", "blob:", storage])
                grant = self.client.post(f"/api/v1/tickets/{ticket.id}/grant").json()
                self.assertEqual(grant["gatekeeper_url"], ticket.location.gatekeeper_url)
                self.assertEqual(audience(grant["grant"], self.tenant_a), ticket.location.gatekeeper_id)
                note = self.client.post(f"/api/v1/tickets/{ticket.id}/notes", {"size": 5},
                                        content_type="application/json").json()
                self.assertEqual(note["gatekeeper_url"], ticket.location.gatekeeper_url)

    def test_the_list_names_every_shown_location_and_grants_per_location(self):
        r = self.client.get("/tickets/")
        csp = csp_directives(r[HEADER])
        # Newest ticket first: B's, then A's; gatekeepers, then storage.
        self.assertEqual(csp["connect-src"], ["'self'", B_URL, "https://gk.alpha.example",
                                              B_ORIGIN, self.a.storage_origin])
        self.assertEqual(csp["img-src"], ["'self'", "blob:", B_ORIGIN, self.a.storage_origin])
        self.assertContains(r, f'data-location="{self.a.pk}"')
        self.assertContains(r, f'data-location="{self.b.pk}"')
        both = self.client.post("/api/v1/tickets/summary-grant", {"tickets": [str(self.ticket.id), str(self.new.id)]},
                                content_type="application/json")
        self.assertEqual(both.status_code, 400)
        self.assertIn("more than one storage location", both.json()["tickets"][0])
        one = self.client.post("/api/v1/tickets/summary-grant", {"tickets": [str(self.new.id)]},
                               content_type="application/json")
        self.assertEqual(one.json()["gatekeeper_url"], B_URL)
        self.assertEqual(audience(one.json()["grant"], self.tenant_a), "gk-alpha-b")

    def test_the_agents_put_grant_is_for_the_tickets_location(self):
        r = self.client.post(f"/api/v1/tickets/{self.ticket.id}/put-grant", **self.agent_headers(self.agent_a_token))
        self.assertEqual(r.json()["gatekeeper_url"], self.a.gatekeeper_url)
        self.assertEqual(audience(r.json()["grant"], self.tenant_a), "gk-alpha")
        r = self.client.post("/api/v1/tickets", {"files": [manifest_entry()]}, content_type="application/json",
                             **self.agent_headers(self.agent_a_token))
        self.assertEqual((r.json()["gatekeeper_url"], r.json()["gatekeeper_id"]), (B_URL, "gk-alpha-b"))

    def test_an_old_tickets_erasure_is_at_its_own_location(self):
        from portal.tickets.erasure import gatekeeper_for
        from portal.tickets.grants import erase_grant

        self.assertEqual(gatekeeper_for(self.ticket), self.a)
        self.assertEqual(audience(erase_grant(self.ticket, self.alice).token, self.tenant_a), "gk-alpha")
        self.assertEqual(audience(erase_grant(self.new, self.alice).token, self.tenant_a), "gk-alpha-b")

    def test_the_audit_page_talks_to_the_active_location(self):
        self.login(self.alice)
        r = self.client.get("/audit/")
        self.assertEqual(csp_directives(r[HEADER])["connect-src"], ["'self'", B_URL])


class SettingsLocationsStoryTestCase(LocationsTestCase):
    def test_the_admin_sees_the_locations_and_the_csp_names_their_gatekeepers(self):
        b = self.connected_b(bucket="someone-elses")
        self.login(self.alice)
        r = self.client.get("/settings/")
        self.assertContains(r, 'data-testid="locations"')
        self.assertContains(r, f'data-health-url="/settings/locations/{b.pk}/health/"')
        self.assertContains(r, "You chose bucket alpha-b, the gatekeeper reports someone-elses.")
        # Every location's gatekeeper (Connect), and the storage of the location being
        # connected (the onboarding verification's probe follows it), not the active one's.
        self.assertEqual(csp_directives(r[HEADER])["connect-src"], ["'self'", "https://gk.alpha.example", B_URL,
                                                                   b.storage_origin])
        self.assertNotIn(self.a.storage_origin, r[HEADER])

    def test_staff_get_403_and_support_sees_states_only(self):
        b = self.add_b()
        self.login(self.bob)
        for url in ["/settings/locations/", f"/settings/locations/{b.pk}/health/",
                    f"/settings/locations/{b.pk}/cut-over/", f"/settings/locations/{b.pk}/retire/"]:
            with self.subTest(url=url):
                self.assertEqual(self.client.post(url).status_code, 403)
        self.login(self.victor)
        r = self.client.get(f"/support/tenants/{self.tenant_a.slug}/")
        self.assertContains(r, 'data-testid="support-locations"')
        self.assertContains(r, "Connecting")
        self.assertNotContains(r, B_URL)
        self.assertNotContains(r, "gk-alpha-b")

    def test_another_tenants_admin_gets_404(self):
        b = self.add_b()
        self.login(self.charlie)
        for url in [f"/settings/locations/{b.pk}/health/", f"/settings/locations/{b.pk}/cut-over/",
                    f"/settings/locations/{b.pk}/retire/"]:
            with self.subTest(url=url):
                self.assertEqual(self.client.post(url, {"confirm": "gk-alpha-b"}).status_code, 404)
        b.refresh_from_db()
        self.assertEqual(b.state, "connecting")

    def test_add_then_bad_input_is_a_400_with_reasons(self):
        self.login(self.alice)
        r = self.client.post("/settings/locations/", {"kind": "customer", "gatekeeper_url": B_URL,
                                                      "gatekeeper_id": "gk-alpha-b", "storage_origin": B_ORIGIN})
        self.assertEqual(r.status_code, 302)
        b = self.tenant_a.locations.get(gatekeeper_id="gk-alpha-b")
        self.assertEqual((b.state, b.state_changed_by), ("connecting", self.alice))
        self.assertTrue(SecurityEvent.objects.filter(kind=SecurityEvent.Kind.LOCATION_ADDED, subject="gk-alpha-b")
                        .exists())
        r = self.client.post("/settings/locations/", {"kind": "moon", "gatekeeper_url": "ftp://x",
                                                      "gatekeeper_id": "bad id!", "storage_origin": ""})
        self.assertEqual(r.status_code, 400)
        self.assertEqual(self.tenant_a.locations.count(), 2)
        self.assertContains(r, "This field is required", status_code=400)
        # Charlie's location is his own tenant's, whatever he posts.
        self.login(self.charlie)
        self.client.post("/settings/locations/", {"kind": "vendor", "gatekeeper_url": "https://gk2.beta.example",
                                                  "gatekeeper_id": "gk-beta-2", "storage_origin": B_ORIGIN,
                                                  "tenant": str(self.tenant_a.pk)})
        self.assertEqual(self.tenant_b.locations.filter(gatekeeper_id="gk-beta-2").count(), 1)
        self.assertEqual(self.tenant_a.locations.count(), 2)

    def test_health_posted_by_the_browser(self):
        b = self.add_b()
        url = f"/settings/locations/{b.pk}/health/"
        self.login(self.alice)
        r = self.client.post(url, json.dumps(health_of(b, bucket="other")), content_type="application/json")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["bucket"], "other")
        self.assertEqual(r.json()["mismatches"], ["You chose bucket alpha-b, the gatekeeper reports other."])
        for body, status, error in [("{not json", 400, "bad_json"), (b"\xff", 400, "bad_json"),
                                    (json.dumps(health_of(b, gatekeeper_id="gk-x")), 400, "refused"),
                                    ("[" * 100_000, 413, "too_large")]:
            with self.subTest(body=str(body)[:20]):
                r = self.client.post(url, body, content_type="application/json")
                self.assertEqual((r.status_code, r.json()["error"]), (status, error))
        self.assertEqual(self.client.get(url).status_code, 405)
        self.assertEqual(self.client.post("/settings/locations/999999/health/", "{}",
                                          content_type="application/json").status_code, 404)

    def test_cut_over_asks_for_the_id_and_a_connected_location(self):
        b = self.add_b()
        url = f"/settings/locations/{b.pk}/cut-over/"
        self.login(self.alice)
        for data in [{}, {"confirm": "gk-alpha"}, {"confirm": "x" * 65}]:
            with self.subTest(data=data):
                r = self.client.post(url, data)
                self.assertContains(r, "type the gatekeeper id gk-alpha-b exactly", status_code=400)
        r = self.client.post(url, {"confirm": "gk-alpha-b"})
        self.assertContains(r, "Connect first", status_code=409)
        record_health(b, health_of(b))
        r = self.client.post(url, {"confirm": "gk-alpha-b"})
        self.assertContains(r, "Verify it first", status_code=409)
        record_passed_verification(self.tenant_a, self.alice)
        r = self.client.post(url, {"confirm": "gk-alpha-b"})
        self.assertEqual(r.status_code, 302)
        self.assertEqual(active_location(self.tenant_a), b)
        r = self.client.post(f"/settings/locations/{self.a.pk}/retire/")
        self.assertContains(r, "still holds 1 ticket", status_code=409)
