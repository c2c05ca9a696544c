"""The onboarding checklist (tenants/onboarding.py): the admin's settings page and
support's progress view, the Launch stack link against the template's own
Parameters, and the verification's two endpoints (probe grants, the browser's
report). The story: Alice admins A, Bob is A's staff, Charlie admins B, Victor
is vendor support."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.core.files.storage import storages
from django.test import Client

from gatekeeper import VERSION
from portal.tickets.models import Ticket
from tenants import onboarding
from tenants.management.commands.publish_gatekeeper import ZIP_NAME
from tenants.models import OnboardingStep, Tenant
from tenants.services import create_tenant
from tenants.signing import trusted_public_keys
from tests.deploy.template import load as load_template
from tests.portal.base import BaseTestCase, decode_grant

PROBE = "/settings/onboarding/probe-grant"
REPORT = "/settings/onboarding/verification"
GOOD = {name: "pass" for name in onboarding.MUST_PASS} | {"probe_delete": "pass", "encryption": "info"}


def launch_query(url: str) -> dict[str, str]:
    """The quick-create link's parameters: they follow the '#/stacks/quickcreate?'."""
    fragment = urlsplit(url).fragment
    path, _, query = fragment.partition("?")
    assert path == "/stacks/quickcreate", fragment
    return dict(parse_qsl(query, strict_parsing=True, keep_blank_values=True))


