from portal.csp import DEFAULT_HEADER
from tests.portal.base import BaseTestCase


class HomeTestCase(BaseTestCase):
    def test_it_sends_anonymous_visitors_to_login(self):
        self.assertRedirects(self.client.get("/"), "/accounts/login/")

    def test_it_sends_members_to_their_tickets(self):
        self.login(self.bob)
        self.assertRedirects(self.client.get("/"), "/tickets/")

    def test_it_sends_vendor_support_to_support(self):
        self.login(self.victor)
        self.assertRedirects(self.client.get("/"), "/support/")

    def test_it_rejects_a_wrong_method(self):
        self.assertEqual(self.client.post("/").status_code, 405)

    def test_it_tells_a_user_without_tenant(self):
        from django.contrib.auth import get_user_model

        self.login(get_user_model().objects.create_user("nobody"))
        self.assertContains(self.client.get("/"), "not a member", status_code=404)


class LoginTestCase(BaseTestCase):
    def test_it_logs_in_with_a_password(self):
        r = self.client.post("/accounts/login/", {"username": "alice", "password": "password"})
        self.assertRedirects(r, "/", fetch_redirect_response=False)
        self.assertRedirects(self.client.get("/"), "/tickets/")

    def test_it_refuses_a_wrong_password(self):
        r = self.client.post("/accounts/login/", {"username": "alice", "password": "nope"})
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, "correct username and password")

    def test_logout_is_post_only(self):
        self.login(self.alice)
        self.assertEqual(self.client.get("/accounts/logout/").status_code, 405)
        self.assertRedirects(self.client.post("/accounts/logout/"), "/accounts/login/")


class ContentSecurityPolicyTestCase(BaseTestCase):
    def test_every_page_gets_the_strict_default(self):
        self.assertEqual(
            DEFAULT_HEADER,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        )
        self.assertEqual(self.client.get("/accounts/login/")["Content-Security-Policy"], DEFAULT_HEADER)
        self.login(self.alice)
        self.assertEqual(self.client.get("/settings/members/")["Content-Security-Policy"], DEFAULT_HEADER)

    def test_the_ticket_list_may_reach_exactly_its_tenants_gatekeeper_and_storage(self):
        # Its script reads each row's summary.json from the tenant's storage.
        self.login(self.alice)
        policy = self.client.get("/tickets/")["Content-Security-Policy"]
        self.assertIn("connect-src 'self' https://gk.alpha.example https://alpha-reports.s3.eu-west-1.amazonaws.com;",
                      policy)
        self.assertNotIn("beta", policy)

    def test_api_responses_get_it_too(self):
        self.assertEqual(self.client.get("/api/v1/tickets")["Content-Security-Policy"], DEFAULT_HEADER)

    def test_templates_have_no_inline_script_or_style(self):
        import re
        from pathlib import Path

        for path in (Path(__file__).resolve().parents[2] / "templates").rglob("*.html"):
            text = path.read_text()
            with self.subTest(template=str(path)):
                self.assertNotIn("<style", text)
                self.assertNotRegex(text, r"\sstyle=")
                self.assertNotRegex(text, r"\son[a-z]+=")  # event handler attributes
                self.assertNotIn("javascript:", text)
                for tag in re.findall(r"<script[^>]*>", text):
                    self.assertIn("src=", tag)


class StaticFilesTestCase(BaseTestCase):
    def test_it_serves_the_stylesheet(self):
        r = self.client.get("/static/css/portal.css")
        self.assertEqual(r.status_code, 200)
