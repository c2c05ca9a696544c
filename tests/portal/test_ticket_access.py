"""portal/tickets/access.py: a ticket of another tenant is "not found", like one that does not exist."""

import uuid

from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from portal.tickets import access
from tests.portal.base import BaseTestCase


class TicketAccessTestCase(BaseTestCase):
    def test_tickets_for_user_filters_by_tenant(self):
        self.assertEqual(list(access.tickets_for_user(self.bob)), [self.ticket])
        self.assertEqual(list(access.tickets_for_user(self.charlie)), [self.ticket_b])
        self.assertEqual(list(access.tickets_for_user(self.victor)), [])
        self.assertEqual(list(access.tickets_for_user(AnonymousUser())), [])

    def test_access_ticket_for_user_is_404_across_tenants(self):
        self.assertEqual(access.access_ticket_for_user(self.alice, self.ticket.id), self.ticket)
        self.assertEqual(access.access_ticket_for_user(self.alice, str(self.ticket.id)), self.ticket)
        for user, ticket_id in [(self.charlie, self.ticket.id), (self.alice, uuid.uuid4()), (self.alice, "junk")]:
            with self.subTest(user=user, ticket_id=ticket_id), self.assertRaises(Http404):
                access.access_ticket_for_user(user, ticket_id)

    def test_access_ticket_for_agent_is_404_across_tenants(self):
        self.assertEqual(access.access_ticket_for_agent(self.agent_a, self.ticket.id), self.ticket)
        with self.assertRaises(Http404):
            access.access_ticket_for_agent(self.agent_b, self.ticket.id)