class LaunchStackTestCase(BaseTestCase):
    def link(self, tenant=None):
        tenant = tenant or self.tenant_a
        return onboarding.launch_stack_url(tenant, trusted_public_keys(tenant), settings.DUALKEY_PORTAL_ORIGIN)

    def test_it_opens_cloudformation_in_the_chosen_region(self):
        parts = urlsplit(self.link())
        self.assertEqual(parts.scheme, "https")
        self.assertEqual(parts.netloc, "eu-west-1.console.aws.amazon.com")
        self.assertEqual(parts.path, "/cloudformation/home")
        self.assertEqual(parts.query, "region=eu-west-1")

    def test_its_parameters_are_exactly_template_parameters(self):
        declared = load_template()["Parameters"]
        query = launch_query(self.link())
        named = {key.removeprefix("param_") for key in query if key.startswith("param_")}
        self.assertEqual(set(query) - {f"param_{n}" for n in named}, {"templateURL", "stackName"})
        self.assertLessEqual(named, set(declared))
        # Everything the portal knows, and nothing it does not (the customer's ACL, encryption...).
        self.assertEqual(named, {"GatekeeperId", "PortalOrigin", "VendorKeys", "CodeBucket", "CodeKey", "Runtime",
                                 "Architecture", "BucketName"})
        # Every parameter without a default is filled in: the stack can be created as it is.
        self.assertLessEqual({name for name, spec in declared.items() if "Default" not in spec}, named)

    def test_its_values_are_right_and_pass_the_templates_own_rules(self):
        declared = load_template()["Parameters"]
        query = launch_query(self.link())
        keys = trusted_public_keys(self.tenant_a)
        values = {key.removeprefix("param_"): value for key, value in query.items() if key.startswith("param_")}
        self.assertEqual(values["GatekeeperId"], "gk-alpha")
        self.assertEqual(values["PortalOrigin"], settings.DUALKEY_PORTAL_ORIGIN)
        self.assertEqual(values["VendorKeys"], ",".join(f"{k.kid}:{k.public_key}" for k in keys))
        self.assertEqual(values["BucketName"], "alpha-reports")
        self.assertEqual(values["CodeBucket"], settings.DUALKEY_ARTIFACTS_BUCKET)
        # The zip publish_gatekeeper publishes for this version, beside the template.
        folder, _, name = values["CodeKey"].rpartition("/")
        self.assertEqual(folder, f"gatekeeper/{VERSION}")
        match = ZIP_NAME.match(name)
        self.assertTrue(match and match["version"] == VERSION and match[2] == values["Architecture"], name)
        self.assertIn(f"-py{values['Runtime'].removeprefix('python')}-", name)
        for name, value in values.items():
            spec = declared[name]
            if "AllowedPattern" in spec:
                self.assertRegex(value, f"^(?:{spec['AllowedPattern']})$", name)
            if "AllowedValues" in spec:
                self.assertIn(value, [str(v) for v in spec["AllowedValues"]], name)
        self.assertEqual(query["templateURL"], storages["artifacts"].url(f"gatekeeper/{VERSION}/gatekeeper.yaml"))
        self.assertEqual(query["stackName"], "dualkey-gatekeeper-alpha")
        self.assertRegex(query["stackName"], r"^[A-Za-z][A-Za-z0-9-]{0,127}$")  # CloudFormation's rule

    def test_a_tenant_with_an_idp_gets_its_identity_prefilled_and_the_jwks_url_left_to_fill(self):
        declared = load_template()["Parameters"]
        self.assertNotIn("param_IdentityIssuer", launch_query(self.link()))  # no IdP: [identity] stays off
        Tenant.objects.filter(pk=self.tenant_a.pk).update(
            idp_issuer="https://login.alpha.example/realms/alpha", idp_client_id="dualkey-pages")
        self.tenant_a.refresh_from_db()
        values = {key.removeprefix("param_"): value for key, value in launch_query(self.link()).items()
                  if key.startswith("param_")}
        self.assertEqual(values["IdentityIssuer"], "https://login.alpha.example/realms/alpha")
        self.assertEqual(values["IdentityAudience"], "dualkey-pages")
        # The portal does not know where the IdP keeps its keys: the customer fills it in, and
        # the template's Rules refuse the stack until then.
        self.assertNotIn("IdentityJwksUrl", values)
        for name in ("IdentityIssuer", "IdentityAudience"):
            self.assertRegex(values[name], f"^(?:{declared[name]['AllowedPattern']})$", name)
        # Half an IdP (an issuer without its client id) is not prefilled.
        Tenant.objects.filter(pk=self.tenant_a.pk).update(idp_client_id="")
        self.tenant_a.refresh_from_db()
        self.assertFalse({"param_IdentityIssuer", "param_IdentityAudience"} & set(launch_query(self.link())))

    def test_a_tenant_without_a_bucket_lets_the_stack_name_one_and_gets_its_default_id(self):
        tenant = create_tenant(slug="gamma", name="Gamma", region="us-east-2")
        values = launch_query(self.link(tenant))
        self.assertNotIn("param_BucketName", values)
        self.assertEqual(values["param_GatekeeperId"], "gk-gamma")

    def test_without_a_region_there_is_no_link_and_the_page_says_why(self):
        Tenant.objects.filter(pk=self.tenant_a.pk).update(region="")
        self.tenant_a.refresh_from_db()
        self.assertIsNone(self.link())
        self.login(self.alice)
        r = self.client.get("/settings/")
        self.assertContains(r, 'data-testid="launch-stack-needs-region"')
        self.assertNotContains(r, "quickcreate")

    def test_the_settings_page_offers_it_html_escaped(self):
        self.login(self.alice)
        html = self.client.get("/settings/").content.decode()
        href = re.search(r'<a class="button" href="([^"]+)"[^>]*data-testid="launch-stack"', html).group(1)
        self.assertEqual(href.replace("&amp;", "&"), self.link())


