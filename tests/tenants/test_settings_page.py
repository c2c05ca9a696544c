import re
import tomllib

from gatekeeper import config as gatekeeper_config
from portal.csp import DEFAULT_HEADER
from tenants.models import Tenant
from tenants.signing import rotate_signing_key
from tests.portal.base import BaseTestCase
from tests.support import set_active_location

URL = "/settings/"
# One script: the check (which runs only where the page has a gatekeeper to check) and the approver keys.
CHECK_SCRIPT = '<script type="module" src="/static/js/settings/main.js">'
PAGE_SCRIPT = '<script type="module" src="/static/js/lib/page.js">'


def csp_directives(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def check_panel(html: str) -> str:
    """The opening tag of the gatekeeper check's panel."""
    return re.search(r'<section[^>]*data-testid="gatekeeper-check"[^>]*>', html).group(0)


class SettingsPageTestCase(BaseTestCase):
    def test_it_shows_the_tenants_settings_to_its_admin(self):
        self.login(self.alice)
        r = self.client.get(URL)
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, "https://gk.alpha.example/dualkey")
        self.assertContains(r, "alpha-reports")
        self.assertContains(r, "Alpha help button")
        self.assertContains(r, self.agent_a.prefix)
        self.assertNotContains(r, self.agent_a_token)  # shown once, at creation only
        self.assertNotContains(r, "Beta")

    def test_it_shows_the_vendor_key_in_the_gatekeepers_toml_form(self):
        key = self.tenant_a.signing_keys.get()
        self.login(self.alice)
        r = self.client.get(URL)
        toml = r.context["vendor_keys_toml"]
        self.assertEqual(toml, f'[vendor_keys]\n{key.kid} = "{key.public_key}"\n')
        self.assertContains(r, f"{key.kid} = &quot;{key.public_key}&quot;")

    def test_the_toml_is_accepted_by_the_gatekeepers_config_loader(self):
        rotate_signing_key(self.tenant_a)
        self.login(self.alice)
        toml = self.client.get(URL).context["vendor_keys_toml"]
        keys = tomllib.loads(toml)["vendor_keys"]
        self.assertEqual(len(keys), 2)  # the active key and the one it replaced
        flat = {f"vendor_keys.{kid}": value for kid, value in keys.items()}
        self.assertEqual(set(gatekeeper_config._vendor_keys(flat)), set(keys))

    def test_it_returns_403_for_staff(self):
        self.login(self.bob)
        r = self.client.get(URL)
        self.assertEqual(r.status_code, 403)
        self.assertNotContains(r, "gk.alpha.example", status_code=403)
        self.assertNotContains(r, "gatekeeper-check", status_code=403)
        self.assertEqual(self.client.head(URL).status_code, 403)

    def test_it_shows_charlie_his_own_tenant(self):
        self.login(self.charlie)
        r = self.client.get(URL)
        self.assertContains(r, "https://gk.beta.example")
        self.assertNotContains(r, "alpha")

    def test_it_returns_404_for_vendor_support(self):
        self.login(self.victor)
        self.assertEqual(self.client.get(URL).status_code, 404)

    def test_it_requires_login(self):
        self.assertRedirects(self.client.get(URL), f"/accounts/login/?next={URL}")

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(URL).status_code, 405)


