"""While a ticket is in an unfinished move, no new note and no erasure: a note would be
written to the location the ticket is leaving (and left behind), and the move itself
erases the source's copies. Both are a 409 with a reason; once the move is over (or
cancelled) both work again."""

from __future__ import annotations

import json

from django.urls import reverse
from django.utils import timezone

from portal.moves import services
from portal.moves.models import MoveTicket
from portal.tickets.models import Ticket, TicketErasure, TicketNote
from tenants.locations import active_location
from tenants.models import StorageLocation, Tenant
from tests.portal.base import BaseTestCase


class MoveRefusalsTest(BaseTestCase):
    def setUp(self):
        super().setUp()
        Ticket.objects.filter(pk=self.ticket.pk).update(status=Ticket.Status.COMPLETE)
        self.source = active_location(self.tenant_a)
        StorageLocation.objects.filter(pk=self.source.pk).update(state=StorageLocation.State.DRAINING)
        now = timezone.now()
        self.destination = StorageLocation.objects.create(
            tenant=self.tenant_a, kind=Tenant.DataLocation.CUSTOMER, gatekeeper_url="https://gk2.alpha.example",
            gatekeeper_id="gk-alpha-2", storage_origin="https://alpha2.s3.eu-west-1.amazonaws.com",
            state=StorageLocation.State.ACTIVE, state_changed_at=now, created_at=now)
        Ticket.objects.filter(pk=self.ticket.pk).update(location=self.source)
        self.job = services.plan(self.tenant_a, self.source, self.destination, self.alice).job
        self.login(self.alice)

    def post_json(self, url, body):
        return self.client.post(url, data=json.dumps(body), content_type="application/json")

    def add_note(self):
        return self.post_json(reverse("api-ticket-notes", args=[self.ticket.id]), {"size": 5})

    def erase(self):
        return self.post_json(reverse("ticket-erase-grant", args=[self.ticket.id]), {"confirm": str(self.ticket.number)})

    def test_no_note_while_the_ticket_moves(self):
        response = self.add_note()
        assert response.status_code == 409, response.content
        assert "being moved" in response.json()["detail"]
        assert not TicketNote.objects.exists()
        self.login(self.bob)  # staff write notes too: the same refusal
        assert self.add_note().status_code == 409

    def test_no_erasure_while_the_ticket_moves(self):
        response = self.erase()
        assert (response.status_code, response.json()["error"]) == (409, "moving"), response.content
        assert "being moved" in response.json()["message"] and "cancel the move" in response.json()["message"]
        assert not TicketErasure.objects.exists()

    def test_both_work_again_once_the_move_is_cancelled(self):
        services.change(self.job, "cancel", self.alice)
        assert MoveTicket.objects.get(job=self.job).state == MoveTicket.State.CANCELLED
        assert self.add_note().status_code == 201
        assert self.erase().status_code == 200

    def test_a_ticket_not_in_the_move_is_not_held_up(self):
        other = Ticket.objects.create(tenant=self.tenant_a, number=99, status=Ticket.Status.COMPLETE,
                                      location=self.source, created_at=timezone.now())
        assert self.post_json(reverse("api-ticket-notes", args=[other.id]), {"size": 5}).status_code == 201