class ChecklistPageTestCase(BaseTestCase):
    def steps(self, response) -> dict[str, str]:
        return dict(re.findall(r'<li data-step="(\w+)" data-state="(\w+)"', response.content.decode()))

    def test_alice_sees_her_tenants_checklist(self):
        self.login(self.alice)
        r = self.client.get("/settings/")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(self.steps(r), {
            "admin_joined": "done", "location_chosen": "todo", "deployed": "todo", "connected": "done",
            "verified": "todo", "cut_over": "todo", "tickets_moved": "not_needed", "live": "done"})
        self.assertContains(r, "by alice")  # the first admin, when she joined
        self.assertContains(r, "Every ticket is at the active location.")

    def test_tickets_moved_follows_the_tickets_and_the_moves(self):
        from django.utils import timezone

        from portal.moves import services as moves
        from portal.tickets.models import Ticket
        from tenants.locations import active_location
        from tenants.models import StorageLocation

        def moved():
            return next(i for i in onboarding.checklist(self.tenant_a) if i.step == "tickets_moved")

        Ticket.objects.filter(pk=self.ticket.pk).update(status=Ticket.Status.COMPLETE)
        old = active_location(self.tenant_a)
        now = timezone.now()
        StorageLocation.objects.filter(pk=old.pk).update(state=StorageLocation.State.DRAINING)
        new = StorageLocation.objects.create(
            tenant=self.tenant_a, kind="customer", gatekeeper_url="https://gk2.alpha.example", gatekeeper_id="gk-2",
            storage_origin="https://a2.s3.eu-west-1.amazonaws.com", state=StorageLocation.State.ACTIVE,
            state_changed_at=now, created_at=now)
        self.assertEqual((moved().state, moved().note[:40]), ("todo", "1 ticket still at an earlier location (r"))
        job = moves.plan(self.tenant_a, old, new, self.alice).job
        self.assertIn("A move is running", moved().note)
        Ticket.objects.filter(pk=self.ticket.pk).update(location=new)
        moves.change(job, "cancel", self.alice)
        self.assertEqual(moved().state, "not_needed")
        job.__class__.objects.filter(pk=job.pk).update(state="finished", finished_at=now)
        self.assertEqual((moved().state, moved().who), ("done", "alice"))

    def test_bob_gets_403(self):
        self.login(self.bob)
        self.assertEqual(self.client.get("/settings/").status_code, 403)

    def test_charlie_sees_his_own_only(self):
        onboarding.record(self.tenant_a, OnboardingStep.Step.VERIFIED, self.alice,
                          detail={**onboarding.target_for(self.tenant_a).facts(), "checks": GOOD})
        self.login(self.charlie)
        r = self.client.get("/settings/")
        self.assertEqual(self.steps(r)["verified"], "todo")
        self.assertNotContains(r, "alice")

    def test_a_tenant_without_tickets_has_nothing_to_move(self):
        self.ticket_b.delete()
        self.login(self.charlie)
        self.assertEqual(self.steps(self.client.get("/settings/"))["tickets_moved"], "not_needed")

    def test_saving_the_storage_settings_records_location_and_connection(self):
        Ticket.objects.filter(tenant=self.tenant_a).delete()  # no ticket yet: edited in place
        self.login(self.alice)
        r = self.client.post("/settings/storage/", {
            "data_location": "customer", "region": "us-west-2", "bucket": "alpha-own",
            "gatekeeper_url": "https://gk2.alpha.example", "gatekeeper_id": "gk-alpha-2",
            "storage_origin": "https://alpha-own.s3.us-west-2.amazonaws.com"})
        self.assertRedirects(r, "/settings/?saved=verify#onboarding", fetch_redirect_response=False)
        rows = {row.step: row for row in self.tenant_a.onboarding_steps.all()}
        self.assertEqual(rows["location_chosen"].detail, {"data_location": "customer", "region": "us-west-2"})
        self.assertEqual(rows["connected"].detail["gatekeeper_url"], "https://gk2.alpha.example")
        self.assertEqual((rows["connected"].actor, rows["connected"].actor_name), (self.alice, "alice"))
        # Not "saved" in green: the page verifies first and says which.
        page = self.client.get("/settings/?saved=verify")
        self.assertNotContains(page, "Storage settings saved.")
        self.assertContains(page, 'data-testid="saved-banner"')
        self.assertContains(page, "data-autostart")

    def test_a_save_without_a_gatekeeper_still_says_saved(self):
        Ticket.objects.filter(tenant=self.tenant_a).delete()  # no ticket yet: edited in place
        self.login(self.alice)
        r = self.client.post("/settings/storage/", {"data_location": "vendor", "region": "eu-west-1", "bucket": "",
                                                    "gatekeeper_url": "", "gatekeeper_id": "", "storage_origin": ""},
                             follow=True)
        self.assertContains(r, "Storage settings saved.")
        self.assertNotContains(r, "data-autostart")

    def test_a_verification_for_another_gatekeeper_is_outdated(self):
        onboarding.record_verification(self.tenant_a, self.alice, GOOD)
        Tenant.objects.filter(pk=self.tenant_a.pk).update(gatekeeper_url="https://gk-new.alpha.example")
        self.login(self.alice)
        self.assertEqual(self.steps(self.client.get("/settings/"))["verified"], "outdated")

    def test_going_live_records_cut_over_and_live_with_who(self):
        Tenant.objects.filter(pk=self.tenant_a.pk).update(status=Tenant.Status.ONBOARDING)
        self.login(self.victor)
        r = self.client.post("/support/tenants/alpha/status/", {"status": "active"})
        self.assertEqual(r.status_code, 302)
        rows = {row.step: row for row in self.tenant_a.onboarding_steps.all()}
        self.assertEqual(rows["cut_over"].actor_name, "victor (vendor support)")
        self.assertEqual(rows["live"].actor_name, "victor (vendor support)")