class GatekeeperCheckPanelTestCase(BaseTestCase):
    """The panel's data: the check itself runs in the browser (tests/e2e/test_gatekeeper_check.py)."""

    def test_it_carries_the_gatekeeper_and_the_kids_to_compare_with(self):
        key = self.tenant_a.signing_keys.get()
        self.login(self.alice)
        r = self.client.get(URL)
        panel = check_panel(r.content.decode())
        self.assertIn("data-gatekeeper-check", panel)
        self.assertIn('data-gatekeeper-url="https://gk.alpha.example/dualkey"', panel)
        self.assertIn('data-gatekeeper-id="gk-alpha"', panel)
        self.assertIn(f'data-active-kid="{key.kid}"', panel)
        self.assertIn('data-previous-kids=""', panel)
        self.assertIn('data-clock-url="/settings/"', panel)
        # What the admin chose, for the check to compare with what the gatekeeper reports.
        self.assertIn(f'data-bucket="{self.tenant_a.bucket}"', panel)
        self.assertIn(f'data-region="{self.tenant_a.region}"', panel)
        self.assertContains(r, "Check again")
        self.assertContains(r, CHECK_SCRIPT)

    def test_previous_keys_are_listed_apart_from_the_active_one(self):
        old = self.tenant_a.signing_keys.get()
        new = rotate_signing_key(self.tenant_a)
        older = rotate_signing_key(self.tenant_a)  # two rotations: two previous keys
        self.login(self.alice)
        panel = check_panel(self.client.get(URL).content.decode())
        self.assertIn(f'data-active-kid="{older.kid}"', panel)
        previous = re.search(r'data-previous-kids="([^"]*)"', panel).group(1).split()
        self.assertEqual(sorted(previous), sorted([old.kid, new.kid]))

    def test_charlie_gets_his_own_gatekeeper_and_keys(self):
        key = self.tenant_b.signing_keys.get()
        self.login(self.charlie)
        r = self.client.get(URL)
        panel = check_panel(r.content.decode())
        self.assertIn('data-gatekeeper-url="https://gk.beta.example"', panel)
        self.assertIn('data-gatekeeper-id="gk-beta"', panel)
        self.assertIn(f'data-active-kid="{key.kid}"', panel)
        self.assertEqual(csp_directives(r["Content-Security-Policy"])["connect-src"], "'self' https://gk.beta.example https://beta-reports.s3.eu-central-1.amazonaws.com")
        self.assertNotContains(r, "alpha")

    def test_its_csp_names_exactly_the_tenants_gatekeeper_and_storage(self):
        """Storage too: the onboarding verification uploads a probe object and reads it back."""
        self.login(self.alice)
        csp = self.client.get(URL)["Content-Security-Policy"]
        directives = csp_directives(csp)
        self.assertEqual(directives["connect-src"], "'self' https://gk.alpha.example https://alpha-reports.s3.eu-west-1.amazonaws.com")
        self.assertEqual(directives["script-src"], "'self'")
        self.assertEqual(directives["img-src"], "'self'")
        self.assertEqual(directives["style-src"], "'self'")
        self.assertEqual(directives["default-src"], "'self'")
        self.assertEqual(directives["frame-ancestors"], "'none'")
        self.assertNotIn("blob:", csp)  # nothing from storage is shown
        self.assertNotIn("beta", csp)

    def test_it_has_no_inline_script(self):
        self.login(self.alice)
        html = self.client.get(URL).content.decode()
        # Every page's own (base.html: local times, confirmations), then the check's.
        self.assertEqual(re.findall(r"<script[^>]*>", html), [PAGE_SCRIPT, CHECK_SCRIPT])
        self.assertNotRegex(html, r"\son[a-z]+=")
        self.assertNotRegex(html, r"\sstyle=")

    def test_without_a_gatekeeper_url_it_says_so_and_checks_nothing(self):
        set_active_location(self.tenant_a, gatekeeper_url="", gatekeeper_id="")
        self.login(self.alice)
        r = self.client.get(URL)
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, "No gatekeeper URL is configured yet")
        self.assertNotIn("data-gatekeeper-check", check_panel(r.content.decode()))
        # base.html's script, and the page's, which finds no gatekeeper to check (only the approver keys to offer).
        self.assertEqual(re.findall(r"<script[^>]*>", r.content.decode()), [PAGE_SCRIPT, CHECK_SCRIPT])
        self.assertNotContains(r, "Check again")
        self.assertEqual(r["Content-Security-Policy"], DEFAULT_HEADER)

    def test_a_gatekeeper_url_without_an_id_is_still_checked(self):
        """The check then tells the admin which id the gatekeeper has."""
        Tenant.objects.filter(pk=self.tenant_a.pk).update(gatekeeper_id="")
        self.login(self.alice)
        r = self.client.get(URL)
        panel = check_panel(r.content.decode())
        self.assertIn('data-gatekeeper-id=""', panel)
        self.assertContains(r, CHECK_SCRIPT)
        self.assertEqual(csp_directives(r["Content-Security-Policy"])["connect-src"], "'self' https://gk.alpha.example")

    def test_a_rejected_form_checks_the_saved_gatekeeper_not_the_submitted_one(self):
        self.login(self.alice)
        r = self.client.post("/settings/storage/", {
            "data_location": "customer", "region": "not a region!", "bucket": "alpha-reports",
            "gatekeeper_url": "https://gk.elsewhere.example", "gatekeeper_id": "gk-elsewhere",
            "storage_origin": "https://alpha-reports.s3.eu-west-1.amazonaws.com"})
        self.assertEqual(r.status_code, 400)
        panel = check_panel(r.content.decode())
        self.assertIn('data-gatekeeper-url="https://gk.alpha.example/dualkey"', panel)
        self.assertIn('data-gatekeeper-id="gk-alpha"', panel)
        self.assertEqual(csp_directives(r["Content-Security-Policy"])["connect-src"], "'self' https://gk.alpha.example https://alpha-reports.s3.eu-west-1.amazonaws.com")

    def test_a_new_tokens_page_gets_the_same_csp(self):
        self.login(self.alice)
        r = self.client.post("/settings/tokens/", {"name": "Second button"})
        self.assertEqual(r.status_code, 200)
        self.assertEqual(csp_directives(r["Content-Security-Policy"])["connect-src"], "'self' https://gk.alpha.example https://alpha-reports.s3.eu-west-1.amazonaws.com")
        self.assertContains(r, CHECK_SCRIPT)

    def test_head_answers_for_the_portal_clock(self):
        self.login(self.alice)
        r = self.client.head(URL)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.content, b"")
