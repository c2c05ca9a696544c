"""A note started on a ticket while a move's plan takes it: one of them waits for the
other's transaction (the ticket's row lock), so the note is either in the plan or
refused (409 ticket_moving) — never written to the source after the plan read the
ticket's notes. Real threads, real transactions: PostgreSQL only (SQLite has no row
locks, and Django's in-memory test database is not shared between threads)."""

import threading
import unittest
from unittest import mock

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, TransactionTestCase
from django.urls import reverse
from django.utils import timezone

from portal.moves import services
from portal.moves.models import MoveTicket
from portal.tickets.models import Ticket
from portal.tickets.services import create_ticket
from tenants.locations import active_location
from tenants.models import Membership, StorageLocation, Tenant
from tenants.services import create_tenant
from tenants.tokens import issue_agent_token
from tests.portal.base import manifest_entry


@unittest.skipUnless(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
class PlanAndNoteTestCase(TransactionTestCase):
    def setUp(self):
        tenant = create_tenant(slug="race", name="Race", status=Tenant.Status.ACTIVE, region="eu-west-1",
                               bucket="race-a", gatekeeper_url="https://gk.race.example", gatekeeper_id="gk-race",
                               storage_origin="https://race-a.s3.eu-west-1.amazonaws.com")
        self.admin = get_user_model().objects.create_user("ada", password="x")
        Membership.objects.create(user=self.admin, tenant=tenant, role=Membership.Role.ADMIN)
        agent, _ = issue_agent_token(tenant, "button")
        self.ticket = create_ticket(agent, [manifest_entry()])
        Ticket.objects.filter(pk=self.ticket.pk).update(status=Ticket.Status.COMPLETE)
        self.source = active_location(tenant)
        StorageLocation.objects.filter(pk=self.source.pk).update(state=StorageLocation.State.DRAINING)
        self.source.refresh_from_db()
        now = timezone.now()
        self.destination = StorageLocation.objects.create(
            tenant=tenant, kind=Tenant.DataLocation.CUSTOMER, gatekeeper_url="https://gk2.race.example",
            gatekeeper_id="gk-race-2", storage_origin="https://race-b.s3.eu-west-1.amazonaws.com",
            state=StorageLocation.State.ACTIVE, state_changed_at=now, created_at=now)
        self.tenant = tenant

    def test_a_note_started_during_a_plan_waits_for_it_and_is_refused(self):
        planning, release, outcome = threading.Event(), threading.Event(), {}
        real = services._objects_of

        def slow_objects_of(ticket):  # inside the plan's transaction, the ticket's row locked
            planning.set()
            release.wait(10)
            return real(ticket)

        def plan():
            try:
                with mock.patch.object(services, "_objects_of", slow_objects_of):
                    outcome["plan"] = services.plan(self.tenant, self.source, self.destination, self.admin).job
            finally:
                connection.close()

        def note():
            try:
                client = Client()
                client.force_login(self.admin)
                outcome["note"] = client.post(reverse("api-ticket-notes", args=[self.ticket.id]), {"size": 5},
                                              content_type="application/json")
            finally:
                connection.close()

        planner = threading.Thread(target=plan)
        planner.start()
        self.assertTrue(planning.wait(10))
        writer = threading.Thread(target=note)
        writer.start()
        writer.join(1.5)
        self.assertTrue(writer.is_alive(), "the note was written while the plan held the ticket")
        release.set()
        planner.join(10)
        writer.join(10)
        self.assertEqual(outcome["note"].status_code, 409, outcome["note"].content)
        self.assertIn("being moved", outcome["note"].json()["detail"])
        self.assertEqual(MoveTicket.objects.filter(job=outcome["plan"], ticket=self.ticket).count(), 1)
        self.assertFalse(self.ticket.notes.exists())
