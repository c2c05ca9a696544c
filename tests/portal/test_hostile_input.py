"""Every page and form against hostile input: bad ids in URLs, huge and
non-numeric numbers, non-UTF-8 bytes in query strings and bodies, missing
fields, control characters, very long values. Each answer is a 4xx or the form
again with its errors: never a 500 (the test client re-raises a view's
exception, so one would fail here with its traceback).

The API is fuzzed against its schema in test_api_fuzz.py; the pages have no
schema, so these are the cases, written out.
"""

from django.test import override_settings

from tenants.services import create_tenant
from tests.portal.base import BaseTestCase

FORM = "application/x-www-form-urlencoded"
LONG = "x" * 100_000
HOSTILE_VALUES = [
    "", " ", LONG, "a\x00b", "\x1b[31m\r\nSet-Cookie: x=y", "<script>alert(1)</script>", "\ufffd\ufffd",
    "９", "-1", "1e3", "9" * 5000, "'; DROP TABLE tenants_tenant; --", "https://[::1", "\u202e\u0000",
]
# Bodies and query strings that are not UTF-8, or not form-encoded at all.
RAW_BODIES = [
    (b"name=%ff%fe&slug=\xff\xfe&username=%c3%28", FORM),
    (b"\xff\xfe\xfd", FORM),
    (b"a=1&" * 1500, FORM),  # over DATA_UPLOAD_MAX_NUMBER_FIELDS
    (b"--x\r\nnot a part", "multipart/form-data; boundary=x"),
    (b"whatever", "multipart/form-data"),  # no boundary
    (b'{"name": "json"}', "application/json"),
]
RAW_QUERIES = ["page=%ff&number=%fe", "page=\xff", "number=%00", "page=" + "9" * 5000, "number=1&number=x&page="]


