"""Creating and completing tickets. Called by the API once its input is valid."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from portal.tickets.models import Ticket, TicketEvent, TicketFile, TicketNote
from portal.webhooks import services as webhooks
from tenants.locations import active_location
from tenants.models import AgentToken, Tenant


def next_ticket_number(tenant: Tenant) -> int:
    """Hand out the tenant's next number. Must run inside a transaction: the
    UPDATE takes the row lock, so concurrent creators queue instead of sharing
    a number."""
    Tenant.objects.filter(pk=tenant.pk).update(last_ticket_number=F("last_ticket_number") + 1)
    return Tenant.objects.values_list("last_ticket_number", flat=True).get(pk=tenant.pk)


def create_ticket(agent: AgentToken, files: list[dict]) -> Ticket:
    with transaction.atomic():
        # The number first: its UPDATE takes the tenant's row lock, which a cut over
        # holds while it switches the active location (tenants/locations.py).
        number = next_ticket_number(agent.tenant)
        ticket = Ticket.objects.create(tenant=agent.tenant, number=number, agent=agent,
                                       location=active_location(agent.tenant))
        TicketFile.objects.bulk_create(TicketFile(ticket=ticket, **entry) for entry in files)
        webhooks.ticket_event(ticket, "ticket.created")  # sent once the transaction commits
    return ticket


def complete_ticket(ticket: Ticket) -> Ticket:
    """Idempotent: an agent retrying after a lost response gets the same answer."""
    with transaction.atomic():
        # Only the call that completes it: a retried completion sends no second event.
        if Ticket.objects.filter(pk=ticket.pk).exclude(status=Ticket.Status.COMPLETE).update(
                status=Ticket.Status.COMPLETE, completed_at=timezone.now()):
            ticket.refresh_from_db(fields=["status", "completed_at"])
            webhooks.ticket_event(ticket, "ticket.completed")
    return ticket


# --- the help desk's workflow -------------------------------------------------------

UNASSIGNED = "unassigned"


def _display(user) -> str:
    return (user.get_full_name() or user.get_username())[:200] if user else UNASSIGNED


_UNCHANGED = object()


def change_workflow(ticket: Ticket, actor, *, stage: str | None = None, assignee=_UNCHANGED) -> list[TicketEvent]:
    """Set the ticket's stage and/or assignee (a member of its tenant, or None);
    each real change is recorded (who, when, from, to). Returns the new events."""
    from portal.tickets.access import assignable_users

    now = timezone.now()
    events = []
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if stage is not None and stage != ticket.stage:
            if stage not in Ticket.Stage.values:
                raise ValueError(f"no such stage {stage!r}")
            events.append(TicketEvent(ticket=ticket, actor=actor, actor_name=_display(actor), at=now,
                                      kind=TicketEvent.Kind.STAGE, old=ticket.stage, new=stage))
            ticket.stage = stage
        if assignee is not _UNCHANGED and assignee != ticket.assignee:
            if assignee is not None and not assignable_users(ticket).filter(pk=assignee.pk).exists():
                raise ValueError("the assignee is not a member of the ticket's tenant")
            events.append(TicketEvent(ticket=ticket, actor=actor, actor_name=_display(actor), at=now,
                                      kind=TicketEvent.Kind.ASSIGNEE, old=_display(ticket.assignee),
                                      new=_display(assignee)))
            ticket.assignee = assignee
        if events:
            ticket.save(update_fields=["stage", "assignee"])
            TicketEvent.objects.bulk_create(events)
    return events


def create_note(ticket: Ticket, author, size: int) -> TicketNote:
    """That a note of `size` bytes is about to be written: its author's browser
    uploads it straight to the tenant's storage, then calls note_stored."""
    return TicketNote.objects.create(ticket=ticket, author=author, author_name=_display(author),
                                     created_at=timezone.now(), size=size)


def note_stored(note: TicketNote, actor) -> TicketNote:
    """Idempotent. The note is listed from now on, and its adding is in the history."""
    with transaction.atomic():
        if TicketNote.objects.filter(pk=note.pk, stored_at__isnull=True).update(stored_at=timezone.now()):
            TicketEvent.objects.create(ticket=note.ticket, actor=actor, actor_name=_display(actor),
                                       at=timezone.now(), kind=TicketEvent.Kind.NOTE, new=f"{note.size} bytes")
    note.refresh_from_db()
    return note
