"""A tenant admin erases one ticket: the confirmation page, the delete grant, the
gatekeeper's answer relayed by the browser, the tombstone, and the receipt.

The browser's part is played here by the test: it takes the portal's grant to a real
gatekeeper (in-process, trusting tenant A's signing keys) in front of moto's S3 with
versioning on, and posts the gatekeeper's answer back. The receipt (in
STORAGES["receipts"], a moto bucket) is checked against what moto held."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time

import boto3
import pytest
from django.conf import settings
from django.urls import reverse

from gatekeeper import config as config_module
from gatekeeper.app import Gatekeeper, Request
from gatekeeper.audit import parse_search
from portal.tickets.models import Ticket, TicketErasure
from portal.tickets.services import change_workflow, create_note, note_stored
from tenants.signing import trusted_public_keys
from tests.gatekeeper.conftest import base_config, toml_dumps
from tests import support
from tests.portal.base import BaseTestCase

_buckets = itertools.count()


class EraseTestCase(BaseTestCase):
    @pytest.fixture(autouse=True)
    def _storage(self, moto_url, tmp_path):
        """Tenant A's bucket (versioned) behind its gatekeeper; the vendor's receipts bucket."""
        self.s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
        n = f"{os.getpid()}-{next(_buckets)}"
        self.bucket, self.receipts = f"alpha-{n}", f"receipts-{n}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        self.s3.create_bucket(Bucket=self.receipts)
        self.moto_url, self.tmp_path = moto_url, tmp_path
        with support.receipts_in(self.receipts, moto_url):
            yield

    def gatekeeper(self) -> Gatekeeper:
        config = base_config(self.moto_url, self.bucket, f"sqlite:///{self.tmp_path}/audit.db")
        config.update(gatekeeper_id=self.tenant_a.gatekeeper_id, issuer=settings.DUALKEY_PORTAL_ORIGIN,
                      vendor_keys={k.kid: k.public_key for k in trusted_public_keys(self.tenant_a)})
        path = self.tmp_path / "gk.toml"
        path.write_text(toml_dumps(config))
        return Gatekeeper(config_module.load(str(path), env={}))

    def put(self, key, *bodies):
        return [self.s3.put_object(Bucket=self.bucket, Key=key, Body=b)["VersionId"] for b in bodies]

    def versions(self, prefix) -> list[tuple[str, str, int, bool]]:
        page = self.s3.list_object_versions(Bucket=self.bucket, Prefix=prefix)
        return sorted([(v["Key"], v["VersionId"], v["Size"], False) for v in page.get("Versions", [])]
                      + [(m["Key"], m["VersionId"], 0, True) for m in page.get("DeleteMarkers", [])])

    def urls(self, ticket=None):
        ticket = ticket or self.ticket
        return {name: reverse(f"ticket-erase{suffix}", args=[ticket.id]) for name, suffix in
                (("page", ""), ("grant", "-grant"), ("done", "-done"), ("receipt", "-receipt"))}

    def post_json(self, url, body):
        return self.client.post(url, data=json.dumps(body), content_type="application/json")

    def ask_grant(self, ticket=None, confirm=None):
        ticket = ticket or self.ticket
        return self.post_json(self.urls(ticket)["grant"], {"confirm": str(ticket.number) if confirm is None else confirm})

    def erase_at_gatekeeper(self, grant, ticket=None) -> dict:
        ticket = ticket or self.ticket
        body = json.dumps({"ops": [{"op": "delete", "prefix": ticket.prefix}]}).encode()
        response = self.gk.handle(Request("POST", "/v1/sign", {"authorization": f"Bearer {grant}"}, body, "127.0.0.1"))
        assert response.status == 200, response.body
        return response.body

    def erase(self, ticket=None):
        """What the page's script does: grant, gatekeeper, relay."""
        grant = self.ask_grant(ticket)
        assert grant.status_code == 200, grant.content
        return self.post_json(self.urls(ticket)["done"], self.erase_at_gatekeeper(grant.json()["grant"], ticket))

    def setUp(self):
        super().setUp()
        self.gk = self.gatekeeper()
        prefix = self.ticket.prefix
        self.put(prefix + "screenshot.png", b"png-v1", b"png")  # a re-upload: two versions
        self.put(prefix + "message.txt", b"hi")
        self.note = note_stored(create_note(self.ticket, self.alice, 5), self.alice)
        self.put(self.note.key, b"note!")
        self.put(prefix + "stray.log", b"stray")
        self.s3.delete_object(Bucket=self.bucket, Key=prefix + "stray.log")  # only a marker shows it
        change_workflow(self.ticket, self.alice, stage=Ticket.Stage.OPEN, assignee=self.bob)
        self.other_prefix = self.ticket_b.prefix
        self.put(self.other_prefix + "logs.txt", b"beta's")

    # --- the whole story ------------------------------------------------------------

    def test_alice_erases_her_ticket_every_version_goes_and_the_receipt_says_what_moto_held(self):
        held = self.versions(self.ticket.prefix)
        assert len(held) == 6
        self.login(self.alice)
        response = self.erase()
        assert response.status_code == 200, response.content
        assert response.json() == {"state": "erased", "receipt_url": self.urls()["receipt"]}
        assert self.versions(self.ticket.prefix) == []
        assert len(self.versions(self.other_prefix)) == 1

        download = self.client.get(self.urls()["receipt"])
        assert download.status_code == 200
        assert download["Content-Disposition"] == f'attachment; filename="erasure-alpha-{self.ticket.number}.json"'
        receipt = json.loads(download.content)
        erasure = TicketErasure.objects.get(ticket=self.ticket)
        stored = self.s3.get_object(Bucket=self.receipts, Key=erasure.receipt_name)["Body"].read()
        assert stored == download.content
        assert sorted((o["key"], v["version_id"], v["size"], v["delete_marker"]) for o in receipt["objects"]
                      for v in o["versions"]) == held
        [request_id] = receipt["request_ids"]
        assert {v["request_id"] for o in receipt["objects"] for v in o["versions"]} == {request_id}
        by_key = {o["key"]: o for o in receipt["objects"]}
        shot = by_key[self.ticket.prefix + "screenshot.png"]
        assert shot["manifest"]["sha256"] == self.ticket_manifest["screenshot.png"]
        assert by_key[self.note.key]["note"] == {"id": str(self.note.id), "size": 5}
        assert receipt["ticket"]["number"] == self.ticket.number and receipt["tenant"] == "alpha"
        assert receipt["erased_by"] == {"id": self.alice.pk, "name": "Alice"}
        assert receipt["gatekeeper"]["id"] == "gk-alpha"
        assert receipt["versions"] == 6 and receipt["bytes"] == sum(size for _, _, size, _ in held)
        assert receipt["manifest_not_found"] == []
        # The gatekeeper's audit log has the request the receipt names.
        logged = self.gk.audit.search(parse_search({}, self.gk.cursor_key), time.time())[0]
        assert request_id in {row["request_id"] for row in logged}

    def test_after_erasure_only_the_tombstone_is_left(self):
        self.login(self.alice)
        self.erase()
        ticket = Ticket.objects.get(pk=self.ticket.pk)
        assert ticket.erased_at is not None and ticket.number == self.ticket.number
        assert (ticket.assignee, ticket.agent) == (None, None)
        assert not ticket.files.exists() and not ticket.notes.exists() and not ticket.events.exists()
        page = self.client.get(reverse("ticket-report", args=[ticket.id]))
        assert page.status_code == 200
        self.assertContains(page, "by Alice")
        self.assertNotContains(page, "screenshot.png")
        listed = self.client.get(reverse("tickets"))
        self.assertContains(listed, 'data-summary="erased"')
        response = self.client.post(reverse("ticket-workflow", args=[ticket.id]), {"stage": "closed"})
        assert response.status_code == 409 and not ticket.events.exists()
        self.login(self.bob)  # staff see the tombstone too, without the admin's link
        page = self.client.get(reverse("ticket-report", args=[ticket.id]))
        self.assertContains(page, "by Alice")
        self.assertNotContains(page, "erase-page-link")

    def test_an_erased_or_erasing_ticket_gets_no_more_grants(self):
        self.login(self.alice)
        assert self.ask_grant().status_code == 200  # confirmed: erasing from now on
        for url, body in ((reverse("api-ticket-grant", args=[self.ticket.id]), {}),
                          (reverse("api-ticket-notes", args=[self.ticket.id]), {"size": 3}),
                          (reverse("api-summary-grant"), {"tickets": [str(self.ticket.id)]})):
            response = self.post_json(url, body)
            assert response.status_code == 409 and "erased" in response.json()["detail"], (url, response.content)
        response = self.client.post(reverse("api-ticket-put-grant", args=[self.ticket.id]),
                                    **self.agent_headers(self.agent_a_token))
        assert response.status_code == 409 and "erased" in response.json()["detail"], response.content

    def test_the_page_shows_what_will_go_and_names_the_gatekeeper_in_its_csp(self):
        self.login(self.alice)
        page = self.client.get(self.urls()["page"])
        assert page.status_code == 200
        self.assertContains(page, "screenshot.png")
        self.assertContains(page, 'data-testid="erase-confirm"')
        assert "https://gk.alpha.example" in page["Content-Security-Policy"]
        self.assertContains(self.client.get(reverse("ticket-report", args=[self.ticket.id])), "erase-link")

    # --- refusals ----------------------------------------------------------------------

    def test_it_checks_the_tenant(self):
        self.login(self.charlie)
        for name, url in self.urls().items():
            response = self.client.get(url) if name in ("page", "receipt") else self.post_json(url, {"confirm": "1"})
            assert response.status_code == 404, name
        assert not TicketErasure.objects.exists()

    def test_staff_cannot_erase(self):
        self.login(self.bob)
        for name, url in self.urls().items():
            response = self.client.get(url) if name in ("page", "receipt") else self.post_json(url, {"confirm": "1"})
            assert response.status_code == 403, name
        self.assertNotContains(self.client.get(reverse("ticket-report", args=[self.ticket.id])), "erase-link")
        assert not TicketErasure.objects.exists()

    def test_vendor_support_and_visitors_cannot_erase(self):
        self.login(self.victor)
        assert self.ask_grant().status_code == 404
        self.client.logout()
        assert self.ask_grant().status_code == 302

    def test_a_wrong_or_missing_confirmation_is_a_400_and_starts_nothing(self):
        self.login(self.alice)
        for confirm in ("", "2", "#99", None):
            response = self.post_json(self.urls()["grant"], {} if confirm is None else {"confirm": confirm})
            assert (response.status_code, response.json()["error"]) == (400, "not_confirmed"), confirm
        response = self.client.post(self.urls()["grant"], data=b"{nope", content_type="application/json")
        assert (response.status_code, response.json()["error"]) == (400, "malformed_json")
        assert not TicketErasure.objects.exists()

    def test_the_answer_must_be_the_gatekeepers_for_this_tickets_prefix(self):
        self.login(self.alice)
        self.ask_grant()
        good = {"request_id": "ab12cd34ef56ab12", "results": [{"op": "delete", "prefix": self.ticket.prefix,
                "objects": [], "failed": [], "truncated": False, "deleted": True}]}
        bad = [
            {}, [], {"results": []}, {**good, "request_id": "<script>"}, {**good, "request_id": "ab12cd34"},
            {**good, "request_id": "AB12CD34EF56AB12"}, {**good, "request_id": "ab12cd34ef56ab12ab"},
            {**good, "results": [{**good["results"][0], "prefix": self.ticket_b.prefix}]},
            {**good, "results": [{**good["results"][0], "objects": [
                {"key": self.ticket_b.prefix + "logs.txt", "versions": [
                    {"version_id": "v", "size": 1, "delete_marker": False}]}]}]},
            {**good, "results": [{**good["results"][0], "objects": [
                {"key": self.ticket.prefix + "a", "versions": [{"version_id": "v", "size": -1,
                                                                "delete_marker": False}]}]}]},
            {**good, "results": [{**good["results"][0], "truncated": "no"}]},
        ]
        for body in bad:
            response = self.post_json(self.urls()["done"], body)
            assert (response.status_code, response.json()["error"]) == (400, "bad_answer"), body
        assert TicketErasure.objects.get().parts == []

    def assert_not_finished(self, response, missing_name):
        assert (response.status_code, response.json()["error"]) == (409, "objects_missing"), response.content
        assert missing_name in response.json()["message"]
        erasure = TicketErasure.objects.get(ticket=self.ticket)
        assert (erasure.finished_at, erasure.parts) == (None, [])  # started still: the admin may retry
        ticket = Ticket.objects.get(pk=self.ticket.pk)
        assert ticket.erased_at is None and ticket.files.count() == 2 and ticket.notes.count() == 1
        assert self.client.get(self.urls()["receipt"]).status_code == 404

    def test_a_made_up_empty_answer_does_not_finish_the_erasure(self):
        """The answer comes through the admin's browser: one listing nothing erased, under
        any request id, must not delete the manifest (the stored note is missing from it)."""
        self.login(self.alice)
        self.ask_grant()
        made_up = {"request_id": "0123456789abcdef", "results": [{"op": "delete", "prefix": self.ticket.prefix,
                   "objects": [], "failed": [], "truncated": False, "deleted": True}]}
        self.assert_not_finished(self.post_json(self.urls()["done"], made_up), "note.txt")
        assert self.erase().json()["state"] == "erased"  # and the real one then finishes it

    def test_a_complete_tickets_files_must_all_be_listed(self):
        Ticket.objects.filter(pk=self.ticket.pk).update(status=Ticket.Status.COMPLETE)
        self.login(self.alice)
        grant = self.ask_grant().json()["grant"]
        answer = self.erase_at_gatekeeper(grant)
        answer["results"][0]["objects"] = [o for o in answer["results"][0]["objects"]
                                           if not o["key"].endswith("screenshot.png")]
        self.assert_not_finished(self.post_json(self.urls()["done"], answer), "screenshot.png")

    def test_two_simultaneous_starts_make_one_erasure_and_no_500(self):
        """get_or_create racing another request: its create fails on the one-to-one; the
        row the other request made is read back."""
        from unittest import mock

        from django.db import IntegrityError
        from django.utils import timezone

        from portal.tickets import erasure as erasure_module

        def other_request_first(**kwargs):
            TicketErasure.objects.create(ticket=self.ticket, by=self.alice, by_name="Alice",
                                         started_at=timezone.now())
            raise IntegrityError("UNIQUE constraint failed: tickets_ticketerasure.ticket_id")

        with mock.patch.object(TicketErasure.objects, "get_or_create", side_effect=other_request_first):
            made = erasure_module.start(self.ticket, self.alice, str(self.ticket.number))
        assert made == TicketErasure.objects.get(ticket=self.ticket)

    def test_the_agent_cannot_complete_an_erasing_or_erased_ticket(self):
        from unittest import mock

        from portal.tickets import services as services_module

        self.login(self.alice)
        self.ask_grant()
        complete = f"/api/v1/tickets/{self.ticket.id}/complete"
        with mock.patch.object(services_module.webhooks, "ticket_event") as sent:
            response = self.client.post(complete, **self.agent_headers(self.agent_a_token))
            assert response.status_code == 409 and "erased" in response.json()["detail"], response.content
            self.erase()
            response = self.client.post(complete, **self.agent_headers(self.agent_a_token))
            assert response.status_code == 409 and "erased" in response.json()["detail"], response.content
        sent.assert_not_called()
        assert Ticket.objects.get(pk=self.ticket.pk).completed_at is None

    def test_a_ticket_still_uploading_waits_until_its_last_put_grant_could_land_nothing_more(self):
        from datetime import timedelta

        from gatekeeper.config import MAX_PRESIGN_TTL
        from portal.tickets import erasure as erasure_module
        from portal.tickets.grants import PUT_GRANT_LIFETIME, put_grant

        assert erasure_module.MAX_PRESIGN_TTL == MAX_PRESIGN_TTL
        put_grant(self.ticket, self.agent_a)
        granted = Ticket.objects.get(pk=self.ticket.pk).put_granted_at
        assert granted is not None
        self.login(self.alice)
        response = self.ask_grant()
        assert (response.status_code, response.json()["error"]) == (409, "still_uploading"), response.content
        assert "in 65 minutes" in response.json()["message"]
        assert not TicketErasure.objects.exists()
        wait = timedelta(seconds=PUT_GRANT_LIFETIME + MAX_PRESIGN_TTL)
        with self.assertRaises(erasure_module.ErasureRefused):
            erasure_module.start(self.ticket, self.alice, str(self.ticket.number), now=granted + wait - timedelta(seconds=1))
        erasure_module.start(self.ticket, self.alice, str(self.ticket.number), now=granted + wait)
        assert TicketErasure.objects.filter(ticket=self.ticket).exists()
        assert self.ask_grant().status_code == 200  # started: each further answer's grant comes at once

    def test_a_complete_ticket_needs_no_wait(self):
        from portal.tickets.grants import put_grant

        put_grant(self.ticket, self.agent_a)
        Ticket.objects.filter(pk=self.ticket.pk).update(status=Ticket.Status.COMPLETE)
        self.login(self.alice)
        assert self.ask_grant().status_code == 200

    def test_an_answer_before_confirming_is_refused(self):
        self.login(self.alice)
        response = self.post_json(self.urls()["done"], {"request_id": "ab12cd34", "results": []})
        assert (response.status_code, response.json()["error"]) == (409, "not_started")

    def test_erasing_twice_is_refused_and_the_receipt_stays(self):
        self.login(self.alice)
        self.erase()
        first = self.client.get(self.urls()["receipt"]).content
        response = self.ask_grant()
        assert (response.status_code, response.json()["error"]) == (409, "already_erased")
        response = self.post_json(self.urls()["done"], {"request_id": "ab12cd34", "results": []})
        assert (response.status_code, response.json()["error"]) == (409, "already_erased")
        assert self.client.get(self.urls()["receipt"]).content == first
        page = self.client.get(self.urls()["page"])
        self.assertContains(page, "receipt-link")
        self.assertNotContains(page, "erase-confirm")

    def test_an_answer_relayed_twice_is_kept_once(self):
        self.login(self.alice)
        self.put(self.ticket.prefix + "more", b"x")
        grant = self.ask_grant().json()["grant"]
        answer = self.erase_at_gatekeeper(grant)
        answer["results"][0]["truncated"] = True  # as if a page were left: the erasure goes on
        assert self.post_json(self.urls()["done"], answer).json()["state"] == "partial"
        response = self.post_json(self.urls()["done"], answer)
        assert (response.status_code, response.json()["error"]) == (409, "duplicate_answer")
        assert self.client.get(self.urls()["receipt"]).status_code == 404  # not finished
        assert self.erase().json()["state"] == "erased"
        assert len(json.loads(self.client.get(self.urls()["receipt"]).content)["request_ids"]) == 2

    @property
    def ticket_manifest(self) -> dict:
        return {"screenshot.png": hashlib.sha256(b"png").hexdigest()}
