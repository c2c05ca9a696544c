"""The only way to reach tickets.

Like tenants/access.py, next to the object it guards: every function filters by
the caller's tenant inside the query, so another tenant's ticket is
indistinguishable from one that does not exist (Http404). Views never call
`.objects.get(pk=...)` on tickets; they call these.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from django.contrib.auth import get_user_model

from portal.tickets.models import Ticket, TicketNote
from tenants.access import LIVE_STATUSES, membership_for_user
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


def access_ticket_for_admin(user, ticket_id: uuid.UUID | str) -> Ticket:
    """A ticket of the user's tenant if they are its admin: 404 for anyone else's
    ticket, 403 for the tenant's staff (erasure is an admin's)."""
    ticket = access_ticket_for_user(user, ticket_id)
    if not membership_for_user(user).is_admin:
        raise PermissionDenied("tenant admins only")
    return ticket


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


def tickets_by_ids_for_user(user, ticket_ids: list) -> list[Ticket]:
    """Exactly these tickets of the user's tenant, in the order asked; Http404 if
    any is not one (another tenant's, a ghost, not a UUID): all or nothing."""
    try:
        wanted = [uuid.UUID(str(ticket_id)) for ticket_id in ticket_ids]
    except ValueError:
        raise Http404("not found") from None
    found = {t.id: t for t in tickets_for_user(user).filter(id__in=wanted)}
    if len(found) != len(set(wanted)):
        raise Http404("not found")
    return [found[ticket_id] for ticket_id in wanted]


def access_note_for_user(user, ticket_id, note_id) -> TicketNote:
    """A note on one of the user's tenant's tickets; Http404 otherwise."""
    ticket = access_ticket_for_user(user, ticket_id)
    try:
        return ticket.notes.select_related("ticket__tenant").get(id=uuid.UUID(str(note_id)))
    except (ValueError, TicketNote.DoesNotExist):
        raise Http404("not found") from None


def assignable_users(ticket: Ticket) -> QuerySet:
    """Who may be assigned a ticket: the members of its tenant."""
    return get_user_model().objects.filter(membership__tenant_id=ticket.tenant_id).order_by("username")


def members_of(tenant) -> QuerySet:
    """The members of a tenant the caller reached through tenants.access (the
    list's assignee filter)."""
    return get_user_model().objects.filter(membership__tenant=tenant).order_by("username")
