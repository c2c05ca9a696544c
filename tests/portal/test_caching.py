"""No answer of the portal is kept by a browser or a proxy unless it says so
(portal/caching.py): the ticket list, a report page, the API, a refusal, a 404."""

from __future__ import annotations

from django.test import override_settings

from tests.portal.base import BaseTestCase


class NoStoreByDefaultTestCase(BaseTestCase):
    def test_pages_a_signed_in_person_sees_are_not_stored(self):
        self.login(self.alice)
        for url in ("/tickets/", f"/tickets/{self.ticket.id}/", "/audit/"):
            r = self.client.get(url)
            self.assertEqual((r.status_code, r["Cache-Control"]), (200, "no-store"), url)

    def test_api_answers_and_refusals_are_not_stored(self):
        self.login(self.bob)
        r = self.client.get("/api/v1/tickets")
        self.assertEqual((r.status_code, r["Cache-Control"]), (200, "no-store"))
        self.client.logout()
        refused = self.client.get("/api/v1/tickets", HTTP_AUTHORIZATION="Token dkat_nonsense")
        self.assertEqual((refused.status_code, refused["Cache-Control"]), (401, "no-store"))

    def test_another_tenants_ticket_is_not_found_and_not_stored(self):
        self.login(self.bob)
        r = self.client.get(f"/tickets/{self.ticket_b.id}/")
        self.assertEqual((r.status_code, r["Cache-Control"]), (404, "no-store"))

    def test_an_answer_with_its_own_cache_control_keeps_it(self):
        # Django's login view is never_cache: its own, fuller header stands.
        r = self.client.get("/accounts/login/")
        self.assertEqual(r.status_code, 200)
        self.assertIn("private", r["Cache-Control"])
        self.assertIn("no-store", r["Cache-Control"])

    @override_settings(WHITENOISE_USE_FINDERS=True)
    def test_static_files_keep_their_own_caching(self):
        from django.test import Client

        # WhiteNoise reads its settings when the middleware is built: a new client builds it.
        r = Client().get("/static/css/portal.css")
        self.assertEqual(r.status_code, 200)
        self.assertNotIn("no-store", r.get("Cache-Control", ""))
