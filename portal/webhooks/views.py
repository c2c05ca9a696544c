"""The tenant admin's webhook settings (/settings/webhooks/): endpoints, the test
event, the delivery log. Admins only (staff 403); another tenant's endpoint 404."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from portal.webhooks import services
from portal.webhooks.access import (
    access_webhook_endpoint_for_admin,
    webhook_deliveries_for_admin,
    webhook_endpoints_for_admin,
)
from portal.webhooks.forms import EndpointForm, EnabledForm
from portal.webhooks.models import EVENTS
from portal.webhooks.signing import SIGNATURE_HEADER
from tenants.access import tenant_for_admin

LOG_LENGTH = 50


def _page(request, *, form=None, new_secret=None, status=200):
    context = {
        "endpoints": webhook_endpoints_for_admin(request.user),
        "deliveries": webhook_deliveries_for_admin(request.user)[:LOG_LENGTH],
        "form": form or EndpointForm(), "new_secret": new_secret, "events": EVENTS,
        "signature_header": SIGNATURE_HEADER,
    }
    return render(request, "webhooks/settings.html", context, status=status)


@login_required
@require_safe
def webhooks_page(request):
    return _page(request)


@login_required
@require_POST
def add_endpoint(request):
    tenant = tenant_for_admin(request.user)
    form = EndpointForm(request.POST)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    endpoint, secret = services.add_endpoint(tenant, form.cleaned_data["url"], form.cleaned_data["description"],
                                             request.user)
    # Rendered, not redirected: the secret is never stored in plaintext, not even in the session,
    # nor in a cache (the browser's back button, a proxy).
    return _page(request, new_secret={"endpoint": endpoint, "secret": secret})


@login_required
@require_POST
def set_enabled(request, endpoint_id):
    endpoint = access_webhook_endpoint_for_admin(request.user, endpoint_id)
    form = EnabledForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not changed: enabled must be 1 (on) or 0 (off).")
        return _page(request, status=400)
    endpoint.enabled = form.cleaned_data["enabled"]
    endpoint.save(update_fields=["enabled"])
    messages.success(request, f"{endpoint.url} {'enabled' if endpoint.enabled else 'disabled'}.")
    return redirect("webhooks")


@login_required
@require_POST
def delete_endpoint(request, endpoint_id):
    endpoint = access_webhook_endpoint_for_admin(request.user, endpoint_id)
    endpoint.delete()
    messages.success(request, f"{endpoint.url} deleted, with its delivery log.")
    return redirect("webhooks")


@login_required
@require_POST
def send_test(request, endpoint_id):
    endpoint = access_webhook_endpoint_for_admin(request.user, endpoint_id)
    services.queue_test_event(endpoint)
    messages.success(request, f"A test event is on its way to {endpoint.url}; its delivery shows below.")
    return redirect("webhooks")
