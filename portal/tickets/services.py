"""Creating and completing tickets. Called by the API once its input is valid."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from portal.tickets.models import Ticket, TicketFile
from tenants.models import AgentToken, Tenant


def next_ticket_number(tenant: Tenant) -> int:
    """Hand out the tenant's next number. Must run inside a transaction: the
    UPDATE takes the row lock, so concurrent creators queue instead of sharing
    a number."""
    Tenant.objects.filter(pk=tenant.pk).update(last_ticket_number=F("last_ticket_number") + 1)
    return Tenant.objects.values_list("last_ticket_number", flat=True).get(pk=tenant.pk)


def create_ticket(agent: AgentToken, files: list[dict]) -> Ticket:
    with transaction.atomic():
        ticket = Ticket.objects.create(tenant=agent.tenant, number=next_ticket_number(agent.tenant), agent=agent)
        TicketFile.objects.bulk_create(TicketFile(ticket=ticket, **entry) for entry in files)
    return ticket


def complete_ticket(ticket: Ticket) -> Ticket:
    """Idempotent: an agent retrying after a lost response gets the same answer."""
    if ticket.status != Ticket.Status.COMPLETE:
        ticket.status = Ticket.Status.COMPLETE
        ticket.completed_at = timezone.now()
        ticket.save(update_fields=["status", "completed_at"])
    return ticket
