"""The move pages and the browser carrier's endpoints (portal/moves/views.py): for
tenant A's admin, between two of A's customer locations. Every page and endpoint: own
tenant, another tenant's 404, the wrong role 403 (staff) or 404 (support at an
admin's page, a tenant member at support's), bad input 400 with a reason, never 500.

The carrier's whole path as the page's script walks it — claim, grants (decoded as a
gatekeeper does), copied, verified, the switch, the erasure of the source copies by
a real gatekeeper (in process) on moto with versioning on, the receipt — with the
bytes themselves never sent to the portal."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os

import boto3
import jwt
import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from gatekeeper import config as config_module
from gatekeeper.app import Gatekeeper, Request
from portal.moves import services
from portal.moves.models import MoveJob, MoveObject, MoveTicket
from portal.tickets.models import Ticket
from tenants.locations import active_location
from tenants.models import StorageLocation, Tenant
from tenants.signing import trusted_public_keys
from tests.gatekeeper.conftest import base_config, toml_dumps
from tests import support
from tests.portal.base import BaseTestCase, public_key

PNG, HI = b"png", b"hi"
_buckets = itertools.count()
TAB = "tab0123456789"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class MovePagesTest(BaseTestCase):
    @pytest.fixture(autouse=True)
    def _storage(self, moto_url, tmp_path):
        """A's source bucket (versioned, behind gk-alpha in process), the receipts bucket."""
        self.s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
        n = f"{os.getpid()}-{next(_buckets)}"
        self.bucket, self.receipts = f"alpha-src-{n}", f"move-receipts-{n}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        self.s3.create_bucket(Bucket=self.receipts)
        self.moto_url, self.tmp_path = moto_url, tmp_path
        with support.receipts_in(self.receipts, moto_url):
            yield

    def setUp(self):
        super().setUp()
        Ticket.objects.filter(pk=self.ticket.pk).update(status=Ticket.Status.COMPLETE)
        self.ticket.refresh_from_db()
        self.source = active_location(self.tenant_a)
        now = timezone.now()
        StorageLocation.objects.filter(pk=self.source.pk).update(
            state=StorageLocation.State.DRAINING, kind=Tenant.DataLocation.CUSTOMER)
        self.destination = StorageLocation.objects.create(
            tenant=self.tenant_a, kind=Tenant.DataLocation.CUSTOMER, gatekeeper_url="https://gk2.alpha.example",
            gatekeeper_id="gk-alpha-2", storage_origin="https://alpha2.s3.eu-west-1.amazonaws.com",
            state=StorageLocation.State.ACTIVE, state_changed_at=now, created_at=now)
        self.source.refresh_from_db()
        self.login(self.alice)

    # --- helpers -------------------------------------------------------------------

    def plan(self) -> MoveJob:
        return services.plan(self.tenant_a, self.source, self.destination, self.alice).job

    def post_json(self, url, body, client=None):
        return (client or self.client).post(url, data=json.dumps(body), content_type="application/json")

    def carrier_url(self, job, name, *args):
        return reverse(name, args=[job.id, *args])

    def claim_checking(self, job, carrier=TAB, limit=4):
        """A tab verifying the customer's own copies (the page's ?check=1)."""
        return self.post_json(self.carrier_url(job, "move-claim"), {"carrier": carrier, "limit": limit,
                                                                     "mode": "check"}).json()["copy"]

    def claim(self, job, carrier=TAB, limit=4):
        return self.post_json(self.carrier_url(job, "move-claim"), {"carrier": carrier, "limit": limit})

    def decode(self, token, location):
        kid = jwt.get_unverified_header(token)["kid"]
        return jwt.decode(token, public_key(self.tenant_a, kid), algorithms=["EdDSA"],
                          audience=location.gatekeeper_id, issuer=settings.DUALKEY_PORTAL_ORIGIN)

    def gatekeeper(self) -> Gatekeeper:
        config = base_config(self.moto_url, self.bucket, f"sqlite:///{self.tmp_path}/audit.db")
        config.update(gatekeeper_id=self.source.gatekeeper_id, issuer=settings.DUALKEY_PORTAL_ORIGIN,
                      vendor_keys={k.kid: k.public_key for k in trusted_public_keys(self.tenant_a)})
        path = self.tmp_path / "gk.toml"
        path.write_text(toml_dumps(config))
        return Gatekeeper(config_module.load(str(path), env={}))

    def carry_all(self, job):
        """What the page's script reports once it has copied and read back each object."""
        claimed = self.claim(job).json()["copy"]
        data = {"screenshot.png": PNG, "message.txt": HI}
        for item in claimed:
            body = data[item["key"].rsplit("/", 1)[-1]]
            url = self.carrier_url(job, "move-object-grants", item["id"])
            assert self.post_json(url, {"carrier": TAB}).status_code == 200
            copied = self.post_json(self.carrier_url(job, "move-object-copied", item["id"]),
                                    {"carrier": TAB, "sha256": sha(body)})
            assert copied.json()["state"] == "copied", copied.content
            verified = self.post_json(self.carrier_url(job, "move-object-verified", item["id"]),
                                      {"carrier": TAB, "sha256": sha(body)})
            assert verified.json()["state"] == "verified", verified.content
        return claimed

    # --- the list and the form -------------------------------------------------------

    def test_the_list_offers_the_source_and_the_settings_page_links_to_it(self):
        assert 'data-testid="moves-link"' in self.client.get(reverse("tenant-settings")).content.decode()
        page = self.client.get(reverse("moves"))
        assert page.status_code == 200
        assert "gk-alpha</span>: 1 ticket<" in page.content.decode()

    def test_staff_get_403_support_404_and_another_tenant_sees_none_of_it(self):
        job = self.plan()
        for user, status in [(self.bob, 403), (self.victor, 404)]:
            self.login(user)
            for url in (reverse("moves"), reverse("move-job", args=[job.id]), reverse("move-progress", args=[job.id]),
                        reverse("move-receipt", args=[job.id, MoveTicket.objects.get(job=job).pk])):
                assert self.client.get(url).status_code == status, (user, url)
            assert self.client.post(reverse("move-start"), {"source": self.source.pk}).status_code == status
            assert self.claim(job).status_code == status
        self.login(self.charlie)
        assert str(job.id) not in self.client.get(reverse("moves")).content.decode()
        for url in (reverse("move-job", args=[job.id]), reverse("move-progress", args=[job.id])):
            assert self.client.get(url).status_code == 404
        assert self.client.post(reverse("move-change", args=[job.id, "pause"])).status_code == 404
        assert self.claim(job).status_code == 404
        assert self.post_json(self.carrier_url(job, "move-sweep"), {"carrier": TAB}).status_code == 404

    def test_starting_a_move_makes_a_browser_job_and_bad_input_is_400_with_a_reason(self):
        for data, reason in [({"source": self.source.pk, "concurrency": 0}, "greater than or equal to 1"),
                             ({"source": self.source.pk, "concurrency": "many"}, "Enter a whole number"),
                             ({"source": active_location(self.tenant_b).pk, "concurrency": 2}, "valid choice"),
                             ({"source": self.destination.pk, "concurrency": 2}, "valid choice")]:
            response = self.client.post(reverse("move-start"), data)
            assert response.status_code == 400 and reason in response.content.decode(), (data, response.content)
        assert not MoveJob.objects.exists()
        response = self.client.post(reverse("move-start"), {"source": self.source.pk, "concurrency": 3})
        job = MoveJob.objects.get()
        assert response.status_code == 302 and response["Location"] == reverse("move-job", args=[job.id])
        assert (job.mode, job.concurrency, job.source, job.destination) == (
            MoveJob.Mode.BROWSER, 3, self.source, self.destination)
        again = self.client.post(reverse("move-start"), {"source": self.source.pk, "concurrency": 3})
        assert again.status_code == 409 and "No ticket at that location can be moved now" in again.content.decode()

    # --- the job page, progress, pause/resume/cancel -------------------------------------

    def test_the_job_page_names_both_locations_in_its_csp_and_nothing_else(self):
        job = self.plan()
        page = self.client.get(reverse("move-job", args=[job.id]))
        assert page.status_code == 200
        connect = next(d for d in page["Content-Security-Policy"].split("; ") if d.startswith("connect-src"))
        assert connect.split()[1:] == ["'self'", "https://gk.alpha.example", "https://gk2.alpha.example",
                                       "https://alpha-reports.s3.eu-west-1.amazonaws.com",
                                       "https://alpha2.s3.eu-west-1.amazonaws.com"]
        html = page.content.decode()
        assert "data-move-carrier" in html and "js/moves/main.js" in html
        assert 'data-source-gatekeeper="https://gk.alpha.example/dualkey"' in html

    def test_progress_is_json_and_pause_resume_cancel_are_posts_with_csrf(self):
        job = self.plan()
        progress = self.client.get(reverse("move-progress", args=[job.id])).json()
        assert progress["objects"] == {"done": 0, "total": 2} and progress["bytes"] == {"done": 0, "total": 2468}
        strict = Client(enforce_csrf_checks=True)
        strict.force_login(self.alice)
        assert strict.post(reverse("move-change", args=[job.id, "pause"])).status_code == 403
        assert self.client.get(reverse("move-change", args=[job.id, "pause"])).status_code == 405
        paused = self.client.post(reverse("move-change", args=[job.id, "pause"]))
        assert paused.status_code == 302
        job.refresh_from_db()
        assert job.state == MoveJob.State.PAUSED
        assert self.claim(job).json() == {"state": "paused", "copy": [], "verify": []}
        again = self.client.post(reverse("move-change", args=[job.id, "pause"]))
        assert again.status_code == 409 and "a paused move cannot pause" in again.content.decode()
        bad = self.client.post(reverse("move-change", args=[job.id, "explode"]), HTTP_ACCEPT="application/json")
        assert bad.status_code == 400 and bad.json()["error"] == "bad_action"
        assert self.client.post(reverse("move-change", args=[job.id, "resume"])).status_code == 302
        assert len(self.claim(job).json()["copy"]) == 2
        assert self.client.post(reverse("move-change", args=[job.id, "cancel"])).status_code == 302
        job.refresh_from_db()
        assert job.state == MoveJob.State.CANCELLED
        assert MoveTicket.objects.get(job=job).state == MoveTicket.State.CANCELLED
        page = self.client.get(reverse("move-job", args=[job.id])).content.decode()
        assert "data-move-carrier" not in page and 'data-testid="move-pause"' not in page

    def test_a_tab_is_handed_at_most_the_browser_byte_budget_and_always_one_object(self):
        job = self.plan()
        with override_settings(DUALKEY_MOVE_BROWSER_BYTES=1):
            first = self.claim(job).json()["copy"]
            second = self.claim(job, carrier="tab-two-0123").json()["copy"]
        assert len(first) == 1 and len(second) == 1 and first[0]["id"] != second[0]["id"]

    def test_support_sees_the_progress_read_only_and_no_grant(self):
        job = self.plan()
        self.login(self.victor)
        page = self.client.get(reverse("support-move-job", args=["alpha", job.id]))
        assert page.status_code == 200
        html = page.content.decode()
        assert 'data-testid="move-progress"' in html and "data-move-carrier" not in html
        assert "move-pause" not in html and "connect-src 'self';" in page["Content-Security-Policy"]
        assert self.client.get(reverse("support-move-progress", args=["alpha", job.id])).json()["objects"]["total"] == 2
        assert str(job.id) in self.client.get(reverse("support-moves", args=["alpha"])).content.decode()
        assert self.client.get(reverse("support-move-job", args=["beta", job.id])).status_code == 404
        assert self.client.get(reverse("support-move-job", args=["nope", job.id])).status_code == 404
        items = self.claim(job).status_code
        assert items == 404
        for user in (self.alice, self.bob):
            self.login(user)
            assert self.client.get(reverse("support-move-job", args=["alpha", job.id])).status_code == 404
            assert self.client.get(reverse("support-moves", args=["alpha"])).status_code == 404

    # --- the browser carrier ------------------------------------------------------------

    def test_an_object_of_another_size_at_the_source_fails_and_is_not_copied(self):
        # A note has no manifest digest: its size is what tells that the source changed.
        job = self.plan()
        [item, _] = self.claim(job).json()["copy"]
        url = self.carrier_url(job, "move-object-copied", item["id"])
        for bad in (-1, True, "3"):
            refused = self.post_json(url, {"carrier": TAB, "sha256": item["sha256"], "size": bad})
            assert refused.status_code == 400 and refused.json()["error"] == "bad_size", bad
        answer = self.post_json(url, {"carrier": TAB, "sha256": item["sha256"], "size": item["size"] + 1}).json()
        assert answer["state"] == "failed" and f"{item['size'] + 1} bytes" in answer["reason"]
        assert MoveObject.objects.get(pk=item["id"]).error_code == "changed_at_source"

    def test_a_tab_renews_its_own_leases_only(self):
        job = self.plan()
        [first, second] = self.claim(job, limit=2).json()["copy"]
        MoveObject.objects.filter(move__job=job).update(leased_until=timezone.now() + dt.timedelta(seconds=5))
        renewed = self.post_json(self.carrier_url(job, "move-renew"), {"carrier": TAB, "ids": [first["id"], second["id"]]})
        assert renewed.json() == {"held": 2}
        held = MoveObject.objects.get(pk=first["id"])
        assert held.leased_until > timezone.now() + services.lease() - dt.timedelta(seconds=5)
        other = self.post_json(self.carrier_url(job, "move-renew"), {"carrier": "another-tab", "ids": [first["id"]]})
        assert other.json() == {"held": 0}  # not its lease
        for bad in ([True], ["1"], [0], list(range(1, 2 * services.MAX_CONCURRENCY + 2)), "1"):
            refused = self.post_json(self.carrier_url(job, "move-renew"), {"carrier": TAB, "ids": bad})
            assert refused.status_code == 400 and refused.json()["error"] == "bad_ids", bad
        page = self.client.get(reverse("move-job", args=[job.id])).content.decode()
        assert f'data-lease-seconds="{int(services.lease().total_seconds())}"' in page

    def test_bad_carrier_input_is_400_with_a_reason(self):
        job = self.plan()
        for body, code in [({}, "bad_carrier"), ({"carrier": "short"}, "bad_carrier"),
                           ({"carrier": "tab<script>x"}, "bad_carrier"), ({"carrier": TAB + "\n"}, "bad_carrier"),
                           ({"carrier": TAB, "limit": 0}, "bad_limit"),
                           ({"carrier": TAB, "limit": True}, "bad_limit"), ([1], "malformed_json")]:
            response = self.post_json(self.carrier_url(job, "move-claim"), body)
            assert response.status_code == 400 and response.json()["error"] == code, (body, response.content)
        raw = self.client.post(self.carrier_url(job, "move-claim"), data=b"{", content_type="application/json")
        assert raw.status_code == 400 and raw.json()["message"] == "the body is not JSON"
        [item, _] = self.claim(job).json()["copy"]
        copied = self.post_json(self.carrier_url(job, "move-object-copied", item["id"]),
                                {"carrier": TAB, "sha256": "NOT-HEX"})
        assert copied.status_code == 400 and copied.json()["error"] == "bad_digest"
        failed = self.post_json(self.carrier_url(job, "move-object-failed", item["id"]),
                                {"carrier": TAB, "code": "<b>", "message": "x"})
        assert failed.status_code == 400 and failed.json()["error"] == "bad_failure"
        assert self.post_json(self.carrier_url(job, "move-object-grants", 10**9), {"carrier": TAB}).status_code == 404

    def test_grants_are_the_admins_own_at_each_end_and_only_for_the_tabs_lease(self):
        job = self.plan()
        claimed = self.claim(job).json()["copy"]
        assert {i["key"].rsplit("/", 1)[-1]: (i["size"], i["content_type"]) for i in claimed} == {
            "screenshot.png": (1234, "image/png"), "message.txt": (1234, "text/plain")}
        item = claimed[0]
        other_tab = self.post_json(self.carrier_url(job, "move-object-grants", item["id"]), {"carrier": "another-tab"})
        assert other_tab.status_code == 409 and other_tab.json()["error"] == "not_leased"
        granted = self.post_json(self.carrier_url(job, "move-object-grants", item["id"]), {"carrier": TAB})
        assert granted.status_code == 200 and granted["Cache-Control"] == "no-store"
        get = self.decode(granted.json()["get"], self.source)
        put = self.decode(granted.json()["put"], self.destination)
        for claims, ops in [(get, ["get"]), (put, ["put"])]:
            assert claims["scope"] == {"prefix": self.ticket.prefix, "ops": ops}
            assert claims["sub"] == f"user:{self.alice.pk}" and claims["name"] == "Alice"
        # Another tab sees nothing to take while this one holds the leases.
        assert self.claim(job, carrier="another-tab").json()["copy"] == []
        # A worker job is not the browser's.
        worker = MoveJob.objects.filter(pk=job.pk)
        worker.update(mode=MoveJob.Mode.WORKER)
        refused = self.claim(job)
        assert refused.status_code == 409 and refused.json()["error"] == "not_a_browser_move"

    def test_a_changed_object_fails_its_ticket_with_a_reason_and_it_is_not_switched(self):
        job = self.plan()
        [first, second] = self.claim(job).json()["copy"]
        for item in (first, second):
            self.post_json(self.carrier_url(job, "move-object-copied", item["id"]), {"carrier": TAB,
                                                                                      "sha256": sha(b"other")})
        progress = self.client.get(reverse("move-progress", args=[job.id])).json()
        assert progress["tickets"]["failed"] == 1
        assert {f["code"] for f in progress["failures"]} == {"changed_at_source"}
        self.ticket.refresh_from_db()
        assert self.ticket.location_id == self.source.pk
        swept = self.post_json(self.carrier_url(job, "move-sweep"), {"carrier": TAB}).json()
        assert swept["erase"] == [] and swept["state"] == "finished"

    def test_the_whole_path_switches_erases_every_source_version_and_keeps_a_receipt(self):
        for key, body in [(self.ticket.prefix + "screenshot.png", PNG), (self.ticket.prefix + "message.txt", HI)]:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"old " + body)
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        job = self.plan()
        self.carry_all(job)
        self.ticket.refresh_from_db()
        assert self.ticket.location_id == self.destination.pk  # switched: its pages read B now
        swept = self.post_json(self.carrier_url(job, "move-sweep"), {"carrier": TAB}).json()
        [entry] = swept["erase"]
        assert entry["prefix"] == self.ticket.prefix
        move_id = entry["id"]
        granted = self.post_json(self.carrier_url(job, "move-erase-grant", move_id), {"carrier": TAB}).json()
        claims = self.decode(granted["grant"], self.source)
        assert claims["scope"]["ops"] == ["delete"] and claims["sub"] == f"user:{self.alice.pk}"
        assert granted["keys"] == [self.ticket.prefix + "message.txt", self.ticket.prefix + "screenshot.png"]
        answer = self.erase_keys(granted)
        relayed = self.post_json(self.carrier_url(job, "move-erased", move_id), answer.body)
        assert relayed.status_code == 200 and relayed.json()["state"] == "erased", relayed.content
        assert self.s3.list_object_versions(Bucket=self.bucket, Prefix=self.ticket.prefix).get("Versions") is None
        job.refresh_from_db()
        assert job.state == MoveJob.State.FINISHED
        assert set(MoveObject.objects.filter(move__job=job).values_list("state", flat=True)) == {"source_erased"}
        receipt = json.loads(self.client.get(relayed.json()["receipt_url"]).content)
        assert receipt["request_ids"] == [answer.body["request_id"]] and receipt["versions"] == 4
        assert {o["key"]: o["moved"]["sha256"] for o in receipt["objects"]} == {
            self.ticket.prefix + "screenshot.png": sha(PNG), self.ticket.prefix + "message.txt": sha(HI)}
        assert receipt["gatekeeper"]["id"] == receipt["job"]["source"]["id"] == "gk-alpha"
        assert receipt["erased_by"] == {"subject": f"user:{self.alice.pk}", "name": "Alice"}
        assert receipt["format"] == "dualkey-move-receipt/1" and receipt["why"] == "moved"
        # A second relay of the same answer, or one for a ticket not switched: refused.
        again = self.post_json(self.carrier_url(job, "move-erased", move_id), answer.body)
        assert again.status_code == 409 and again.json()["error"] == "not_switched"
        self.login(self.charlie)
        assert self.client.get(relayed.json()["receipt_url"]).status_code == 404

    def erase_keys(self, granted: dict):
        """What the page does with an erase grant: a delete of each key it names, at the
        source's gatekeeper (a real one, in process, on moto)."""
        ops = [{"op": "delete", "key": key} for key in granted["keys"]]
        request = Request("POST", "/v1/sign", {"authorization": f"Bearer {granted['grant']}"},
                          json.dumps({"ops": ops}).encode(), "127.0.0.1")
        answer = self.gatekeeper().handle(request)
        assert answer.status == 200, answer.body
        return answer

    def test_an_erase_answer_that_leaves_out_a_moved_key_finishes_nothing(self):
        job = self.plan()
        self.carry_all(job)
        move = MoveTicket.objects.get(job=job)
        one = {"request_id": "ab12cd34ef56ab12", "results": [{
            "op": "delete", "key": self.ticket.prefix + "message.txt", "objects": [], "failed": [], "truncated": False}]}
        partial = self.post_json(self.carrier_url(job, "move-erased", move.pk), one)
        assert partial.json() == {"state": "partial", "failed": [], "left": 1}
        left = self.post_json(self.carrier_url(job, "move-erase-grant", move.pk), {"carrier": TAB}).json()["keys"]
        assert left == [self.ticket.prefix + "screenshot.png"]
        # A prefix erase (everything under it, moved or not), a key the move did not move, junk: refused.
        whole = {"request_id": "ab12cd34ef56ab13", "results": [{"op": "delete", "prefix": self.ticket.prefix,
                                                                "objects": [], "failed": [], "truncated": False}]}
        other = {"request_id": "ab12cd34ef56ab14", "results": [{
            "op": "delete", "key": self.ticket.prefix + "notes/other.txt", "objects": [], "failed": [], "truncated": False}]}
        wrong_key = {"request_id": "ab12cd34ef56ab15", "results": [{
            "op": "delete", "key": self.ticket.prefix + "screenshot.png", "failed": [], "truncated": False,
            "objects": [{"key": self.ticket.prefix + "message.txt", "versions": [
                {"version_id": "v1", "size": 2, "delete_marker": False}]}]}]}
        for bad in (whole, other, wrong_key, {"results": "no"}):
            refused = self.post_json(self.carrier_url(job, "move-erased", move.pk), bad)
            assert refused.status_code == 400 and refused.json()["error"] == "bad_answer", bad
        move.refresh_from_db()
        assert move.state == MoveTicket.State.SWITCHED

    def test_a_move_cancelled_after_a_switch_still_erases_that_tickets_source_copies_from_the_page(self):
        for key, body in [(self.ticket.prefix + "screenshot.png", PNG), (self.ticket.prefix + "message.txt", HI)]:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        job = self.plan()
        self.carry_all(job)  # switched: it reads from the destination now
        assert self.client.post(reverse("move-change", args=[job.id, "cancel"])).status_code == 302
        job.refresh_from_db()
        assert job.state == MoveJob.State.CANCELLED and job.erasure_due
        page = self.client.get(reverse("move-job", args=[job.id])).content.decode()
        assert "data-move-carrier" in page  # the page still erases; it claims nothing
        assert self.claim(job).json()["copy"] == []
        [entry] = self.post_json(self.carrier_url(job, "move-sweep"), {"carrier": TAB}).json()["erase"]
        granted = self.post_json(self.carrier_url(job, "move-erase-grant", entry["id"]), {"carrier": TAB}).json()
        relayed = self.post_json(self.carrier_url(job, "move-erased", entry["id"]), self.erase_keys(granted).body)
        assert relayed.json()["state"] == "erased", relayed.content
        job.refresh_from_db()
        assert job.state == MoveJob.State.CANCELLED and not job.erasure_due
        assert services.open_move(self.ticket) is None  # notes and erasure again
        assert "data-move-carrier" not in self.client.get(reverse("move-job", args=[job.id])).content.decode()

    def test_the_erasure_leaves_what_the_move_did_not_move(self):
        # Under the prefix beside the moved objects: something the plan never listed (the
        # customer's own file, a note whose "stored" never reached the portal).
        for key, body in [(self.ticket.prefix + "screenshot.png", PNG), (self.ticket.prefix + "message.txt", HI)]:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        job = self.plan()
        self.s3.put_object(Bucket=self.bucket, Key=self.ticket.prefix + "notes/unlisted.txt", Body=b"keep me")
        self.carry_all(job)
        move = MoveTicket.objects.get(job=job)
        granted = self.post_json(self.carrier_url(job, "move-erase-grant", move.pk), {"carrier": TAB}).json()
        relayed = self.post_json(self.carrier_url(job, "move-erased", move.pk), self.erase_keys(granted).body)
        assert relayed.json()["state"] == "erased", relayed.content
        versions = self.s3.list_object_versions(Bucket=self.bucket, Prefix=self.ticket.prefix)["Versions"]
        assert [v["Key"] for v in versions] == [self.ticket.prefix + "notes/unlisted.txt"]
        receipt = json.loads(self.client.get(relayed.json()["receipt_url"]).content)
        assert {o["key"] for o in receipt["objects"]} == {self.ticket.prefix + "screenshot.png",
                                                          self.ticket.prefix + "message.txt"}

    def test_an_erase_answer_lost_on_the_way_is_made_good_by_the_next(self):
        for key, body in [(self.ticket.prefix + "screenshot.png", PNG), (self.ticket.prefix + "message.txt", HI)]:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        job = self.plan()
        self.carry_all(job)
        move = MoveTicket.objects.get(job=job)
        granted = self.post_json(self.carrier_url(job, "move-erase-grant", move.pk), {"carrier": TAB}).json()
        lost = self.erase_keys(granted)  # erased at the source; the tab closed before it relayed the answer
        assert self.s3.list_object_versions(Bucket=self.bucket, Prefix=self.ticket.prefix).get("Versions") is None
        again = self.post_json(self.carrier_url(job, "move-erase-grant", move.pk), {"carrier": TAB}).json()
        assert again["keys"] == granted["keys"]  # nothing was relayed: the same keys, a fresh grant
        answer = self.erase_keys(again)
        assert all(r["objects"] == [] for r in answer.body["results"])  # nothing left to erase
        relayed = self.post_json(self.carrier_url(job, "move-erased", move.pk), answer.body)
        assert relayed.json()["state"] == "erased", relayed.content
        receipt = json.loads(self.client.get(relayed.json()["receipt_url"]).content)
        assert receipt["erased_earlier"] == sorted(granted["keys"])
        assert receipt["request_ids"] == [answer.body["request_id"]] != [lost.body["request_id"]]
        job.refresh_from_db()
        assert job.state == MoveJob.State.FINISHED

    def test_an_erase_grant_before_the_switch_is_refused(self):
        job = self.plan()
        move = MoveTicket.objects.get(job=job)
        refused = self.post_json(self.carrier_url(job, "move-erase-grant", move.pk), {"carrier": TAB})
        assert refused.status_code == 409 and refused.json()["error"] == "not_switched"
        early = self.client.get(reverse("move-receipt", args=[job.id, move.pk]))
        assert early.status_code == 409 and early.json()["error"] == "not_erased"

    # --- the customer copies with its own tools -------------------------------------------

    def test_own_tools_give_the_exact_keys_and_the_check_reads_the_destination_only(self):
        StorageLocation.objects.filter(pk=self.source.pk).update(reported_bucket="alpha-reports")
        StorageLocation.objects.filter(pk=self.destination.pk).update(chosen_bucket="alpha-two")
        job = self.plan()
        script = self.client.get(reverse("move-own-tools", args=[job.id, "copy.sh"]))
        assert script.status_code == 200 and script["Cache-Control"] == "no-store"
        lines = script.content.decode().splitlines()
        assert [line for line in lines if line.startswith("aws ")] == [
            f"aws s3 cp s3://alpha-reports/{self.ticket.prefix}{name} s3://alpha-two/{self.ticket.prefix}{name}"
            for name in ("message.txt", "screenshot.png")]
        manifest = self.client.get(reverse("move-own-tools", args=[job.id, "manifest.csv"])).content.decode()
        assert manifest == "".join(f"alpha-reports,{self.ticket.prefix}{n}\r\n" for n in ("message.txt", "screenshot.png"))
        assert self.client.get(reverse("move-own-tools", args=[job.id, "other.txt"])).status_code == 404
        # A bucket that is no bucket name (recorded before health was checked for it) is never written out.
        StorageLocation.objects.filter(pk=self.source.pk).update(reported_bucket="b\ntouch /tmp/x\n#")
        script = self.client.get(reverse("move-own-tools", args=[job.id, "copy.sh"])).content.decode()
        assert "touch" not in script and "s3://SOURCE-BUCKET/" in script
        StorageLocation.objects.filter(pk=self.source.pk).update(reported_bucket="alpha-reports")
        page = self.client.get(reverse("move-job", args=[job.id]) + "?check=1").content.decode()
        assert 'data-mode="check"' in page
        [item, _] = self.claim(job).json()["copy"]
        checked = self.post_json(self.carrier_url(job, "move-object-grants", item["id"]), {"carrier": TAB,
                                                                                           "check": True})
        assert set(checked.json()) == {"get_destination"}  # a manifest file: its digest is the portal's
        assert self.decode(checked.json()["get_destination"], self.destination)["scope"]["ops"] == ["get"]
        self.login(self.bob)
        assert self.client.get(reverse("move-own-tools", args=[job.id, "copy.sh"])).status_code == 403
        self.login(self.charlie)
        assert self.client.get(reverse("move-own-tools", args=[job.id, "copy.sh"])).status_code == 404

    def test_a_copy_nobody_verified_for_a_minute_is_handed_out_to_verify(self):
        job = self.plan()
        [item, _] = self.claim(job).json()["copy"]
        self.post_json(self.carrier_url(job, "move-object-copied", item["id"]), {"carrier": TAB, "sha256": item["sha256"]})
        assert self.claim(job, carrier="another-tab").json()["verify"] == []  # just copied: its tab verifies it
        MoveObject.objects.filter(pk=item["id"]).update(updated_at=timezone.now() - services.LEASE)
        handed = self.claim(job, carrier="another-tab").json()
        assert [i["id"] for i in handed["verify"]] == [item["id"]]
        granted = self.post_json(self.carrier_url(job, "move-object-grants", item["id"]),
                                 {"carrier": "another-tab", "verify": True})
        assert self.decode(granted.json()["get"], self.destination)["scope"]["ops"] == ["get"]

    def test_an_erasure_in_two_answers_keeps_the_first_and_the_receipt_names_both(self):
        job = self.plan()
        self.carry_all(job)
        move = MoveTicket.objects.get(job=job)
        prefix = self.ticket.prefix

        def answer(request_id, name, truncated):
            return {"request_id": request_id, "results": [{
                "op": "delete", "key": prefix + name, "failed": [], "truncated": truncated,
                "objects": [{"key": prefix + name, "versions": [{"version_id": "v-" + name, "size": 3,
                                                                   "delete_marker": False}]}]}]}
        first = self.post_json(self.carrier_url(job, "move-erased", move.pk), answer("aaaaaaaaaaaaaaaa", "message.txt",
                                                                                    True))
        assert first.json() == {"state": "partial", "failed": [], "left": 2}
        again = self.post_json(self.carrier_url(job, "move-erased", move.pk), answer("aaaaaaaaaaaaaaaa", "message.txt",
                                                                                    True))
        assert again.status_code == 409 and again.json()["error"] == "duplicate_answer"
        second = self.post_json(self.carrier_url(job, "move-erased", move.pk), answer("bbbbbbbbbbbbbbbb",
                                                                                     "screenshot.png", False))
        assert second.json() == {"state": "partial", "failed": [], "left": 1}  # message.txt: more versions
        last = self.post_json(self.carrier_url(job, "move-erased", move.pk), answer("cccccccccccccccc",
                                                                                   "message.txt", False))
        assert last.json()["state"] == "erased", last.content
        receipt = json.loads(self.client.get(last.json()["receipt_url"]).content)
        assert receipt["request_ids"] == ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"]
        assert [o["key"] for o in receipt["objects"]] == [prefix + "message.txt", prefix + "screenshot.png"]

    def test_choosing_own_tools_is_kept_on_the_job_and_no_page_copies_until_the_admin_switches_back(self):
        response = self.client.post(reverse("move-start"), {"source": self.source.pk, "concurrency": 2,
                                                            "how": "own_tools"})
        job = MoveJob.objects.get()
        assert job.own_tools and response["Location"] == reverse("move-job", args=[job.id])
        for _ in range(2):  # opened again later, by a plain link: still nothing carried
            page = self.client.get(reverse("move-job", args=[job.id])).content.decode()
            assert "data-move-carrier" not in page and 'data-testid="move-check"' in page
        copying = self.post_json(self.carrier_url(job, "move-claim"), {"carrier": TAB, "mode": "copy"})  # an old tab
        assert copying.status_code == 409 and copying.json()["error"] == "own_tools"
        [item, _] = self.claim_checking(job)
        put = self.post_json(self.carrier_url(job, "move-object-grants", item["id"]), {"carrier": TAB})
        assert put.status_code == 409 and put.json()["error"] == "own_tools"  # no grant to write, ever
        assert 'data-mode="check"' in self.client.get(reverse("move-job", args=[job.id]) + "?check=1").content.decode()
        back = self.client.post(reverse("move-copier", args=[job.id]), {"own_tools": "0"})
        assert back.status_code == 302
        job.refresh_from_db()
        assert not job.own_tools
        assert "data-move-carrier" in self.client.get(reverse("move-job", args=[job.id])).content.decode()
        bad = self.client.post(reverse("move-copier", args=[job.id]), {"own_tools": "maybe"})
        assert bad.status_code == 400 and "own_tools is 1" in bad.content.decode()
        bad = self.client.post(reverse("move-start"), {"source": self.source.pk, "concurrency": 2, "how": "fax"})
        assert bad.status_code == 400 and "valid choice" in bad.content.decode()
        self.login(self.bob)
        assert self.client.post(reverse("move-copier", args=[job.id]), {"own_tools": "1"}).status_code == 403
        self.login(self.charlie)
        assert self.client.post(reverse("move-copier", args=[job.id]), {"own_tools": "1"}).status_code == 404
        job.refresh_from_db()
        assert not job.own_tools

    def test_own_tools_are_refused_out_of_vendor_hosted_storage(self):
        StorageLocation.objects.filter(pk=self.source.pk).update(kind=Tenant.DataLocation.VENDOR,
                                                                 reported_identity_ops="get")  # browser mode
        refused = self.client.post(reverse("move-start"), {"source": self.source.pk, "concurrency": 2,
                                                           "how": "own_tools"})
        assert refused.status_code == 409 and "own storage" in refused.content.decode()
        assert not MoveJob.objects.exists()
        job = self.plan()
        assert job.mode == MoveJob.Mode.BROWSER
        assert 'data-testid="move-own-tools"' not in self.client.get(reverse("move-job", args=[job.id])).content.decode()
        later = self.client.post(reverse("move-copier", args=[job.id]), {"own_tools": "1"})
        assert later.status_code == 409
        job.refresh_from_db()
        assert not job.own_tools

    def test_a_closed_tabs_objects_go_to_another_tab_once_its_leases_run_out_and_pause_stops_grants(self):
        job = self.plan()
        taken = [i["id"] for i in self.claim(job, carrier="closed-tab").json()["copy"]]
        assert self.claim(job, carrier="new-tab-1").json()["copy"] == []
        MoveObject.objects.filter(pk__in=taken).update(leased_until=timezone.now() - services.LEASE / 5)
        assert sorted(i["id"] for i in self.claim(job, carrier="new-tab-1").json()["copy"]) == sorted(taken)
        late = self.post_json(self.carrier_url(job, "move-object-copied", taken[0]),
                              {"carrier": "closed-tab", "sha256": sha(PNG)})
        assert late.status_code == 409 and late.json()["error"] == "not_leased"
        self.client.post(reverse("move-change", args=[job.id, "pause"]))
        paused = self.post_json(self.carrier_url(job, "move-object-grants", taken[0]), {"carrier": "new-tab-1"})
        assert paused.status_code == 409 and paused.json()["error"] == "not_running"


