import json
import time

from portal.tickets.grants import PUT_GRANT_LIFETIME
from portal.tickets.models import Ticket, TicketNote, TicketFile
from tenants.models import Tenant
from tests.portal.base import BaseTestCase, decode_grant, manifest_entry

URL = "/api/v1/tickets"


class CreateTicketTestCase(BaseTestCase):
    def post(self, body, token=None, **extra):
        headers = self.agent_headers(token or self.agent_a_token)
        data = body if isinstance(body, str) else json.dumps(body)
        return self.client.post(URL, data, content_type="application/json", **headers, **extra)

    def valid_body(self, **changes):
        return {"files": [manifest_entry("screenshot.png")], **changes}

    def test_it_creates_a_ticket_with_its_manifest(self):
        r = self.post(self.valid_body())
        self.assertEqual(r.status_code, 201)
        body = r.json()
        ticket = Ticket.objects.get(id=body["id"])
        self.assertEqual(ticket.tenant, self.tenant_a)
        self.assertEqual(ticket.agent, self.agent_a)
        self.assertEqual(body["status"], "uploading")
        self.assertEqual(body["prefix"], f"tickets/{ticket.id.hex}/")
        self.assertEqual(body["gatekeeper_url"], "https://gk.alpha.example/dualkey")
        self.assertEqual(
            body["files"],
            [{**manifest_entry("screenshot.png"), "key": f"tickets/{ticket.id.hex}/screenshot.png"}],
        )
        self.assertEqual(set(body), {"id", "number", "status", "prefix", "gatekeeper_url", "gatekeeper_id",
                                     "grant", "grant_expires_at", "files"})
        # The agent compares both with its own pin (docs/agent.md).
        self.assertEqual(body["gatekeeper_id"], self.tenant_a.gatekeeper_id)

    def test_it_numbers_tickets_per_tenant(self):
        first = self.post(self.valid_body()).json()["number"]
        second = self.post(self.valid_body()).json()["number"]
        other = self.post(self.valid_body(), token=self.agent_b_token).json()["number"]
        self.assertEqual((first, second), (2, 3))  # A's fixture ticket is #1
        self.assertEqual(other, 2)  # so is B's

    def test_it_returns_a_put_grant_for_exactly_the_tickets_prefix(self):
        before = int(time.time())
        body = self.post(self.valid_body()).json()
        claims = decode_grant(body["grant"], self.tenant_a)
        self.assertEqual(claims["scope"], {"prefix": body["prefix"], "ops": ["put"]})
        self.assertEqual(claims["aud"], "gk-alpha")
        self.assertEqual(claims["iss"], "http://127.0.0.1:8000")
        self.assertEqual(claims["sub"], f"agent:{self.agent_a.id}")
        self.assertEqual(claims["name"], "Alpha help button")
        self.assertEqual(claims["exp"] - claims["iat"], PUT_GRANT_LIFETIME)
        self.assertLessEqual(PUT_GRANT_LIFETIME, 300)
        self.assertGreaterEqual(claims["iat"], before)
        self.assertTrue(body["grant_expires_at"].endswith("Z"))

    def test_each_ticket_gets_its_own_grant(self):
        one = decode_grant(self.post(self.valid_body()).json()["grant"], self.tenant_a)
        two = decode_grant(self.post(self.valid_body()).json()["grant"], self.tenant_a)
        self.assertNotEqual(one["jti"], two["jti"])
        self.assertNotEqual(one["scope"]["prefix"], two["scope"]["prefix"])

    def test_it_signs_with_the_agents_own_tenant_key(self):
        body = self.post(self.valid_body(), token=self.agent_b_token).json()
        claims = decode_grant(body["grant"], self.tenant_b)
        self.assertEqual(claims["aud"], "gk-beta")
        with self.assertRaises(Exception):
            decode_grant(body["grant"], self.tenant_a)

    def test_it_normalizes_sha256_to_lowercase(self):
        entry = manifest_entry()
        body = self.post(self.valid_body(files=[{**entry, "sha256": entry["sha256"].upper()}])).json()
        self.assertEqual(body["files"][0]["sha256"], entry["sha256"])

    def test_it_requires_a_token(self):
        r = self.client.post(URL, json.dumps(self.valid_body()), content_type="application/json")
        self.assertEqual(r.status_code, 401)
        self.assertEqual(r["WWW-Authenticate"], "Token")

    def test_it_rejects_an_unknown_token(self):
        r = self.post(self.valid_body(), token="dkat_nope")
        self.assertEqual(r.status_code, 401)

    def test_it_rejects_a_malformed_authorization_header(self):
        r = self.client.post(URL, json.dumps(self.valid_body()), content_type="application/json",
                             HTTP_AUTHORIZATION="Token a b")
        self.assertEqual(r.status_code, 401)

    def test_it_rejects_a_revoked_token(self):
        self.agent_a.revoked_at = self.agent_a.created_at
        self.agent_a.save()
        self.assertEqual(self.post(self.valid_body()).status_code, 401)

    def test_it_rejects_tokens_of_a_suspended_tenant(self):
        Tenant.objects.filter(pk=self.tenant_a.pk).update(status=Tenant.Status.SUSPENDED)
        self.assertEqual(self.post(self.valid_body()).status_code, 401)

    def test_it_records_when_the_token_was_used(self):
        self.post(self.valid_body())
        self.agent_a.refresh_from_db()
        self.assertIsNotNone(self.agent_a.last_used_at)

    def test_a_logged_in_person_cannot_create_tickets(self):
        self.login(self.alice)
        r = self.client.post(URL, json.dumps(self.valid_body()), content_type="application/json")
        self.assertEqual(r.status_code, 403)

    def test_it_answers_409_without_a_gatekeeper(self):
        Tenant.objects.filter(pk=self.tenant_a.pk).update(gatekeeper_url="")
        r = self.post(self.valid_body())
        self.assertEqual(r.status_code, 409)
        self.assertIn("gatekeeper", r.json()["detail"])
        self.assertEqual(Ticket.objects.filter(tenant=self.tenant_a).count(), 1)

    def test_it_rejects_a_wrong_method(self):
        r = self.client.put(URL, "{}", content_type="application/json", **self.agent_headers(self.agent_a_token))
        self.assertEqual(r.status_code, 405)

    def assertRejected(self, body, field):
        r = self.post(body)
        self.assertEqual(r.status_code, 400, r.content)
        self.assertIn(field, r.json())
        self.assertEqual(Ticket.objects.filter(tenant=self.tenant_a).count(), 1)
        return r.json()[field]

    def test_it_rejects_invalid_json(self):
        r = self.post("{not json")
        self.assertEqual(r.status_code, 400)
        self.assertIn("JSON", r.json()["detail"])

    def test_it_rejects_a_body_that_is_not_an_object(self):
        self.assertRejected([1, 2], "non_field_errors")

    def test_it_rejects_json_nested_too_deeply(self):
        # Python's json module raises RecursionError, not ValueError, on these: it was a 500.
        deep_field = json.dumps(self.valid_body(files=[{**manifest_entry(), "size": "SIZE"}]))
        deep_field = deep_field.replace('"SIZE"', "[" * 40 + "]" * 40)  # parses, then too deep
        for body in ["[" * 100_000, '{"a":' * 50_000, deep_field]:
            with self.subTest(body=body[:20]):
                r = self.post(body)
                self.assertEqual(r.status_code, 400)
                self.assertIn("nested more than 32 levels", r.json()["detail"])
        self.assertEqual(Ticket.objects.filter(tenant=self.tenant_a).count(), 1)

    def test_it_rejects_a_lone_surrogate(self):
        # "\ud800" is valid JSON but not Unicode: quoting it in "…is not a valid choice" was a 500.
        entry = json.dumps(manifest_entry())[:-1] + ', "content_type": "\\ud800"}'
        for body in ['{"files": [%s]}' % entry, '{"files": [{"name": "a\\udfffb"}]}',
                     '{"\\ud800": 1}']:
            with self.subTest(body=body):
                r = self.post(body)
                self.assertEqual(r.status_code, 400)
                self.assertIn("lone surrogate", r.json()["detail"])

    def test_it_refuses_a_body_over_the_upload_limit(self):
        with self.settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
            r = self.post(self.valid_body(files=[manifest_entry(f"f{i}.txt") for i in range(20)]))
        self.assertEqual(r.status_code, 413)
        self.assertIn("larger than 1000 bytes", r.json()["detail"])

    def test_it_refuses_a_subject_by_name(self):
        # What the user typed is report content: it goes in report.json, in the tenant's storage.
        reason = self.assertRejected(self.valid_body(subject="Printer on fire"), "subject")
        self.assertIn("report.json", reason[0])
        r = self.post(self.valid_body(subject="Printer on fire"))
        self.assertNotIn("Printer on fire", r.content.decode())  # names only, never values

    def test_it_refuses_unknown_fields_by_name(self):
        # Like `subject`: DRF would drop them quietly; the schema says additionalProperties: false.
        self.assertEqual(self.assertRejected(self.valid_body(priority="high"), "priority"), ["Unknown field."])
        errors = self.assertRejected(self.valid_body(files=[{**manifest_entry(), "path": "C:/Users/x"}]), "files")
        self.assertEqual(errors, {"0": {"path": ["Unknown field."]}})

    def test_it_names_unknown_fields_along_with_the_other_errors(self):
        r = self.post(self.valid_body(subject="x", files=[{**manifest_entry(), "size": 0, "note": "x"}]))
        self.assertEqual(r.status_code, 400)
        self.assertEqual(set(r.json()), {"subject", "files"})
        self.assertEqual(set(r.json()["files"]["0"]), {"size", "note"})

    def test_the_ticket_holds_only_what_the_vendor_needs(self):
        # Tenant, number, times, status, the submitting agent, and the manifest: nothing the user typed.
        # The help desk's workflow (stage, assignee, events) and that notes exist (author, time, size:
        # their text is in the tenant's storage) are vendor-held metadata too; support_accesses:
        # vendor support's requests to read it (tenants.models.SupportAccess); erasure: when and by
        # whom it was erased, and the gatekeeper's answers (keys, version ids, sizes; TicketErasure);
        # location: the storage location its files were written to (tenants.models.StorageLocation);
        # put_granted_at: when its last put grant was issued (an erasure waits out its uploads);
        # moves: the moves it was part of (portal.moves.models.MoveTicket: keys, sizes, SHA-256, states).
        self.assertEqual(
            {f.name for f in Ticket._meta.get_fields()},
            {"id", "tenant", "number", "status", "agent", "created_at", "completed_at", "files",
             "stage", "assignee", "events", "notes", "support_accesses", "erased_at", "erasure", "location",
             "put_granted_at", "moves"},
        )
        self.assertEqual({f.name for f in TicketNote._meta.get_fields()},
                         {"id", "ticket", "author", "author_name", "created_at", "size", "stored_at"})
        self.assertEqual(
            {f.name for f in TicketFile._meta.get_fields()}, {"id", "ticket", "name", "size", "content_type", "sha256"}
        )

    def test_it_requires_at_least_one_file(self):
        self.assertRejected(self.valid_body(files=[]), "files")

    def test_it_rejects_more_than_100_files(self):
        files = [manifest_entry(f"f{i}.txt") for i in range(101)]
        self.assertRejected(self.valid_body(files=files), "files")

    def test_it_accepts_100_files(self):
        files = [manifest_entry(f"f{i}.txt") for i in range(100)]
        self.assertEqual(self.post(self.valid_body(files=files)).status_code, 201)

    def test_it_rejects_duplicate_file_names(self):
        reason = self.assertRejected(self.valid_body(files=[manifest_entry(), manifest_entry()]), "files")
        self.assertIn("unique", str(reason))

    def test_it_rejects_bad_file_names(self):
        for name in ["", ".hidden", "../etc", "a/b", "a\\b", "a b", "x" * 201, "name\n", "ünï.txt", 7]:
            with self.subTest(name=name):
                self.assertRejected(self.valid_body(files=[{**manifest_entry(), "name": name}]), "files")

    def test_it_accepts_a_200_character_name(self):
        self.assertEqual(self.post(self.valid_body(files=[manifest_entry("x" * 200)])).status_code, 201)

    def test_it_rejects_bad_sizes(self):
        for size in [0, -1, 100 * 1024 * 1024 + 1, "big", None, True, "5", 5.5, 1e20]:
            with self.subTest(size=size):
                self.assertRejected(self.valid_body(files=[{**manifest_entry(), "size": size}]), "files")

    def test_it_takes_an_integral_float_as_json_schema_does(self):
        r = self.post(self.valid_body(files=[{**manifest_entry(), "size": 1234.0}]))
        self.assertEqual(r.status_code, 201)
        self.assertEqual(r.json()["files"][0]["size"], 1234)

    def test_it_accepts_the_largest_size(self):
        entry = {**manifest_entry(), "size": 100 * 1024 * 1024}
        self.assertEqual(self.post(self.valid_body(files=[entry])).status_code, 201)

    def test_it_rejects_content_types_outside_the_allow_list(self):
        for content_type in ["text/html", "image/svg+xml", "application/javascript", ""]:
            with self.subTest(content_type=content_type):
                entry = {**manifest_entry(), "content_type": content_type}
                self.assertRejected(self.valid_body(files=[entry]), "files")

    def test_it_rejects_bad_checksums(self):
        for sha256 in ["", "0" * 63, "0" * 65, "g" * 64, "0" * 64 + "\n"]:
            with self.subTest(sha256=sha256):
                entry = {**manifest_entry(), "sha256": sha256}
                self.assertRejected(self.valid_body(files=[entry]), "files")

    def test_it_rejects_a_file_entry_that_is_not_an_object(self):
        self.assertRejected(self.valid_body(files=["screenshot.png"]), "files")
