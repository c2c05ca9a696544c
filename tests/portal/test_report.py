import uuid

from tests.portal.base import BaseTestCase


class ReportPageTestCase(BaseTestCase):
    def url(self, ticket_id):
        return f"/tickets/{ticket_id}/"

    def test_it_renders_the_report_shell(self):
        self.login(self.bob)
        r = self.client.get(self.url(self.ticket.id))
        self.assertEqual(r.status_code, 200)
        self.assertTemplateUsed(r, "tickets/report.html")
        self.assertEqual(r.context["ticket"], self.ticket)
        self.assertEqual(r.context["tenant"], self.tenant_a)
        self.assertEqual([f.name for f in r.context["files"]], ["message.txt", "screenshot.png"])
        self.assertEqual(r.context["gatekeeper_url"], "https://gk.alpha.example/dualkey")
        self.assertEqual(r.context["grant_url"], f"/api/v1/tickets/{self.ticket.id}/grant")
        self.assertEqual(r.context["prefix"], f"tickets/{self.ticket.id.hex}/")
        self.assertContains(r, f"<title>Ticket #{self.ticket.number}", html=False)
        self.assertContains(r, f"<h1>Ticket #{self.ticket.number}</h1>", html=True)

    def test_it_leaves_the_subject_to_the_browser(self):
        # The subject is what the user typed: it lives in report.json, in the
        # tenant's storage. The page holds an empty slot the script fills in.
        self.login(self.bob)
        r = self.client.get(self.url(self.ticket.id))
        self.assertNotContains(r, "printer on fire")
        self.assertContains(r, '<p class="report-subject" data-testid="subject" hidden></p>', html=True)

    def test_its_csp_names_exactly_this_tenants_origins(self):
        self.login(self.bob)
        csp = self.client.get(self.url(self.ticket.id))["Content-Security-Policy"]
        storage = "https://alpha-reports.s3.eu-west-1.amazonaws.com"
        # The whole header, so nothing can be added unnoticed. Screenshots are
        # blob: URLs of the bytes the page hashed: no data: in img-src.
        self.assertEqual(csp, (
            "default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src 'self' blob: {storage}; "
            f"connect-src 'self' https://gk.alpha.example {storage}; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        ))
        self.assertNotIn("data:", csp)
        self.assertNotIn("beta", csp)

    def test_it_has_no_inline_script(self):
        self.login(self.bob)
        html = self.client.get(self.url(self.ticket.id)).content.decode()
        for tag in html.split("<script")[1:]:
            self.assertIn("src=", tag.split(">", 1)[0])

    def test_it_returns_404_for_another_tenants_ticket(self):
        self.login(self.charlie)
        r = self.client.get(self.url(self.ticket.id))
        self.assertEqual(r.status_code, 404)
        self.assertNotContains(r, "Alpha", status_code=404)

    def test_it_returns_404_for_an_unknown_ticket(self):
        self.login(self.alice)
        self.assertEqual(self.client.get(self.url(uuid.uuid4())).status_code, 404)

    def test_it_returns_404_for_vendor_support(self):
        self.login(self.victor)
        self.assertEqual(self.client.get(self.url(self.ticket.id)).status_code, 404)

    def test_it_requires_login(self):
        r = self.client.get(self.url(self.ticket.id))
        self.assertRedirects(r, f"/accounts/login/?next={self.url(self.ticket.id)}")

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(self.url(self.ticket.id)).status_code, 405)
