"""The vendor's worker moves tenant A's tickets from its vendor-hosted location to a
customer location of A's: two real gatekeeper processes, each in front of its own
versioned moto bucket, the worker's run in this process (tests/portal/
test_move_celery.py runs it in a real Celery worker, and kills it).

Checked against what moto holds: the destination has each object once, with the
manifest's bytes; the source has no version left; the destination's audit log
names the job's subject for every write; the receipt lists what the source's
gatekeeper erased."""

from __future__ import annotations

import io
import json
import os
import re

import boto3
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from portal.moves import services, tasks, worker
from portal.moves.models import MoveJob, MoveObject, MoveTicket
from portal.tickets.models import Ticket
from portal.tickets.services import complete_ticket, create_note, create_ticket, note_stored
from tenants.models import Tenant
from tests import support
from tests.portal.base import BaseTestCase
from tests.portal.move_stack import point_locations, public_keys, sha, start_gatekeeper

FILES = {"screenshot.png": ("image/png", b"\x89PNG" + os.urandom(3000)),
         "message.txt": ("text/plain", b"it broke at 10:02"),
         "empty.log": ("text/plain", b"")}


class MoveWorkerTestCase(BaseTestCase):
    @pytest.fixture(autouse=True)
    def _storage(self, moto_url, tmp_path):
        self.moto_url, self.tmp_path = moto_url, tmp_path
        self.s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
        self.receipts = f"receipts-{os.getpid()}-{tmp_path.name}"[:60].lower().replace("_", "-")
        self.s3.create_bucket(Bucket=self.receipts)
        with support.receipts_in(self.receipts, moto_url), override_settings(DUALKEY_MOVE_RETRY_SECONDS=0.05):
            yield

    def setUp(self):
        super().setUp()
        keys = public_keys(self.tenant_a)
        self.src = start_gatekeeper(self.moto_url, self.tmp_path / "src", "gk-alpha", keys)
        self.dst = start_gatekeeper(self.moto_url, self.tmp_path / "dst", "gk-alpha-2", keys)
        self.addCleanup(self.src.stop)
        self.addCleanup(self.dst.stop)
        self.source, self.destination = point_locations(self.tenant_a, self.src, self.dst, self.moto_url)
        self.tickets = [self.make_ticket(FILES), self.make_ticket({"trace.txt": ("text/plain", b"trace " * 500)})]
        self.note = note_stored(create_note(self.tickets[0], self.alice, 5), self.alice)
        self.put(self.src.bucket, self.note.key, b"note!")

    def make_ticket(self, files: dict) -> Ticket:
        ticket = create_ticket(self.agent_a, [{"name": name, "size": len(data), "content_type": kind,
                                               "sha256": sha(data)} for name, (kind, data) in files.items()])
        for name, (_, data) in files.items():
            self.put(self.src.bucket, ticket.prefix + name, data)
        complete_ticket(ticket)
        Ticket.objects.filter(pk=ticket.pk).update(location=self.source)
        ticket.refresh_from_db()
        return ticket

    def put(self, bucket, key, data):
        return self.s3.put_object(Bucket=bucket, Key=key, Body=data)["VersionId"]

    def versions(self, bucket, prefix="tickets/") -> list[dict]:
        page = self.s3.list_object_versions(Bucket=bucket, Prefix=prefix)
        return page.get("Versions", []) + page.get("DeleteMarkers", [])

    def body(self, bucket, key) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def plan(self, **kw) -> MoveJob:
        return services.plan(self.tenant_a, self.source, self.destination, self.alice, **kw).job

    def receipt(self, move: MoveTicket) -> dict:
        data = self.body(self.receipts, move.receipt_name)
        assert sha(data) == move.receipt_sha256
        return json.loads(data)