class SupportProgressTestCase(BaseTestCase):
    def test_victor_sees_progress_but_no_settings_or_findings(self):
        onboarding.record_verification(self.tenant_a, self.alice, {**GOOD, "storage": "fail"})
        self.login(self.victor)
        r = self.client.get("/support/tenants/alpha/")
        self.assertContains(r, 'data-testid="onboarding-progress"')
        self.assertContains(r, '<li data-step="verified" data-state="failed"')
        self.assertContains(r, "by alice")
        # The page's other sections show what support already held (the gatekeeper URL);
        # the progress adds nothing: no URL, no finding, no link.
        progress = re.search(r'<section[^>]*data-testid="onboarding-progress".*?</section>', r.content.decode(),
                             re.S).group(0)
        for hidden in ["gk.alpha.example", "Failed: storage", "storage", "probe", "quickcreate", "http"]:
            self.assertNotIn(hidden, progress)
        for hidden in ["Failed: storage", "probe", "quickcreate"]:
            self.assertNotContains(r, hidden)

    def test_admins_get_404_on_supports_page(self):
        self.login(self.alice)
        self.assertEqual(self.client.get("/support/tenants/alpha/").status_code, 404)


class ProbeGrantTestCase(BaseTestCase):
    def test_alice_gets_three_grants_for_one_fresh_probe_prefix(self):
        self.login(self.alice)
        r = self.client.post(PROBE)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r["Cache-Control"], "no-store")
        body = r.json()
        self.assertRegex(body["prefix"], r"^tickets/_probe/[0-9a-f]{32}/$")
        self.assertEqual(body["key"], body["prefix"] + "probe.txt")
        self.assertEqual((body["gatekeeper_url"], body["gatekeeper_id"]), ("https://gk.alpha.example/dualkey", "gk-alpha"))
        claims = {op: decode_grant(token, self.tenant_a) for op, token in body["grants"].items()}
        self.assertEqual(set(claims), {"put", "get", "delete"})
        for op, grant in claims.items():
            self.assertEqual(grant["scope"], {"prefix": body["prefix"], "ops": [op]})
            self.assertEqual(grant["sub"], f"user:{self.alice.pk}")
            self.assertLessEqual(grant["exp"] - grant["iat"], onboarding.PROBE_GRANT_LIFETIME)
        self.assertEqual(len({grant["jti"] for grant in claims.values()}), 3)
        self.assertNotEqual(self.client.post(PROBE).json()["prefix"], body["prefix"])

    def test_charlie_gets_grants_for_his_own_gatekeeper(self):
        self.login(self.charlie)
        body = self.client.post(PROBE).json()
        self.assertEqual(decode_grant(body["grants"]["put"], self.tenant_b)["aud"], "gk-beta")
        self.assertNotIn("alpha", json.dumps(body))

    def test_bob_gets_403(self):
        self.login(self.bob)
        self.assertEqual(self.client.post(PROBE).status_code, 403)

    def test_victor_and_anonymous_get_nothing(self):
        self.login(self.victor)
        self.assertEqual(self.client.post(PROBE).status_code, 404)
        self.client.logout()
        self.assertIn(self.client.post(PROBE).status_code, (302, 404))

    def test_it_takes_post_only_and_a_csrf_token(self):
        self.login(self.alice)
        self.assertEqual(self.client.get(PROBE).status_code, 405)
        strict = Client(enforce_csrf_checks=True)
        strict.force_login(self.alice)
        self.assertEqual(strict.post(PROBE).status_code, 403)

    def test_without_a_gatekeeper_it_is_a_409_with_a_reason(self):
        Tenant.objects.filter(pk=self.tenant_a.pk).update(gatekeeper_url="", gatekeeper_id="")
        self.login(self.alice)
        r = self.client.post(PROBE)
        self.assertEqual(r.status_code, 409)
        self.assertEqual(r.json()["error"], "no_gatekeeper")


