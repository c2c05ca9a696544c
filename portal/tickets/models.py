"""Tickets: what the vendor holds about a report. Metadata and the manifest only:
tenant, number, times, status, the submitting agent, and the files' names, sizes,
content types and SHA-256. Nothing the end user typed (not even the subject: that
is in report.json) — the report's files live in the tenant's storage under `prefix`."""

import uuid

from django.db import models

from tenants.models import AgentToken, Tenant


class Ticket(models.Model):
    class Status(models.TextChoices):
        UPLOADING = "uploading", "Uploading"
        COMPLETE = "complete", "Complete"

    # A UUID, not the number, names the storage prefix: numbers are guessable and
    # per-tenant, keys must be neither.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tickets")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UPLOADING)
    agent = models.ForeignKey(AgentToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="ticket_number_unique_per_tenant"),
        ]

    def __str__(self):
        return f"{self.tenant.slug} #{self.number}"

    @property
    def prefix(self) -> str:
        return f"tickets/{self.id.hex}/"


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
