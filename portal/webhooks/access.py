"""The only way to reach webhook endpoints and their deliveries: the caller's own
tenant, for its admins (staff 403, another tenant's endpoint 404), as in
tenants/access.py."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from portal.webhooks.models import WebhookDelivery, WebhookEndpoint
from tenants.access import tenant_for_admin


def webhook_endpoints_for_admin(user) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(tenant=tenant_for_admin(user))


def access_webhook_endpoint_for_admin(user, endpoint_id: int) -> WebhookEndpoint:
    try:
        return webhook_endpoints_for_admin(user).get(id=endpoint_id)
    except WebhookEndpoint.DoesNotExist:
        raise Http404("not found") from None


def webhook_deliveries_for_admin(user) -> QuerySet[WebhookDelivery]:
    return (WebhookDelivery.objects.filter(endpoint__tenant=tenant_for_admin(user))
            .select_related("endpoint").prefetch_related("attempts"))
