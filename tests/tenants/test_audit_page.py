import re

from portal.csp import DEFAULT_HEADER
from tenants.models import Tenant
from tests.portal.base import BaseTestCase
from tests.support import set_active_location

URL = "/audit/"


def csp_directives(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


class AuditPageTestCase(BaseTestCase):
    def test_it_renders_the_audit_shell_for_the_tenant_admin(self):
        self.login(self.alice)
        r = self.client.get(URL)
        self.assertEqual(r.status_code, 200)
        self.assertTemplateUsed(r, "tenants/audit.html")
        self.assertEqual(r.context["tenant"], self.tenant_a)
        self.assertEqual(r.context["gatekeeper_url"], "https://gk.alpha.example/dualkey")
        self.assertEqual(r.context["grant_url"], "/api/v1/audit/grant")
        self.assertContains(r, 'data-grant-url="/api/v1/audit/grant"')
        self.assertContains(r, 'data-gatekeeper-url="https://gk.alpha.example/dualkey"')
        self.assertContains(r, "/static/js/audit/main.js")
        self.assertNotContains(r, "Beta")

    def test_it_has_every_filter(self):
        self.login(self.alice)
        html = self.client.get(URL).content.decode()
        for name, kind in [("since", "datetime-local"), ("until", "datetime-local"), ("client_ip", "text"),
                           ("sub", "text"), ("key_prefix", "text"), ("limit", "number")]:
            self.assertRegex(html, rf'<input type="{kind}" id="[\w-]+" name="{name}"')
        for name in ("op", "outcome"):
            self.assertIn(f'name="{name}"', html)
        for op in ("get", "list", "put", "delete", "audit", "request"):
            self.assertIn(f'<option value="{op}">', html)
        self.assertNotIn('<option value="sign">', html)  # never written to the log

    def test_its_csp_names_exactly_the_tenants_gatekeeper(self):
        self.login(self.alice)
        csp = self.client.get(URL)["Content-Security-Policy"]
        directives = csp_directives(csp)
        self.assertEqual(directives["connect-src"], "'self' https://gk.alpha.example")
        self.assertEqual(directives["img-src"], "'self'")  # no storage: the page fetches no objects
        self.assertEqual(directives["script-src"], "'self'")
        self.assertEqual(directives["style-src"], "'self'")
        self.assertEqual(directives["default-src"], "'self'")
        self.assertEqual(directives["frame-ancestors"], "'none'")
        self.assertNotIn("amazonaws", csp)
        self.assertNotIn("beta", csp)

    def test_charlies_page_names_his_gatekeeper(self):
        self.login(self.charlie)
        r = self.client.get(URL)
        self.assertEqual(csp_directives(r["Content-Security-Policy"])["connect-src"], "'self' https://gk.beta.example")
        self.assertContains(r, 'data-gatekeeper-url="https://gk.beta.example"')
        self.assertNotContains(r, "alpha")

    def test_it_has_no_inline_script(self):
        self.login(self.alice)
        html = self.client.get(URL).content.decode()
        tags = re.findall(r"<script[^>]*>", html)
        self.assertEqual(tags, ['<script type="module" src="/static/js/lib/page.js">',  # base.html's
                                '<script type="module" src="/static/js/audit/main.js">'])
        self.assertNotRegex(html, r"\son[a-z]+=")

    def test_the_nav_links_to_it_for_admins_only(self):
        self.login(self.alice)
        self.assertContains(self.client.get("/tickets/"), f'<a href="{URL}">Audit log</a>', html=True)
        self.login(self.bob)
        self.assertNotContains(self.client.get("/tickets/"), f'href="{URL}"')

    def test_it_explains_a_missing_gatekeeper_and_loads_no_script(self):
        set_active_location(self.tenant_a, gatekeeper_url="", gatekeeper_id="")
        self.login(self.alice)
        r = self.client.get(URL)
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, "no gatekeeper configured")
        self.assertNotContains(r, "data-audit-root")
        self.assertNotContains(r, "audit/main.js")
        self.assertEqual(r["Content-Security-Policy"], DEFAULT_HEADER)

    def test_it_returns_403_for_staff(self):
        self.login(self.bob)
        r = self.client.get(URL)
        self.assertEqual(r.status_code, 403)
        self.assertNotContains(r, "gk.alpha.example", status_code=403)

    def test_it_returns_404_for_vendor_support(self):
        self.login(self.victor)
        self.assertEqual(self.client.get(URL).status_code, 404)

    def test_it_returns_404_for_a_suspended_tenant(self):
        Tenant.objects.filter(pk=self.tenant_a.pk).update(status=Tenant.Status.SUSPENDED)
        self.login(self.alice)
        self.assertEqual(self.client.get(URL).status_code, 404)

    def test_it_requires_login(self):
        self.assertRedirects(self.client.get(URL), f"/accounts/login/?next={URL}")

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(URL).status_code, 405)


def test_the_op_filter_offers_exactly_the_ops_the_gatekeeper_records():
    from gatekeeper.errors import AUDIT_OPS
    from tenants.views import AUDIT_SEARCH_OPS

    assert sorted(AUDIT_SEARCH_OPS) == sorted(AUDIT_OPS)
