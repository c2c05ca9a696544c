"""Queueing webhook events. Called from ticket creation and completion
(portal/tickets/services.py) and from the settings page's "Send a test event";
the worker delivers them (portal/webhooks/tasks.py)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.sealed import seal
from portal.webhooks.models import TEST_EVENT, WebhookDelivery, WebhookEndpoint
from portal.webhooks.signing import new_secret

SECRET_PURPOSE = "webhook-secret"


def add_endpoint(tenant, url: str, description: str, user) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its secret, in plaintext this once."""
    secret = new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(tenant=tenant, url=url, description=description,
                                                  secret_sealed=b"", created_by=user)
        # Sealed to its own row: a ciphertext copied onto another endpoint does not open.
        endpoint.secret_sealed = seal(secret.encode(), purpose=SECRET_PURPOSE, owner=endpoint.pk)
        endpoint.save(update_fields=["secret_sealed"])
    return endpoint, secret


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def ticket_payload(ticket, event: str, delivery_id: uuid.UUID) -> dict:
    """What the vendor already holds about the ticket, and its link: no content."""
    return {
        "id": str(delivery_id), "type": event, "sent_for": _iso(timezone.now()), "tenant": ticket.tenant.slug,
        "ticket": {
            "id": str(ticket.id), "number": ticket.number, "status": ticket.status, "stage": ticket.stage,
            "created_at": _iso(ticket.created_at), "completed_at": _iso(ticket.completed_at),
            "file_count": ticket.files.count(),
            "url": settings.DUALKEY_PORTAL_ORIGIN + reverse("ticket-report", args=[ticket.id]),
        },
    }


def _queue(endpoint: WebhookEndpoint, event: str, payload_for) -> WebhookDelivery:
    from portal.webhooks.tasks import deliver

    delivery_id = uuid.uuid4()
    delivery = WebhookDelivery.objects.create(id=delivery_id, endpoint=endpoint, event=event,
                                              payload=payload_for(delivery_id))
    transaction.on_commit(lambda: deliver.delay(str(delivery_id)))
    return delivery


def ticket_event(ticket, event: str) -> list[WebhookDelivery]:
    """One delivery per enabled endpoint of the ticket's tenant."""
    endpoints = WebhookEndpoint.objects.filter(tenant_id=ticket.tenant_id, enabled=True)
    return [_queue(endpoint, event, lambda delivery_id: ticket_payload(ticket, event, delivery_id))
            for endpoint in endpoints]


def queue_test_event(endpoint: WebhookEndpoint) -> WebhookDelivery:
    return _queue(endpoint, TEST_EVENT, lambda delivery_id: {
        "id": str(delivery_id), "type": TEST_EVENT, "sent_for": _iso(timezone.now()),
        "tenant": endpoint.tenant.slug})