class HostileInputTestCase(BaseTestCase):
    def assertRefused(self, response, *allowed):
        self.assertIn(response.status_code, allowed or (400,), response.content[:300])

    def assertFormErrors(self, response, form_name, status=400):
        """The form again, with its errors: a 400 (our forms; Django's login says 200)."""
        self.assertEqual(response.status_code, status, response.content[:300])
        self.assertTrue(response.context[form_name].errors)

    def assertHandled(self, response, form_name, status=400):
        """Taken (some hostile values are valid somewhere: "-1" as a username, "" as a
        not-yet-set bucket), or the form again with its errors."""
        if response.status_code not in (200, 302) or status == 200:
            self.assertFormErrors(response, form_name, status)

    def post_each_field(self, url, valid, form_name, *, status=400, optional=()):
        for field in valid:
            for value in HOSTILE_VALUES:
                with self.subTest(url=url, field=field, value=value[:20]):
                    self.assertHandled(self.client.post(url, {**valid, field: value}), form_name, status)
            if field in optional:
                continue
            with self.subTest(url=url, missing=field):
                self.assertFormErrors(self.client.post(url, {k: v for k, v in valid.items() if k != field}),
                                      form_name, status)

    def post_raw(self, url):
        for body, content_type in RAW_BODIES:
            with self.subTest(url=url, body=body[:20], content_type=content_type):
                r = self.client.generic("POST", url, body, content_type=content_type)
                self.assertLess(r.status_code, 500)
                self.assertGreaterEqual(r.status_code, 200)

    # Every hostile value is a failed sign-in: lift the throttle's limit (but keep it
    # counting, so hostile usernames go through its records too).
    @override_settings(AXES_FAILURE_LIMIT=10_000)
    def test_the_login_form(self):
        url = "/accounts/login/"
        self.post_each_field(url, {"username": "alice", "password": "password"}, "form", status=200)
        self.post_raw(url)
        for query in RAW_QUERIES + ["next=%ff", "next=%00", "next=//evil.example", "next=" + LONG]:
            with self.subTest(query=query[:30]):
                self.assertEqual(self.client.get(url, QUERY_STRING=query).status_code, 200)

    def test_the_storage_form(self):
        self.login(self.alice)
        valid = {
            "data_location": "customer", "region": "us-west-2", "bucket": "alpha-own-bucket",
            "gatekeeper_url": "https://gatekeeper.alpha.example", "gatekeeper_id": "gk-alpha-2",
            "storage_origin": "https://alpha-own-bucket.s3.us-west-2.amazonaws.com",
        }
        self.post_each_field("/settings/storage/", valid, "storage_form", optional=set(valid) - {"data_location"})
        self.post_raw("/settings/storage/")

    def test_the_token_forms(self):
        self.login(self.alice)
        for value in ["", LONG, "a\x00b"]:
            with self.subTest(value=value[:20]):
                self.assertFormErrors(self.client.post("/settings/tokens/", {"name": value}), "token_form")
        self.assertFormErrors(self.client.post("/settings/tokens/", {}), "token_form")
        self.post_raw("/settings/tokens/")
        for token_id in ["abc", "-1", "0", str(2**31), str(2**63), "9" * 5000, "%ff", str(self.agent_b.id)]:
            with self.subTest(token_id=token_id[:20]):
                self.assertRefused(self.client.post(f"/settings/tokens/{token_id}/revoke/"), 404)
        self.agent_b.refresh_from_db()
        self.assertIsNone(self.agent_b.revoked_at)

    def test_the_members_forms(self):
        self.login(self.alice)
        self.post_each_field("/settings/members/invite/",
                             {"username": "dora", "email": "dora@alpha.example", "role": "staff"}, "invite_form")
        self.post_raw("/settings/members/invite/")
        bob = self.bob.membership
        for value in HOSTILE_VALUES + ["owner", "ADMIN"]:
            with self.subTest(role=value[:20]):
                self.assertRefused(self.client.post(f"/settings/members/{bob.id}/role/", {"role": value}))
        self.post_raw(f"/settings/members/{bob.id}/role/")
        for bad_id in ["abc", "-1", "0", str(2**31), str(2**63), "9" * 5000, "%ff", str(self.charlie.membership.id)]:
            for suffix in [f"{bad_id}/role/", f"{bad_id}/remove/", f"invitations/{bad_id}/resend/",
                           f"invitations/{bad_id}/revoke/"]:
                with self.subTest(url=suffix[:40]):
                    self.assertRefused(self.client.post(f"/settings/members/{suffix}", {"role": "admin"}), 404)
        bob.refresh_from_db()
        self.assertEqual(bob.role, "staff")

    def test_the_support_forms(self):
        self.login(self.victor)
        self.post_each_field(
            "/support/tenants/new/", {"slug": "gamma", "name": "Gamma", "data_location": "vendor", "region": ""},
            "form", optional={"region"},
        )
        self.post_raw("/support/tenants/new/")
        # Support invites only into a tenant without an admin: a fresh one.
        create_tenant(slug="omega", name="Omega", region="us-east-1")
        self.post_each_field(
            "/support/tenants/omega/invite/", {"username": "dora", "email": "dora@omega.example"}, "invite_form"
        )
        self.post_raw("/support/tenants/omega/invite/")
        for value in HOSTILE_VALUES + [LONG]:
            with self.subTest(status=value[:20]):
                self.assertFormErrors(self.client.post("/support/tenants/alpha/status/", {"status": value}),
                                      "status_form")
        self.post_raw("/support/tenants/alpha/status/")
        for slug in ["%ff", "caf%C3%A9", "a" * 10_000, "..", "alpha%00"]:
            for suffix in ["", "invite/", "status/", "invitations/1/resend/", "invitations/1/revoke/"]:
                with self.subTest(slug=slug[:20], suffix=suffix):
                    send = self.client.post if suffix else self.client.get
                    self.assertRefused(send(f"/support/tenants/{slug}/{suffix}"), 404)

    def test_the_sign_in_settings_form(self):
        self.login(self.alice)
        valid = {"sso_enabled": "on", "issuer": "https://idp.alpha.example", "client_id": "portal",
                 "client_secret": "secret", "email_domains": "alpha.example", "default_role": "staff",
                 "admin_group": "admins"}
        self.post_each_field("/settings/sign-in/", valid, "form",
                             optional={"sso_enabled", "email_domains", "admin_group", "client_secret"})  # a secret is stored by then
        self.post_raw("/settings/sign-in/")

    def test_the_second_factor_and_sso_forms(self):
        for value in HOSTILE_VALUES:
            with self.subTest(identifier=value[:20]):
                self.assertRefused(self.client.post("/accounts/sso/", {"identifier": value}), 400)
        self.post_raw("/accounts/sso/")
        for query in RAW_QUERIES + ["code=%ff&state=%00", "error=%ff", "state=" + "x" * 5000]:
            with self.subTest(query=query[:30]):
                self.assertRefused(self.client.get("/accounts/sso/callback/", QUERY_STRING=query), 400)
        self.post_raw("/accounts/mfa/")  # nobody waiting: back to the login page
        for url in ["/accounts/mfa/passkey/options/", "/accounts/mfa/passkey/"]:
            self.post_raw(url)
        self.login(self.bob)
        self.client.get("/accounts/security/totp/")
        for value in HOSTILE_VALUES:
            with self.subTest(code=value[:20]):
                self.assertFormErrors(self.client.post("/accounts/security/totp/", {"code": value}), "totp_form")
        for url in ["/accounts/security/totp/", "/accounts/security/passkeys/", "/accounts/security/passkeys/options/",
                    "/accounts/security/recovery-codes/"]:
            self.post_raw(url)
        for bad_id in ["abc", "-1", "0", str(2**63), "9" * 5000, "%ff"]:
            with self.subTest(authenticator=bad_id[:20]):
                self.assertRefused(self.client.post(f"/accounts/security/authenticators/{bad_id}/remove/"), 404)
        self.login(self.alice)
        for bad_id in ["abc", "-1", "0", str(2**63), "9" * 5000, "%ff", str(self.charlie.membership.id)]:
            with self.subTest(membership=bad_id[:20]):
                self.assertRefused(self.client.post(f"/settings/members/{bad_id}/mfa/reset/"), 404)

    def test_the_invitation_page(self):
        url = "/invitations/accept/"
        for value in HOSTILE_VALUES + ["%ff", "a" * 10_000]:
            with self.subTest(token=value[:20]):
                self.assertRefused(self.client.get(url, {"token": value}), 404)
                self.assertRefused(self.client.post(url, {"token": value, "new_password1": value,
                                                          "new_password2": value}), 404)
        for query in RAW_QUERIES + ["token=%ff", "token=%00", "token=a&token=b"]:
            with self.subTest(query=query[:30]):
                self.assertRefused(self.client.get(url, QUERY_STRING=query), 404)
        self.post_raw(url)
        self.login(self.victor)
        for invitation_id in ["abc", "-1", "0", str(2**63), "9" * 5000, "%ff"]:
            for action in ["resend", "revoke"]:
                with self.subTest(invitation_id=invitation_id[:20], action=action):
                    self.assertRefused(self.client.post(f"/support/tenants/alpha/invitations/{invitation_id}/{action}/"),
                                       404)

    def test_bad_ids_in_urls(self):
        self.login(self.alice)
        for ticket_id in ["nope", "%ff", str(self.ticket.id)[:-1], str(self.ticket.id) + "0", "0" * 10_000,
                          str(self.ticket_b.id)]:
            with self.subTest(ticket_id=ticket_id[:40]):
                self.assertRefused(self.client.get(f"/tickets/{ticket_id}/"), 404)

    def test_hostile_query_strings(self):
        self.login(self.alice)
        for url in ["/", "/tickets/", "/settings/", "/settings/members/", "/audit/", "/api/v1/tickets"]:
            for query in RAW_QUERIES:
                with self.subTest(url=url, query=query[:30]):
                    self.assertLess(self.client.get(url, QUERY_STRING=query).status_code, 500)
        for number in ["abc", "-1", "0", "1.5", "1e3", "9" * 5000, "%00"]:
            with self.subTest(number=number[:20]):
                self.assertFormErrors(self.client.get("/tickets/", {"number": number}), "form")
        for number in [str(2**31), str(2**63), "9" * 30]:  # past any ticket, and past the column's range
            with self.subTest(number=number):
                self.assertEqual(self.client.get("/tickets/", {"number": number}).status_code, 200)
        for page in ["abc", "-1", "0", "9" * 5000, "nan", "1e400"]:
            with self.subTest(page=page[:20]):
                self.assertEqual(self.client.get("/tickets/", {"page": page}).status_code, 200)  # the nearest page

    def test_the_api_answers_its_own_refusals_in_json(self):
        # Refusals Django makes before DRF runs: an unknown path or id, a bad Host.
        for path in ["/api/v1/nope", "/api/v1/tickets/not-a-uuid", "/api/v2/tickets"]:
            with self.subTest(path=path):
                r = self.client.get(path)
                self.assertEqual((r.status_code, r.json()), (404, {"detail": "not found"}))
        r = self.client.get("/api/v1/tickets", HTTP_HOST="evil.example")
        self.assertEqual((r.status_code, r.json()), (400, {"detail": "bad request"}))
        # The pages keep their HTML.
        r = self.client.get("/nope/")
        self.assertEqual(r.status_code, 404)
        self.assertContains(r, "Not found", status_code=404)


class UnreadableBodyTestCase(BaseTestCase):
    def test_an_unreadable_form_body_gets_a_400_page_with_a_reason(self):
        self.login(self.alice)
        # More fields than DATA_UPLOAD_MAX_NUMBER_FIELDS: Django refuses to read it.
        body = "&".join(f"f{i}=x" for i in range(1500))
        r = self.client.post("/settings/tokens/", body, content_type="application/x-www-form-urlencoded")
        self.assertEqual(r.status_code, 400)
        self.assertContains(r, "could not be read", status_code=400)
