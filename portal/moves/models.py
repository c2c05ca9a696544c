"""Moves: a tenant's existing tickets carried from one storage location to another
(docs/portal.md, "Moving tickets"). The portal keeps the job's state — which
tickets, which keys, their sizes and SHA-256, how far each has got — never content.

Who carries the bytes depends on the source (`MoveJob.Mode`):
- `worker`: from a vendor-hosted location (the vendor already holds that data), the
  vendor's Celery worker reads through the source's gatekeeper and writes through
  the destination's (portal/moves/worker.py);
- `browser`: between two customer locations, the admin's browser does, through
  both gatekeepers; the vendor never carries the bytes.

Each object goes pending → copied → verified (its SHA-256 at the destination equals
the manifest's) → source_erased; a ticket switches to the destination (one
transaction) once all its objects are verified, and only then is its source erased.
portal/moves/services.py changes these rows; nothing else does."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from portal.tickets.models import Ticket
from tenants.models import StorageLocation, Tenant


class MoveJob(models.Model):
    class Mode(models.TextChoices):
        WORKER = "worker", "The vendor's worker (from vendor-hosted storage)"
        BROWSER = "browser", "The admin's browser (between the customer's locations)"

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        FINISHED = "finished", "Finished"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="move_jobs")
    source = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="+")
    destination = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="+")
    mode = models.CharField(max_length=10, choices=Mode.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    # How many objects are carried at once (the worker's, or the browser's, parallel copies).
    concurrency = models.PositiveSmallIntegerField(default=4)
    # A browser job the customer copies with its own tools: its page copies nothing, it
    # only verifies the copies when asked (services.choose_own_tools).
    own_tools = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_by_name = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    state_changed_at = models.DateTimeField()
    state_changed_by_name = models.CharField(max_length=200)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"move {self.id.hex[:8]} of {self.tenant.slug} ({self.state})"

    @property
    def subject(self) -> str:
        """The grants' `sub` for this job: what the customer's audit log names it."""
        return f"move:{self.id.hex}"

    @property
    def open(self) -> bool:
        return self.state in (self.State.RUNNING, self.State.PAUSED)

    @property
    def erasure_due(self) -> bool:
        """Cancelled with tickets already switched: their source copies are still erased
        (by the page or the worker, which copy nothing more), then their moves are done."""
        return self.state == self.State.CANCELLED and self.tickets.filter(state=MoveTicket.State.SWITCHED).exists()


class MoveTicket(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SWITCHED = "switched", "Switched (read from the destination)"
        DONE = "done", "Done (source erased)"
        FAILED = "failed", "Failed (not switched)"
        CANCELLED = "cancelled", "Cancelled (not switched)"

    job = models.ForeignKey(MoveJob, on_delete=models.CASCADE, related_name="tickets")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="moves")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    error = models.CharField(max_length=300, blank=True)
    switched_at = models.DateTimeField(null=True, blank=True)
    # The erasure of the source copies (portal/tickets/erasure.py's receipt format).
    receipt_name = models.CharField(max_length=200, blank=True)
    receipt_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["ticket__number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "ticket"], name="move_ticket_once_per_job"),
            # A ticket is in at most one unfinished move.
            models.UniqueConstraint(fields=["ticket"], condition=Q(state__in=["pending", "switched"]),
                                    name="one_open_move_per_ticket"),
        ]

    def __str__(self):
        return f"{self.ticket} in {self.job}"


class MoveObject(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        COPIED = "copied", "Copied"
        VERIFIED = "verified", "Verified"
        SOURCE_ERASED = "source_erased", "Source erased"
        FAILED = "failed", "Failed"

    move = models.ForeignKey(MoveTicket, on_delete=models.CASCADE, related_name="move_objects")
    key = models.CharField(max_length=400)
    size = models.BigIntegerField()
    # The manifest's SHA-256; for a note (whose digest the portal never had) the
    # source's, as hashed while it was read.
    sha256 = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=14, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Who is carrying it, until when (a lease: a carrier killed mid-object leaves it
    # to be taken again once the lease ends; see services.claim).
    leased_by = models.CharField(max_length=64, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["move_id", "key"]
        constraints = [models.UniqueConstraint(fields=["move", "key"], name="move_object_key_once")]

    def __str__(self):
        return f"{self.key} ({self.state})"
