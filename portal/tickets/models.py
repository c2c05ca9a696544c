"""Tickets: what the vendor holds about a report. Metadata and the manifest only:
tenant, number, times, status, the submitting agent, and the files' names, sizes,
content types and SHA-256. Nothing the end user typed (not even the subject: that
is in report.json and summary.json) — the report's files live in the tenant's
storage under `prefix`.

The help desk's own workflow is vendor-held metadata too: where a ticket stands
(`stage`), who has it (`assignee`), and each change (TicketEvent). A note's text is
report data, written by the browser straight to the tenant's storage; the portal
holds only that it exists (TicketNote: author, time, size)."""

import uuid

from django.conf import settings
from django.db import models

from tenants.models import AgentToken, StorageLocation, Tenant


class Ticket(models.Model):
    class Status(models.TextChoices):
        """The upload's status: whether every file of the manifest is in storage."""
        UPLOADING = "uploading", "Uploading"
        COMPLETE = "complete", "Complete"

    class Stage(models.TextChoices):
        """Where the help desk's work on the ticket stands (docs/portal.md, "Workflow")."""
        NEW = "new", "New"
        OPEN = "open", "Open"
        WAITING = "waiting", "Waiting"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    # A UUID, not the number, names the storage prefix: numbers are guessable and
    # per-tenant, keys must be neither.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tickets")
    # Where its files were written (the tenant's active location when it was
    # created): its pages sign there and their CSP names it (tenants/locations.py).
    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="tickets")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UPLOADING)
    agent = models.ForeignKey(AgentToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.NEW)
    # A member of the ticket's tenant (checked where it is set: services.change_workflow).
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="assigned_tickets")
    # Set when the ticket was erased (erasure.py): the row is its tombstone from then on.
    erased_at = models.DateTimeField(null=True, blank=True)
    # When its last put grant was issued (grants.put_grant): an erasure of a ticket still
    # uploading waits until every presigned POST that grant could get has expired.
    put_granted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="ticket_number_unique_per_tenant"),
        ]

    def __str__(self):
        return f"{self.tenant.slug} #{self.number}"

    def save(self, *args, **kwargs):
        if self.location_id is None:
            from tenants.locations import active_location

            self.location = active_location(self.tenant)
        if self.location.tenant_id != self.tenant_id:
            raise ValueError("a ticket's location is one of its own tenant's")
        super().save(*args, **kwargs)

    @property
    def prefix(self) -> str:
        return f"tickets/{self.id.hex}/"

    @property
    def notes_prefix(self) -> str:
        return f"{self.prefix}notes/"

    @property
    def erasing(self) -> bool:
        """An admin has confirmed its erasure (it may not be finished): no more grants for it."""
        return self.erased_at is not None or TicketErasure.objects.filter(ticket_id=self.pk).exists()


class TicketFile(models.Model):
    """One line of the manifest: what the agent said it would upload."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=200)
    size = models.BigIntegerField()
    content_type = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "name"], name="ticket_file_name_unique"),
        ]

    def __str__(self):
        return self.name

    @property
    def key(self) -> str:
        return self.ticket.prefix + self.name


class TicketEvent(models.Model):
    """One change to a ticket's workflow, or a note added: who, when, what. The
    actor's name is kept as it was, so history reads the same after they leave."""

    class Kind(models.TextChoices):
        STAGE = "stage", "Status"
        ASSIGNEE = "assignee", "Assignee"
        NOTE = "note", "Note"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_name = models.CharField(max_length=200)
    at = models.DateTimeField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    old = models.CharField(max_length=200, blank=True)
    new = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.ticket} {self.kind}: {self.old} → {self.new}"

    def _shown(self, value: str) -> str:
        return Ticket.Stage(value).label if self.kind == self.Kind.STAGE and value in Ticket.Stage.values else value

    @property
    def old_shown(self) -> str:
        return self._shown(self.old)

    @property
    def new_shown(self) -> str:
        return self._shown(self.new)


class TicketNote(models.Model):
    """That a note exists: its author, time and size. Its text is in the tenant's
    storage at `key`, uploaded by the author's browser through the gatekeeper."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    author_name = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    size = models.PositiveIntegerField()
    # Set when the author's browser says the upload succeeded; until then the note is not listed.
    stored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"note {self.id} on {self.ticket}"

    @property
    def prefix(self) -> str:
        """What the note's single-use put grant covers, and nothing else."""
        return f"{self.ticket.notes_prefix}{self.id.hex}/"

    @property
    def key(self) -> str:
        return f"{self.prefix}note.txt"


class TicketErasure(models.Model):
    """A tenant admin's erasure of one ticket (portal/tickets/erasure.py): who, when, and
    what the gatekeeper answered, relayed by the admin's browser — keys, version ids,
    sizes, request ids; never content. Once finished, the receipt is in
    STORAGES["receipts"] under `receipt_name`, and `receipt_sha256` is its digest."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="erasure")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="+")
    by_name = models.CharField(max_length=200)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # One entry per gatekeeper answer: {"request_id", "objects": [...], "failed": [...]}.
    parts = models.JSONField(default=list)
    receipt_name = models.CharField(max_length=200, blank=True)
    receipt_sha256 = models.CharField(max_length=64, blank=True)

    def __str__(self):
        return f"erasure of {self.ticket}"
