"""The worker's additions to the move's state rules (portal/moves/services.py): the
lease is a setting, a carrier renews its own leases (and nobody else's), claim
leaves out what the carrier is still carrying, a copied object refused at the
destination fails its ticket, a failed ticket's destination-erasure receipt is kept
once."""

from __future__ import annotations

import datetime as dt

from django.test import override_settings
from django.utils import timezone

from portal.moves import services
from portal.moves.models import MoveObject, MoveTicket
from portal.tickets.models import Ticket
from tenants.locations import active_location
from tenants.models import StorageLocation, Tenant
from tests.portal.base import BaseTestCase
from tests.portal.test_moves_services import HI, PNG


class MoveBase(BaseTestCase):
    def setUp(self):  # as test_moves_services': tenant A's ticket, draining source, active destination
        super().setUp()
        Ticket.objects.filter(pk=self.ticket.pk).update(status=Ticket.Status.COMPLETE)
        self.source = active_location(self.tenant_a)
        StorageLocation.objects.filter(pk=self.source.pk).update(state=StorageLocation.State.DRAINING)
        now = timezone.now()
        self.destination = StorageLocation.objects.create(
            tenant=self.tenant_a, kind=Tenant.DataLocation.CUSTOMER, gatekeeper_url="https://gk2.alpha.example",
            gatekeeper_id="gk-alpha-2", storage_origin="https://alpha2.s3.eu-west-1.amazonaws.com",
            state=StorageLocation.State.ACTIVE, state_changed_at=now, created_at=now)
        self.source.refresh_from_db()

    def _plan(self):
        return services.plan(self.tenant_a, self.source, self.destination, self.alice)


class MoveLeaseTest(MoveBase):
    def test_the_lease_is_a_setting_and_a_carrier_renews_only_its_own(self):
        job = self._plan().job
        now = timezone.now()
        with override_settings(DUALKEY_MOVE_LEASE_SECONDS=10):
            [mine] = services.claim(job, "me", 1, now=now)
            assert mine.leased_until == now + dt.timedelta(seconds=10)
            later = now + dt.timedelta(seconds=8)
            assert services.renew([mine], "me", now=later) == 1
            assert services.renew([mine], "someone else", now=later + dt.timedelta(seconds=5)) == 0
            assert MoveObject.objects.get(pk=mine.pk).leased_until == later + dt.timedelta(seconds=10)
            # Past the first lease, within the renewed one: still mine, not the other's.
            assert mine.pk not in {o.pk for o in services.claim(job, "other", 10, now=now + dt.timedelta(seconds=12))}

    def test_claim_leaves_out_what_the_carrier_is_still_carrying(self):
        job = self._plan().job
        [first] = services.claim(job, "me", 1)
        again = services.claim(job, "me", 10, exclude={first.pk})
        assert first.pk not in {o.pk for o in again} and len(again) == 1
        assert MoveObject.objects.get(pk=first.pk).attempts == 1

    def test_claim_with_a_byte_budget_hands_out_what_fits_and_always_one(self):
        job = self._plan().job
        sizes = sorted(MoveObject.objects.filter(move__job=job).values_list("size", flat=True))
        assert len(sizes) == 2 and sizes[0] > 1
        [one] = services.claim(job, "tab", 10, max_bytes=1)  # bigger than the budget: still one
        assert services.claim(job, "tab", 10, exclude={one.pk}, max_bytes=one.size) != []  # a new round
        MoveObject.objects.filter(move__job=job).update(leased_by="", leased_until=None)
        assert len(services.claim(job, "tab2", 10, max_bytes=sum(sizes))) == 2
        MoveObject.objects.filter(move__job=job).update(leased_by="", leased_until=None)
        assert len(services.claim(job, "tab3", 10, max_bytes=sum(sizes) - 1)) == 1
        assert len(services.claim(job, "worker", 10)) == 1  # no budget: what is free (the other one)

    def test_within_counts_what_the_carrier_already_holds(self):
        objects = list(MoveObject.objects.filter(move__job=self._plan().job).order_by("key"))
        total = sum(o.size for o in objects)
        assert services.within(objects, None) == objects
        assert services.within(objects, total) == objects
        assert services.within(objects, total, held=1) == objects[:1]
        assert services.within(objects, 1, held=1) == []  # something held: nothing over the budget
        assert services.within(objects, 1) == objects[:1]

    def test_a_copied_object_refused_at_the_destination_fails_its_ticket_and_its_receipt_is_kept_once(self):
        job = self._plan().job
        objects = [o for o in services.claim(job, "me", 10) if o.move.ticket_id == self.ticket.pk]
        for obj in objects:
            services.copied(obj, PNG if obj.key.endswith(".png") else HI)
        failed = services.verify_refused(objects[0], "storage_refused", "HTTP 403 storage_refused: no")
        assert failed.state == MoveObject.State.FAILED
        move = MoveTicket.objects.get(job=job, ticket=self.ticket)
        assert move.state == MoveTicket.State.FAILED and "HTTP 403" in move.error
        assert not services.switch(move)
        services.failed_copies_erased(move, "moves/x.json", "a" * 64)
        services.failed_copies_erased(move, "moves/y.json", "b" * 64)
        move.refresh_from_db()
        assert (move.receipt_name, move.receipt_sha256) == ("moves/x.json", "a" * 64)
        with self.assertRaises(services.MoveRefused):
            other = self._plan_other()
            services.failed_copies_erased(other, "n", "c" * 64)

    def _plan_other(self) -> MoveTicket:
        from portal.tickets.services import create_ticket
        from tests.portal.base import manifest_entry

        ticket = create_ticket(self.agent_a, [manifest_entry("a.txt", data=b"hi")])
        Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.COMPLETE, location=self.source)
        return MoveTicket.objects.get(job=self._plan().job, ticket=ticket)


class StalledMovesTest(MoveBase):
    def test_a_running_job_with_no_live_run_for_ten_minutes_is_stalled(self):
        from portal.moves.tasks import STALLED_AFTER, stalled_jobs

        now = timezone.now()
        job = services.plan(self.tenant_a, self.source, self.destination, self.alice, now=now).job
        assert stalled_jobs(now + STALLED_AFTER / 2) == []  # just planned
        later = now + STALLED_AFTER + dt.timedelta(seconds=1)
        assert stalled_jobs(later) == [job]
        [obj, *_] = services.claim(job, "me", 1, now=later)  # a live run's lease
        assert stalled_jobs(later + dt.timedelta(seconds=1)) == []
        much_later = later + STALLED_AFTER + dt.timedelta(seconds=1)
        assert stalled_jobs(much_later) == [job]  # its lease ran out long ago, nothing changed since
        services.change(job, "pause", self.alice, now=much_later)
        assert stalled_jobs(much_later + STALLED_AFTER * 2) == []  # paused: nobody runs it
