"""The only way to reach tickets.

Like tenants/access.py, next to the object it guards: every function filters by
the caller's tenant inside the query, so another tenant's ticket is
indistinguishable from one that does not exist (Http404). Views never call
`.objects.get(pk=...)` on tickets; they call these.
"""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.http import Http404

from portal.tickets.models import Ticket
from tenants.access import LIVE_STATUSES
from tenants.models import AgentToken


def tickets_for_user(user) -> QuerySet[Ticket]:
    """The tickets of the user's tenant, while it is live; none for anyone else."""
    if not user.is_authenticated:
        return Ticket.objects.none()
    return Ticket.objects.filter(
        tenant__memberships__user=user, tenant__status__in=LIVE_STATUSES
    ).select_related("tenant")


def access_ticket_for_user(user, ticket_id: uuid.UUID | str) -> Ticket:
    return _one(tickets_for_user(user), ticket_id)


def access_ticket_for_agent(token: AgentToken, ticket_id: uuid.UUID | str) -> Ticket:
    # The token comes from tenants.access.access_agent_token: live, of a live tenant.
    tickets = Ticket.objects.filter(tenant_id=token.tenant_id).select_related("tenant")
    return _one(tickets, ticket_id)


def _one(tickets: QuerySet[Ticket], ticket_id) -> Ticket:
    # A ticket id that is not a UUID at all is "not found" too, never a 500.
    try:
        return tickets.get(id=uuid.UUID(str(ticket_id)))
    except (ValueError, Ticket.DoesNotExist):
        raise Http404("not found") from None
