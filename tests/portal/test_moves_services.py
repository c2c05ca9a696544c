"""The move's state rules (portal/moves/services.py), whichever carrier calls them:
planning from the portal's manifest, leases that a killed carrier leaves to run out,
verification by SHA-256, the atomic switch, pause/resume/cancel, progress."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.utils import timezone

from portal.moves import services
from portal.moves.models import MoveJob, MoveObject, MoveTicket
from portal.tickets.models import Ticket
from portal.tickets.services import create_ticket
from tenants.locations import active_location
from tenants.models import StorageLocation, Tenant
from tests.portal.base import BaseTestCase, manifest_entry

PNG = hashlib.sha256(b"png").hexdigest()
HI = hashlib.sha256(b"hi").hexdigest()


class MoveServicesTest(BaseTestCase):
    def setUp(self):
        super().setUp()
        Ticket.objects.filter(pk=self.ticket.pk).update(status=Ticket.Status.COMPLETE)
        self.ticket.refresh_from_db()
        self.source = active_location(self.tenant_a)
        now = timezone.now()
        StorageLocation.objects.filter(pk=self.source.pk).update(state=StorageLocation.State.DRAINING)
        self.destination = StorageLocation.objects.create(
            tenant=self.tenant_a, kind=Tenant.DataLocation.CUSTOMER, gatekeeper_url="https://gk2.alpha.example",
            gatekeeper_id="gk-alpha-2", storage_origin="https://alpha2.s3.eu-west-1.amazonaws.com",
            state=StorageLocation.State.ACTIVE, state_changed_at=now, created_at=now)
        self.source.refresh_from_db()

    def _plan(self, **kw):
        return services.plan(self.tenant_a, self.source, self.destination, self.alice, **kw)

    def test_plan_takes_the_manifest_and_leaves_out_an_upload_in_progress(self):
        uploading = create_ticket(self.agent_a, [manifest_entry("x.txt")])
        uploading.location = self.source
        uploading.save()
        plan = self._plan()
        self.assertEqual(plan.job.mode, MoveJob.Mode.WORKER)  # the source is vendor-hosted
        self.assertEqual(plan.left_out, [(uploading.number, "still uploading")])
        objects = {o.key.rsplit("/", 1)[-1]: o.sha256 for o in MoveObject.objects.filter(move__job=plan.job)}
        self.assertEqual(objects, {"screenshot.png": PNG, "message.txt": HI})

    def test_two_locations_on_one_bucket_are_refused_a_move(self):
        # Two gatekeepers in front of one bucket: a move would copy each object onto itself,
        # read it back as a match, then erase it with every version.
        cases = [
            # (source origin, source bucket, destination origin, destination bucket, refused with)
            ("https://alpha.s3.eu-west-1.amazonaws.com", "alpha", "https://s3.eu-west-1.amazonaws.com", "alpha",
             "same_bucket"),  # virtual-hosted and path style: one AWS bucket
            ("https://s3-fips.us-east-1.amazonaws.com", "alpha", "https://alpha.s3.us-east-1.amazonaws.com", "alpha",
             "same_bucket"),
            ("http://127.0.0.1:9000", "alpha", "http://127.0.0.1:9000", "alpha", "same_bucket"),
            ("https://minio.example", "alpha", "https://alpha.minio.example.:443", "alpha", "same_bucket"),
            ("http://127.0.0.1:9000", "", "http://127.0.0.1:9000", "beta", "bucket_unknown"),
            ("http://127.0.0.1:9000", "alpha", "http://127.0.0.1:9000", "beta", None),
            ("http://127.0.0.1:9000", "alpha", "http://127.0.0.1:9001", "alpha", None),  # two S3-compatible servers
            ("https://alpha.s3.eu-west-1.amazonaws.com", "", "https://beta.s3.eu-west-1.amazonaws.com", "", None),
        ]
        for here, bucket, there, other, refused in cases:
            with self.subTest(source=(here, bucket), destination=(there, other)):
                StorageLocation.objects.filter(pk=self.source.pk).update(storage_origin=here, reported_bucket=bucket,
                                                                         chosen_bucket="")
                StorageLocation.objects.filter(pk=self.destination.pk).update(storage_origin=there,
                                                                              reported_bucket=other)
                self.source.refresh_from_db()
                self.destination.refresh_from_db()
                if refused is None:
                    services.check_distinct(self.source, self.destination)
                    continue
                with self.assertRaises(services.MoveRefused) as caught:
                    self._plan()
                self.assertEqual(caught.exception.code, refused)
        self.assertFalse(MoveJob.objects.exists())

    def test_a_destination_retired_during_the_move_takes_no_ticket(self):
        plan = self._plan()
        move = MoveTicket.objects.get(job=plan.job)
        move.move_objects.update(state=MoveObject.State.VERIFIED)
        # Cut over elsewhere, then retire the destination: it held no ticket yet.
        StorageLocation.objects.filter(pk=self.destination.pk).update(state=StorageLocation.State.RETIRED)
        self.assertFalse(services.switch(move))
        move.refresh_from_db()
        self.ticket.refresh_from_db()
        self.assertEqual((move.state, self.ticket.location_id), (MoveTicket.State.FAILED, self.source.pk))
        self.assertIn("retired", move.error)

    def test_the_browser_carries_when_a_gatekeeper_needs_the_persons_id_token_for_the_workers_ops(self):
        for source_ops, destination_ops, mode in [
                ("", "audit", MoveJob.Mode.WORKER),  # the worker never searches the log
                ("", "audit,delete,get,list", MoveJob.Mode.BROWSER),  # [identity]'s default ops
                ("", "put", MoveJob.Mode.BROWSER),
                ("get", "", MoveJob.Mode.BROWSER),
                ("put", "", MoveJob.Mode.WORKER)]:  # nothing is put at the source
            with self.subTest(source=source_ops, destination=destination_ops):
                self.source.reported_identity_ops, self.destination.reported_identity_ops = source_ops, destination_ops
                self.assertEqual(services.mode_for(self.source, self.destination), mode)
        StorageLocation.objects.filter(pk=self.destination.pk).update(reported_identity_ops="delete,get,list")
        self.destination.refresh_from_db()
        self.assertEqual(self._plan().job.mode, MoveJob.Mode.BROWSER)

    def test_a_ticket_is_in_one_open_move_only(self):
        self._plan()
        with self.assertRaises(services.MoveRefused) as refused:
            self._plan()
        self.assertEqual(refused.exception.code, "nothing_to_move")

    def test_the_destination_must_be_active_and_of_the_same_tenant(self):
        other = active_location(self.tenant_b)
        with self.assertRaises(services.MoveRefused) as refused:
            services.plan(self.tenant_a, self.source, other, self.alice)
        self.assertEqual(refused.exception.status, 404)
        with self.assertRaises(services.MoveRefused) as refused:
            services.plan(self.tenant_a, self.destination, self.source, self.alice)
        self.assertEqual(refused.exception.code, "destination_not_active")

    def test_verified_objects_switch_the_ticket_and_a_changed_one_does_not(self):
        job = self._plan().job
        now = timezone.now()
        by_name = {o.key.rsplit("/", 1)[-1]: o for o in services.claim(job, "w1", 10, now=now)}
        self.assertEqual(len(by_name), 2)
        services.copied(by_name["screenshot.png"], PNG)
        services.verified(by_name["screenshot.png"], PNG)
        move = MoveTicket.objects.get(job=job)
        self.assertFalse(services.switch(move))  # message.txt is not verified yet
        services.copied(by_name["message.txt"], HI)
        services.verified(by_name["message.txt"], PNG)  # the destination holds other bytes
        move.refresh_from_db()
        self.assertEqual(move.state, MoveTicket.State.FAILED)
        self.assertIn("message.txt", move.error)
        self.assertFalse(services.switch(move))
        self.ticket.refresh_from_db()
        self.assertEqual(self.ticket.location_id, self.source.pk)
        services.settle(job)
        job.refresh_from_db()
        self.assertEqual(job.state, MoveJob.State.FINISHED)
        self.assertEqual(services.progress(job)["failures"][0]["code"], "changed_at_destination")

    def test_all_verified_switches_then_the_source_erasure_finishes_the_job(self):
        job = self._plan().job
        for obj in services.claim(job, "w1", 10):
            digest = PNG if obj.key.endswith(".png") else HI
            services.verified(services.copied(obj, digest), digest)
        move = MoveTicket.objects.get(job=job)
        self.assertTrue(services.switch(move))
        self.ticket.refresh_from_db()
        self.assertEqual(self.ticket.location_id, self.destination.pk)
        with self.assertRaises(services.MoveRefused):
            services.source_erased(move, {self.ticket.prefix + "screenshot.png"}, "r", "0" * 64)
        keys = set(move.move_objects.values_list("key", flat=True))
        services.source_erased(move, keys, "r", "0" * 64)
        job.refresh_from_db()
        self.assertEqual(job.state, MoveJob.State.FINISHED)
        self.assertEqual(services.progress(job)["objects"], {"done": 2, "total": 2})

    def test_a_lease_of_a_killed_carrier_runs_out_and_nothing_is_done_twice(self):
        job = self._plan().job
        now = timezone.now()
        first = services.claim(job, "killed", 1, now=now)
        self.assertEqual(len(first), 1)
        self.assertEqual([o.pk for o in services.claim(job, "other", 10, now=now)], [
            o.pk for o in MoveObject.objects.filter(move__job=job).exclude(pk=first[0].pk)])
        later = now + services.LEASE + dt.timedelta(seconds=1)
        again = services.claim(job, "other", 10, now=later)
        self.assertIn(first[0].pk, [o.pk for o in again])
        digest = PNG if first[0].key.endswith(".png") else HI
        services.copied(first[0], digest)
        services.copied(first[0], digest)  # a retry after a lost answer: still copied once
        self.assertEqual(MoveObject.objects.get(pk=first[0].pk).state, MoveObject.State.COPIED)

    def test_pause_stops_claims_resume_restarts_cancel_leaves_the_ticket(self):
        job = self._plan().job
        services.change(job, "pause", self.alice)
        self.assertEqual(services.claim(job, "w", 10), [])
        with self.assertRaises(services.MoveRefused):
            services.change(job, "pause", self.alice)
        services.change(job, "resume", self.alice)
        self.assertEqual(len(services.claim(job, "w", 10)), 2)
        services.change(job, "cancel", self.alice)
        self.assertEqual(MoveTicket.objects.get(job=job).state, MoveTicket.State.CANCELLED)
        self.assertIsNone(services.open_move(self.ticket))
        self.assertEqual(self._plan().job.tickets.count(), 1)  # it can be moved again

    def test_a_bad_digest_is_refused(self):
        job = self._plan().job
        [obj, _] = services.claim(job, "w", 10)
        for bad in ("", "A" * 64, "0" * 63, None, 5):
            with self.assertRaises(services.MoveRefused):
                services.copied(obj, bad)

    def test_a_ticket_whose_note_may_still_land_is_left_out_until_it_cannot(self):
        from portal.tickets.erasure import UPLOADS_MAY_LAND_FOR
        from portal.tickets.services import create_note

        note = create_note(self.ticket, self.alice, 10)  # granted, its upload not reported
        with self.assertRaises(services.MoveRefused) as refused:
            self._plan()
        self.assertEqual(refused.exception.code, "nothing_to_move")
        later = note.created_at + UPLOADS_MAY_LAND_FOR + dt.timedelta(seconds=1)
        plan = self._plan(now=later)
        self.assertEqual(plan.left_out, [])
        self.assertEqual(plan.job.tickets.count(), 1)