class MoveWorkerTest(MoveWorkerTestCase):
    def test_a_move_end_to_end(self):
        self.put(self.src.bucket, self.tickets[0].prefix + "screenshot.png", FILES["screenshot.png"][1])  # 2 versions
        held = {(v["Key"], v["VersionId"]) for v in self.versions(self.src.bucket)}
        assert len(held) == 6
        job = self.plan(concurrency=3)
        stats = worker.run_job(job.pk)
        job.refresh_from_db()
        assert job.state == MoveJob.State.FINISHED
        assert (stats.copied, stats.verified, stats.switched, stats.erased, stats.failed) == (5, 5, 2, 2, 0)
        assert set(MoveObject.objects.filter(move__job=job).values_list("state", flat=True)) == {"source_erased"}
        for ticket in self.tickets:
            ticket.refresh_from_db()
            assert ticket.location_id == self.destination.pk
        # The destination holds each object once, with its bytes; the source holds nothing.
        at_destination = self.versions(self.dst.bucket)
        assert sorted(v["Key"] for v in at_destination) == sorted(o.key for o in MoveObject.objects.all())
        for name, (kind, data) in FILES.items():
            got = self.s3.get_object(Bucket=self.dst.bucket, Key=self.tickets[0].prefix + name)
            assert got["Body"].read() == data and got["ContentType"] == kind
        assert self.body(self.dst.bucket, self.note.key) == b"note!"
        assert self.versions(self.src.bucket) == []
        # Every write at the destination is in its audit log under the job's subject.
        rows = self.dst.audit_rows()
        puts = [r for r in rows if r["op"] == "put"]
        assert sorted(r["key"] for r in puts) == sorted(v["Key"] for v in at_destination)
        assert {r["sub"] for r in rows} == {job.subject}
        assert {r["name"] for r in rows} == {services.worker_carrier(job)["name"]}, {r["name"] for r in rows}
        assert {r["sub"] for r in self.src.audit_rows()} == {job.subject}
        # The receipt: what the source's gatekeeper erased, version by version.
        move = MoveTicket.objects.get(job=job, ticket=self.tickets[0])
        receipt = self.receipt(move)
        assert receipt["format"] == "dualkey-move-receipt/1" and receipt["why"] == "moved"
        listed = {(o["key"], v["version_id"]) for o in receipt["objects"] for v in o["versions"]}
        assert listed == {h for h in held if h[0].startswith(self.tickets[0].prefix)}
        [request_id] = receipt["request_ids"]
        assert {v["request_id"] for o in receipt["objects"] for v in o["versions"]} == {request_id}
        assert request_id in {r["request_id"] for r in self.src.audit_rows() if r["op"] == "delete"}
        by_key = {o["key"]: o for o in receipt["objects"]}
        shot = by_key[self.tickets[0].prefix + "screenshot.png"]
        assert shot["moved"]["sha256"] == sha(FILES["screenshot.png"][1])
        assert len(shot["versions"]) == 2
        assert receipt["gatekeeper"]["id"] == "gk-alpha" and receipt["job"]["destination"]["id"] == "gk-alpha-2"
        assert receipt["erased_by"]["subject"] == job.subject and receipt["erased_earlier"] == []
        assert receipt["versions"] == 5 and receipt["ticket"]["number"] == self.tickets[0].number
        # What the portal kept of the move is metadata: the message's text is nowhere in its
        # database or the receipts.
        marker = FILES["message.txt"][1].decode()
        assert marker not in json.dumps(receipt)
        assert self.rows_holding(marker) == []

    def rows_holding(self, text: str) -> list[str]:
        from django.db import connection

        found = []
        with connection.cursor() as cursor:
            for table in connection.introspection.table_names(cursor):
                cursor.execute(f'SELECT * FROM "{table}"')
                found += [table for row in cursor.fetchall() if text in repr(row)]
        return found

    def test_an_object_changed_at_the_source_is_reported_and_its_ticket_not_switched(self):
        job = self.plan()
        changed = self.tickets[0].prefix + "message.txt"
        self.put(self.src.bucket, changed, b"it broke at 10:03")  # same size, other bytes
        worker.run_job(job.pk)
        job.refresh_from_db()
        first, second = (MoveTicket.objects.get(job=job, ticket=t) for t in self.tickets)
        assert first.state == MoveTicket.State.FAILED and "message.txt" in first.error
        assert second.state == MoveTicket.State.DONE
        self.tickets[0].refresh_from_db()
        assert self.tickets[0].location_id == self.source.pk
        failures = services.progress(job)["failures"]
        assert failures == [{"ticket": self.tickets[0].number, "key": "message.txt", "code": "changed_at_source",
                             "reason": "its SHA-256 at the source is not the manifest's"}]
        assert job.state == MoveJob.State.FINISHED  # the job goes on: the other ticket moved
        # The failed ticket stays whole at its source; its copies at the destination are erased.
        assert {v["Key"] for v in self.versions(self.src.bucket, self.tickets[0].prefix)} == {
            self.tickets[0].prefix + n for n in FILES} | {self.note.key}
        assert self.versions(self.dst.bucket, self.tickets[0].prefix) == []
        cleanup = self.receipt(first)
        assert cleanup["why"].startswith("move failed") and cleanup["gatekeeper"]["id"] == "gk-alpha-2"
        assert changed in {o["key"] for o in cleanup["objects"]}

    def test_the_source_erases_only_what_was_moved(self):
        """An object under the ticket's prefix the plan did not list (say a note whose
        upload landed after planning) is not erased with the rest: key by key."""
        job = self.plan()
        late = self.tickets[0].prefix + "notes/late/note.txt"
        self.put(self.src.bucket, late, b"late")
        worker.run_job(job.pk)
        assert [v["Key"] for v in self.versions(self.src.bucket)] == [late]
        move = MoveTicket.objects.get(job=job, ticket=self.tickets[0])
        assert move.state == MoveTicket.State.DONE
        assert late not in {o["key"] for o in self.receipt(move)["objects"]}

    def test_bytes_go_only_to_the_destinations_storage_origin(self):
        """A destination gatekeeper that signs a POST to another origin than the
        location's (misconfigured, or not the customer's) gets nothing uploaded."""
        type(self.destination).objects.filter(pk=self.destination.pk).update(
            storage_origin="https://alpha-new.s3.eu-west-1.amazonaws.com")
        job = self.plan()
        worker.run_job(job.pk)
        assert {f["code"] for f in services.progress(job)["failures"]} == {"wrong_storage_origin"}
        assert set(MoveTicket.objects.filter(job=job).values_list("state", flat=True)) == {"failed"}
        assert self.versions(self.dst.bucket) == []
        assert len(self.versions(self.src.bucket)) == 5  # all still at the source
        for ticket in self.tickets:
            ticket.refresh_from_db()
            assert ticket.location_id == self.source.pk

    def test_a_cancelled_move_stops_and_switches_nothing_more(self):
        job = self.plan(concurrency=1)

        def cancel_after_the_first(job, stats):
            if stats.copied and job.state == MoveJob.State.RUNNING:
                services.change(job, "cancel", self.alice)

        stats = worker.run_job(job.pk, on_progress=cancel_after_the_first, progress_every=0)
        job.refresh_from_db()
        assert job.state == MoveJob.State.CANCELLED and stats.switched == 0 and stats.copied < 5
        assert set(MoveTicket.objects.filter(job=job).values_list("state", flat=True)) == {"cancelled"}
        for ticket in self.tickets:
            ticket.refresh_from_db()
            assert ticket.location_id == self.source.pk
        assert len(self.versions(self.src.bucket)) == 5  # nothing erased at the source
        assert worker.run_job(job.pk).copied == 0  # a later run carries nothing

    def test_a_move_cancelled_after_a_switch_still_erases_that_tickets_source_copies(self):
        job = self.plan(concurrency=1)
        first, second = MoveTicket.objects.filter(job=job).order_by("ticket__number")
        first.move_objects.update(state=MoveObject.State.VERIFIED)  # as if copied and read back
        assert services.switch(first)
        services.change(job, "cancel", self.alice)
        job.refresh_from_db()
        assert job.erasure_due and tasks.run_move.run(str(job.pk)) == MoveJob.State.CANCELLED
        first.refresh_from_db()
        second.refresh_from_db()
        assert (first.state, second.state) == (MoveTicket.State.DONE, MoveTicket.State.CANCELLED)
        assert first.receipt_name and services.open_move(first.ticket) is None
        assert self.versions(self.src.bucket, first.ticket.prefix) == []  # erased: it reads from B now
        assert len(self.versions(self.src.bucket, second.ticket.prefix)) == 1  # untouched, still at A
        job.refresh_from_db()
        assert not job.erasure_due and tasks.run_move.run(str(job.pk)) == "gone"

    def test_nothing_is_erased_when_the_two_locations_turn_out_to_front_one_bucket(self):
        # Planned apart; then (a gatekeeper re-pointed, its health recorded again) both
        # report one bucket: the run copies and switches, but erases nothing at the source.
        job = self.plan(concurrency=2)
        type(self.destination).objects.filter(pk=self.destination.pk).update(reported_bucket=self.src.bucket)
        stats = worker.run_job(job.pk)
        assert stats.switched == 2 and stats.erased == 0
        assert len(self.versions(self.src.bucket)) == 5  # every source version still there
        assert set(MoveTicket.objects.filter(job=job).values_list("state", flat=True)) == {"switched"}

    def test_a_refusal_fails_the_ticket_a_transient_failure_is_retried(self):
        """The destination refuses an object too large for it (a 4xx: permanent, that
        ticket fails, not the job); the source's gatekeeper is down for a moment
        (transient: retried with backoff, then everything else moves)."""
        big = self.make_ticket({"dump.bin": ("application/octet-stream", os.urandom(300_000))})
        self.dst.stop()
        self.dst = start_gatekeeper(self.moto_url, self.tmp_path / "dst2", "gk-alpha-2", public_keys(self.tenant_a),
                                    max_upload_bytes=200_000)
        self.addCleanup(self.dst.stop)
        type(self.destination).objects.filter(pk=self.destination.pk).update(gatekeeper_url=self.dst.url)
        job = self.plan(concurrency=2)
        self.src.stop()
        seen = []

        def progress(job, stats):
            if stats.retries and not seen:
                seen.append(stats.retries)
                self.src.restart()

        with override_settings(DUALKEY_MOVE_RETRY_SECONDS=0.3):
            stats = worker.run_job(job.pk, on_progress=progress)
        assert seen and stats.retries >= 1
        moves = {m.ticket_id: m for m in MoveTicket.objects.filter(job=job)}
        assert moves[big.pk].state == MoveTicket.State.FAILED
        assert [moves[t.pk].state for t in self.tickets] == [MoveTicket.State.DONE] * 2
        [failure] = services.progress(job)["failures"]
        assert failure["code"] == "too_large" and "HTTP 413" in failure["reason"], failure
        big.refresh_from_db()
        assert big.location_id == self.source.pk
        assert len(self.versions(self.src.bucket, big.prefix)) == 1


