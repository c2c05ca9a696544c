"""Outgoing webhooks: a tenant's endpoints at its own help-desk/PSA system, and the
log of what was sent to them. The payload is metadata the vendor already holds
(ticket id, number, times, status, file count) and the report's link: never
report content (docs/portal.md, "Webhooks")."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from tenants.models import Tenant

EVENTS = ("ticket.created", "ticket.completed")
TEST_EVENT = "webhook.test"


class WebhookEndpoint(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=100, blank=True)
    # The signing secret, AES-GCM sealed under DUALKEY_MASTER_KEY (accounts/sealed.py);
    # shown to the admin once, when the endpoint is added.
    secret_sealed = models.BinaryField()
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return self.url


class WebhookDelivery(models.Model):
    """One event for one endpoint, with every attempt to deliver it."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40)
    payload = models.JSONField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class WebhookAttempt(models.Model):
    """What the delivery log shows: attempt number, time, the receiver's status code or
    the error (a connection refused, a timeout). Never the secret or the signature."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["number"]