class VerificationReportTestCase(BaseTestCase):
    def report(self, checks=None, client=None, **changes):
        facts = onboarding.target_for(self.tenant_a).facts()
        body = {**facts, "checks": GOOD if checks is None else checks, **changes}
        return (client or self.client).post(REPORT, json.dumps(body), content_type="application/json")

    def row(self, tenant=None):
        return (tenant or self.tenant_a).onboarding_steps.filter(step="verified").first()

    def test_a_passing_report_records_verified_and_deployed(self):
        self.login(self.alice)
        r = self.report()
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["state"], "done")
        row = self.row()
        self.assertEqual((row.state, row.actor), ("done", self.alice))
        self.assertEqual(row.detail["checks"], GOOD)
        self.assertEqual(self.tenant_a.onboarding_steps.get(step="deployed").actor, self.alice)

    def test_a_failing_report_records_failed_with_the_failing_checks(self):
        self.login(self.alice)
        r = self.report({**GOOD, "probe_upload": "fail", "probe_read": "skip", "probe_delete": "skip"})
        self.assertEqual(r.json()["state"], "failed")
        page = self.client.get("/settings/")
        self.assertContains(page, '<li data-step="verified" data-state="failed"')
        self.assertContains(page, "Failed: probe_upload.")

    def test_a_required_check_that_did_not_run_is_not_verified(self):
        self.login(self.alice)
        checks = {**GOOD, "probe_upload": "skip"}
        self.assertEqual(self.report(checks).json()["state"], "failed")
        # A gatekeeper whose owner switched delete off may still be verified.
        self.assertEqual(self.report({**GOOD, "probe_delete": "warn"}).json()["state"], "done")

    def test_a_report_for_another_gatekeeper_is_a_409(self):
        self.login(self.alice)
        r = self.report(gatekeeper_id="gk-elsewhere")
        self.assertEqual(r.status_code, 409)
        self.assertIn("another gatekeeper", r.json()["message"])
        self.assertIsNone(self.row())

    def test_charlies_report_is_about_his_tenant_and_cannot_name_alphas_gatekeeper(self):
        client = Client()
        client.force_login(self.charlie)
        self.assertEqual(self.report(client=client).status_code, 409)  # A's facts, B's settings
        facts = onboarding.target_for(self.tenant_b).facts()
        r = client.post(REPORT, json.dumps({**facts, "checks": GOOD}), content_type="application/json")
        self.assertEqual(r.status_code, 200)
        self.assertIsNone(self.row())
        self.assertEqual(self.row(self.tenant_b).state, "done")

    def test_bob_gets_403_and_victor_404(self):
        self.login(self.bob)
        self.assertEqual(self.report().status_code, 403)
        self.login(self.victor)
        self.assertEqual(self.report().status_code, 404)
        self.assertIsNone(self.row())

    def test_bad_input_is_a_4xx_with_a_reason(self):
        self.login(self.alice)
        cases = [
            ({"checks": {"nosuch": "pass"}}, 400, "unknown check"),
            ({"checks": {"storage": "green"}}, 400, "storage is one of"),
            ({"checks": {}}, 400, "checks"),
            ({"checks": ["pass"]}, 400, "checks"),
            ({"gatekeeper_url": 7}, 400, "strings"),
            ({"extra": 1}, 400, "The report is"),
        ]
        for changes, status, reason in cases:
            with self.subTest(changes=changes):
                r = self.report(**changes) if "checks" not in changes else self.report(changes["checks"])
                self.assertEqual(r.status_code, status)
                self.assertIn(reason, r.json()["message"])
        r = self.client.post(REPORT, "{not json", content_type="application/json")
        self.assertEqual((r.status_code, r.json()["error"]), (400, "malformed_json"))
        r = self.client.post(REPORT, {"checks": "x"})
        self.assertEqual(r.status_code, 415)
        r = self.client.post(REPORT, json.dumps({"pad": "x" * 9000}), content_type="application/json")
        self.assertEqual(r.status_code, 413)
        self.assertEqual(self.client.get(REPORT).status_code, 405)
        self.assertIsNone(self.row())

    def test_it_needs_a_csrf_token(self):
        strict = Client(enforce_csrf_checks=True)
        strict.force_login(self.alice)
        self.assertEqual(self.report(client=strict).status_code, 403)