class WorkerMoveStartTest(BaseTestCase):
    """A move out of vendor-hosted storage, started or resumed on the page, is queued
    for the vendor's Celery workers (portal/moves/tasks.py) once the plan is committed."""

    def setUp(self):
        super().setUp()
        Ticket.objects.filter(pk=self.ticket.pk).update(status=Ticket.Status.COMPLETE)
        self.source = active_location(self.tenant_a)  # vendor-hosted
        now = timezone.now()
        StorageLocation.objects.filter(pk=self.source.pk).update(state=StorageLocation.State.DRAINING)
        StorageLocation.objects.create(
            tenant=self.tenant_a, kind=Tenant.DataLocation.CUSTOMER, gatekeeper_url="https://gk2.alpha.example",
            gatekeeper_id="gk-alpha-2", storage_origin="https://alpha2.s3.eu-west-1.amazonaws.com",
            state=StorageLocation.State.ACTIVE, state_changed_at=now, created_at=now)
        self.login(self.alice)

    def queued(self, callbacks) -> list:
        """Run the page's on-commit callbacks against an in-memory broker (not eagerly):
        the task messages they queued, as (task name, args)."""
        from kombu import Connection

        from portal.celery import app

        assert app.conf.broker_url == "memory://"  # the tests' (debug) broker
        eager = app.conf.task_always_eager
        app.conf.CELERY_TASK_ALWAYS_EAGER = False  # the namespaced key wins over task_always_eager
        try:
            with Connection("memory://") as conn:
                for callback in callbacks:
                    callback()
                found = []
                queue = conn.SimpleQueue("celery")
                while True:
                    try:
                        message = queue.get(timeout=0.5)
                    except queue.Empty:
                        break
                    found.append((message.headers["task"], message.payload[0]))
                    message.ack()
                queue.close()
        finally:
            app.conf.CELERY_TASK_ALWAYS_EAGER = eager
        return found

    def test_starting_and_resuming_queue_a_run(self):
        with self.captureOnCommitCallbacks(execute=False) as callbacks:
            response = self.client.post(reverse("move-start"), {"source": self.source.pk, "concurrency": 2})
        job = MoveJob.objects.get()
        assert response.status_code == 302 and job.mode == MoveJob.Mode.WORKER
        assert self.queued(callbacks) == [("moves.run", [str(job.id)])]
        self.client.post(reverse("move-change", args=[job.id, "pause"]))
        with self.captureOnCommitCallbacks(execute=False) as callbacks:
            self.client.post(reverse("move-change", args=[job.id, "resume"]))
        assert self.queued(callbacks) == [("moves.run", [str(job.id)])]