class MoveTicketsCommandTest(MoveWorkerTestCase):
    def command(self, *args) -> str:
        out = io.StringIO()
        call_command("move_tickets", "alpha", "--to", str(self.destination.pk), *args, stdout=out)
        return out.getvalue()

    def test_support_moves_a_tenants_tickets_with_a_progress_line(self):
        out = self.command("--concurrency", "2")
        job = MoveJob.objects.get()
        assert f"Planned move {job.id} of alpha: 2 tickets from location {self.source.pk}" in out
        assert job.state == MoveJob.State.FINISHED
        total = sum(len(d) for _, d in FILES.values()) + len(b"note!") + len(b"trace " * 500)
        assert re.search(rf"\[#{{24}}\] 5/5 objects  {total / 1000:.1f} KB/{total / 1000:.1f} KB  "
                         r"[\d.]+ [KM]?B/s  0:00 left  0 failed", out), out
        assert "This run: 5 copied, 5 verified, 2 tickets switched, 2 erased at the source" in out
        assert self.versions(self.src.bucket) == []
        assert [m.state for m in MoveTicket.objects.filter(job=job)] == ["done", "done"]

    def test_it_resumes_the_tenants_open_job_and_copies_nothing_twice(self):
        job = self.plan(concurrency=1)

        def pause_after_the_first(job, stats):
            if stats.verified and job.state == MoveJob.State.RUNNING:
                services.change(job, "pause", self.alice)

        first = worker.run_job(job.pk, on_progress=pause_after_the_first, progress_every=0)
        job.refresh_from_db()
        assert job.state == MoveJob.State.PAUSED and 1 <= first.copied < 5
        out = self.command()
        assert f"Resuming move {job.id} of alpha" in out and "Planned" not in out
        assert f"This run: {5 - first.copied} copied" in out, out
        job.refresh_from_db()
        assert job.state == MoveJob.State.FINISHED
        keys = [v["Key"] for v in self.versions(self.dst.bucket)]
        assert len(keys) == len(set(keys)) == 5  # one version each: nothing written twice

    def test_a_customer_owned_source_is_the_admins_to_move(self):
        type(self.source).objects.filter(pk=self.source.pk).update(kind=Tenant.DataLocation.CUSTOMER)
        with pytest.raises(CommandError, match="the vendor never carries those bytes.*admin moves"):
            self.command()
        assert not MoveJob.objects.exists()

    def test_a_destination_asking_the_persons_id_token_is_the_admins_to_move(self):
        type(self.source).objects.filter(tenant=self.tenant_a, state="active").update(
            reported_identity_ops="audit,delete,get,list")  # the destination's [identity]
        with pytest.raises(CommandError, match=r"ID token \(\[identity\]\).*a worker has none.*admin moves"):
            self.command()
        assert not MoveJob.objects.exists()

    def test_bad_arguments_are_refused_with_a_reason(self):
        with pytest.raises(CommandError, match="No tenant 'nope'"):
            call_command("move_tickets", "nope", "--to", "1")
        with pytest.raises(CommandError, match="has no location 999"):
            call_command("move_tickets", "alpha", "--to", "999")
        with pytest.raises(CommandError, match="from 1 to 16"):
            self.command("--concurrency", "17")