def test_the_browser_and_the_portal_agree_on_the_checks():
    """verify-checks.js's titles are the checks the portal takes, and both judge
    "verified" by the same list."""
    from tests.test_js_units import js_value

    assert sorted(js_value("settings/verify-checks.js", "Object.keys(m.TITLES)")) == sorted(onboarding.CHECKS)
    assert js_value("settings/verify-checks.js", "m.MUST_PASS") == list(onboarding.MUST_PASS)
    assert js_value("settings/verify-checks.js", "m.ROUND_TRIP") == list(onboarding.ROUND_TRIP)


class HostileReportTestCase(BaseTestCase):
    """The hostile values and raw bodies of tests/portal/test_hostile_input.py, at the
    verification report: each a 4xx with a reason, never a 5xx, nothing recorded."""

    def test_every_hostile_value_and_body_is_refused_with_a_reason(self):
        from tests.portal.test_hostile_input import HOSTILE_VALUES, RAW_BODIES

        self.login(self.alice)
        facts = onboarding.target_for(self.tenant_a).facts()
        for value in HOSTILE_VALUES:
            for body in [{**facts, "checks": {value: "pass"}}, {**facts, "checks": {"storage": value}},
                         {**facts, "gatekeeper_url": value, "checks": GOOD}]:
                with self.subTest(value=value[:20]):
                    r = self.client.post(REPORT, json.dumps(body), content_type="application/json")
                    self.assertIn(r.status_code, (400, 409, 413), r.content[:200])
                    self.assertTrue(r.json()["message"])
        for raw, content_type in RAW_BODIES:
            with self.subTest(body=raw[:20], content_type=content_type):
                r = self.client.generic("POST", REPORT, raw, content_type=content_type)
                self.assertIn(r.status_code, (400, 413, 415), r.content[:200])
        self.assertFalse(self.tenant_a.onboarding_steps.filter(step="verified").exists())


class MovingToOwnGatekeeperTestCase(BaseTestCase):
    """Alice's tenant moves to its own gatekeeper: she adds location B, connects it
    (her browser posts its health), verifies it and cuts over. The checklist follows
    B from the moment it is added; Charlie's tenant and Bob (staff) get nothing of it."""

    B = {"kind": "customer", "gatekeeper_url": "https://gk-own.alpha.example", "gatekeeper_id": "gk-alpha-own",
         "storage_origin": "https://alpha-own.s3.eu-north-1.amazonaws.com", "chosen_bucket": "alpha-own",
         "chosen_region": "eu-north-1"}

    def steps(self, response) -> dict[str, str]:
        return dict(re.findall(r'<li data-step="(\w+)" data-state="(\w+)"', response.content.decode()))

    def health(self, location, **changes) -> str:
        return json.dumps({"status": "ok", "gatekeeper_id": location.gatekeeper_id,
                           "storage_origin": location.storage_origin, "bucket": "alpha-own", "region": "eu-north-1",
                           "storage": "ok", "time": 1, "vendor_kids": []} | changes)

    def add_b(self):
        self.login(self.alice)
        # Alpha's current gatekeeper is connected, verified and cut over to (live).
        onboarding.storage_saved(self.tenant_a, self.alice)
        onboarding.record_verification(self.tenant_a, self.alice, GOOD)
        onboarding.record_cut_over(self.tenant_a, self.alice)
        r = self.client.post("/settings/locations/", self.B)
        self.assertEqual(r.status_code, 302)
        return self.tenant_a.locations.get(gatekeeper_id="gk-alpha-own")

    def report(self, location, checks=GOOD):
        body = {"gatekeeper_url": location.gatekeeper_url, "gatekeeper_id": location.gatekeeper_id,
                "storage_origin": location.storage_origin, "checks": checks}
        return self.client.post(REPORT, json.dumps(body), content_type="application/json")

    def test_the_checklist_follows_the_location_from_added_to_cut_over(self):
        b = self.add_b()
        # Added: the steps about "the gatekeeper" are B's now, and none of them done.
        page = self.client.get("/settings/")
        steps = self.steps(page)
        self.assertEqual((steps["deployed"], steps["connected"], steps["verified"], steps["cut_over"]),
                         ("outdated", "outdated", "outdated", "outdated"))
        self.assertContains(page, "Done for another gatekeeper than gk-alpha-own, the location being connected.")
        self.assertContains(page, 'data-testid="verify-target">gk-alpha-own<')
        self.assertContains(page, f'data-gatekeeper-url="{b.gatekeeper_url}"')
        self.assertContains(page, 'data-bucket="alpha-own" data-region="eu-north-1"')
        self.assertEqual(onboarding.target_for(self.tenant_a).location_id, b.pk)

        # Connected: recorded when her browser posts B's health (not before, not by the storage form).
        r = self.client.post(f"/settings/locations/{b.pk}/health/", self.health(b), content_type="application/json")
        self.assertEqual(r.status_code, 200)
        connected = self.tenant_a.onboarding_steps.get(step="connected")
        self.assertEqual((connected.detail["gatekeeper_id"], connected.actor), ("gk-alpha-own", self.alice))
        self.assertEqual(self.steps(self.client.get("/settings/"))["connected"], "done")

        # Verified: the probe grants are for B's gatekeeper, and the report must name B.
        grants = self.client.post(PROBE).json()
        self.assertEqual((grants["gatekeeper_url"], grants["gatekeeper_id"]), (b.gatekeeper_url, "gk-alpha-own"))
        from tests.tenants.test_locations import audience

        self.assertEqual(audience(grants["grants"]["put"], self.tenant_a), "gk-alpha-own")
        stale = {"gatekeeper_url": self.tenant_a.gatekeeper_url, "gatekeeper_id": "gk-alpha",
                 "storage_origin": self.tenant_a.storage_origin, "checks": GOOD}
        r = self.client.post(REPORT, json.dumps(stale), content_type="application/json")
        self.assertEqual(r.status_code, 409)  # the active gatekeeper's report is not B's
        self.assertEqual(self.report(b).json()["state"], "done")
        steps = self.steps(self.client.get("/settings/"))
        self.assertEqual((steps["deployed"], steps["connected"], steps["verified"], steps["cut_over"]),
                         ("done", "done", "done", "outdated"))

        # Cut over: B is active, the tenant mirrors it, every step is B's and done.
        r = self.client.post(f"/settings/locations/{b.pk}/cut-over/", {"confirm": "gk-alpha-own"})
        self.assertEqual(r.status_code, 302)
        self.tenant_a.refresh_from_db()
        self.assertEqual(self.tenant_a.gatekeeper_id, "gk-alpha-own")
        target = onboarding.target_for(self.tenant_a)
        self.assertEqual((target.location_id, target.connecting), (None, False))
        page = self.client.get("/settings/")
        steps = self.steps(page)
        self.assertEqual((steps["deployed"], steps["connected"], steps["verified"], steps["cut_over"]),
                         ("done", "done", "done", "done"))
        self.assertEqual(self.tenant_a.onboarding_steps.get(step="cut_over").detail["gatekeeper_id"], "gk-alpha-own")
        self.assertNotContains(page, 'data-testid="verify-target"')

    def test_the_launch_link_and_the_download_are_for_the_location_being_connected(self):
        self.add_b()
        values = launch_query(onboarding.launch_stack_url(self.tenant_a, trusted_public_keys(self.tenant_a),
                                                          settings.DUALKEY_PORTAL_ORIGIN))
        self.assertEqual((values["param_GatekeeperId"], values["param_BucketName"]), ("gk-alpha-own", "alpha-own"))
        self.assertTrue(onboarding.launch_stack_url(self.tenant_a, [], "x").startswith(
            "https://eu-north-1.console.aws.amazon.com/"))
        import tomllib
        config = tomllib.loads(self.client.get("/settings/gatekeeper.toml").content.decode())
        self.assertEqual(config["gatekeeper_id"], "gk-alpha-own")
        self.assertEqual((config["storage"]["bucket"], config["storage"]["region"]), ("alpha-own", "eu-north-1"))
        self.assertNotIn("endpoint_url", config["storage"])  # AWS itself

    def test_a_connecting_location_without_a_region_is_in_the_tenants(self):
        self.login(self.alice)
        self.client.post("/settings/locations/", {**self.B, "chosen_region": "", "chosen_bucket": ""})
        target = onboarding.target_for(self.tenant_a)
        self.assertEqual((target.region, target.bucket), ("eu-west-1", ""))

    def test_the_storage_form_neither_connects_nor_verifies_the_new_location(self):
        b = self.add_b()
        Ticket.objects.filter(tenant=self.tenant_a).delete()
        before = self.tenant_a.onboarding_steps.get(step="connected").at
        r = self.client.post("/settings/storage/", {
            "data_location": "vendor", "region": "eu-west-1", "bucket": "alpha-reports",
            "gatekeeper_url": self.tenant_a.gatekeeper_url, "gatekeeper_id": "gk-alpha",
            "storage_origin": self.tenant_a.storage_origin})
        self.assertEqual(r.status_code, 302)
        self.assertEqual(r["Location"], "/settings/")  # no autostarted verification of B
        connected = self.tenant_a.onboarding_steps.get(step="connected")
        self.assertEqual((connected.at, connected.detail["gatekeeper_id"]), (before, "gk-alpha"))
        self.assertEqual(onboarding.target_for(self.tenant_a).location_id, b.pk)

    def test_health_of_a_draining_location_records_nothing(self):
        b = self.add_b()
        self.client.post(f"/settings/locations/{b.pk}/health/", self.health(b), content_type="application/json")
        self.client.post(f"/settings/locations/{b.pk}/cut-over/", {"confirm": "gk-alpha-own"})
        old = self.tenant_a.locations.get(gatekeeper_id="gk-alpha")
        at = self.tenant_a.onboarding_steps.get(step="connected").at
        r = self.client.post(f"/settings/locations/{old.pk}/health/", json.dumps({
            "gatekeeper_id": "gk-alpha", "storage_origin": old.storage_origin, "storage": "ok"}),
            content_type="application/json")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(self.tenant_a.onboarding_steps.get(step="connected").at, at)

    def test_bob_gets_403_and_charlie_404_and_his_checklist_is_his(self):
        b = self.add_b()
        self.login(self.bob)
        self.assertEqual(self.client.post(f"/settings/locations/{b.pk}/health/", self.health(b),
                                          content_type="application/json").status_code, 403)
        self.login(self.charlie)
        self.assertEqual(self.client.post(f"/settings/locations/{b.pk}/health/", self.health(b),
                                          content_type="application/json").status_code, 404)
        self.assertEqual(self.report(b).status_code, 409)  # his tenant's gatekeeper is not B
        page = self.client.get("/settings/")
        self.assertNotContains(page, "gk-alpha-own")
        self.assertEqual(onboarding.target_for(self.tenant_b).gatekeeper_id, "gk-beta")

    def test_bad_health_records_no_connection(self):
        b = self.add_b()
        at = self.tenant_a.onboarding_steps.get(step="connected").at
        for body in ["{", self.health(b, gatekeeper_id="gk-alpha"), self.health(b, storage="maybe")]:
            with self.subTest(body=body[:30]):
                r = self.client.post(f"/settings/locations/{b.pk}/health/", body, content_type="application/json")
                self.assertEqual(r.status_code, 400)
        self.assertEqual(self.tenant_a.onboarding_steps.get(step="connected").at, at)

    def test_with_two_locations_connecting_it_follows_the_newest_then_the_other(self):
        first = self.add_b()
        r = self.client.post("/settings/locations/", {**self.B, "gatekeeper_url": "https://gk-3.alpha.example",
                                                      "gatekeeper_id": "gk-alpha-3"})
        self.assertEqual(r.status_code, 302)
        third = self.tenant_a.locations.get(gatekeeper_id="gk-alpha-3")
        self.assertEqual(onboarding.target_for(self.tenant_a).location_id, third.pk)
        # Connecting the older one is recorded on its row, not as the checklist's step.
        at = self.tenant_a.onboarding_steps.get(step="connected").at
        self.client.post(f"/settings/locations/{first.pk}/health/", self.health(first),
                         content_type="application/json")
        self.assertEqual(self.tenant_a.onboarding_steps.get(step="connected").at, at)
        self.assertEqual(self.client.post(f"/settings/locations/{third.pk}/retire/").status_code, 302)
        self.assertEqual(onboarding.target_for(self.tenant_a).location_id, first.pk)
