"""The settings page's storage locations: add one, record its gatekeeper's health
(fetched by the admin's browser: static/js/settings/locations.js), cut over to
it, retire a drained one (tenants/locations.py does the work). Tenant admins
only: staff 403, another tenant's location 404."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from tenants import forms, locations, onboarding
from tenants.access import access_location_for_admin, locations_for_admin, tenant_for_admin
from tenants.models import StorageLocation

# The browser posts a gatekeeper's /v1/health as it received it: a few hundred bytes.
MAX_HEALTH_BYTES = 16 * 1024


def locations_context(user, *, location_form=None, location_error=None) -> dict:
    return {
        "locations": list(locations_for_admin(user).order_by("created_at", "id")),
        "location_form": location_form or forms.LocationForm(),
        "location_error": location_error,
    }


def _settings_page(request, *, status, **context):
    from tenants.views import render_settings_page

    return render_settings_page(request, status=status, **context)


def _back():
    return redirect(reverse("tenant-settings") + "#locations")


@login_required
@require_POST
def location_add(request):
    tenant = tenant_for_admin(request.user)
    form = forms.LocationForm(request.POST, instance=StorageLocation(tenant=tenant))
    if not form.is_valid():
        return _settings_page(request, status=400, location_form=form)
    data = form.cleaned_data
    location = locations.add_location(tenant, request.user, kind=data["kind"], gatekeeper_url=data["gatekeeper_url"],
                                      gatekeeper_id=data["gatekeeper_id"], storage_origin=data["storage_origin"],
                                      chosen_bucket=data["chosen_bucket"], chosen_region=data["chosen_region"])
    messages.success(request, f"Location {location.gatekeeper_id} added. Connect it: your browser asks its "
                              "gatekeeper for its health.")
    return _back()


def _shown(location: StorageLocation) -> dict:
    return {"id": location.pk, "state": location.state, "bucket": location.reported_bucket,
            "region": location.reported_region, "storage": location.reported_storage,
            "storage_problem": location.reported_storage_problem, "encryption": location.reported_encryption,
            "kms_key_id": location.reported_kms_key_id,
            "reported_at": location.reported_at.isoformat() if location.reported_at else None,
            "mismatches": location.mismatches()}


@login_required
@require_POST
def location_health(request, location_id):
    """The admin's browser posts what the location's gatekeeper answered to GET
    /v1/health (JSON, session + CSRF). 400 with a reason for a body that is not
    such an answer, or one from another gatekeeper."""
    location = access_location_for_admin(request.user, location_id)
    if len(request.body) > MAX_HEALTH_BYTES:
        return JsonResponse({"error": "too_large", "message": "The health is larger than a gatekeeper's."},
                            status=413)
    try:
        health = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return JsonResponse({"error": "bad_json", "message": "The body is not JSON."}, status=400)
    try:
        location = locations.record_health(location, health)
    except locations.LocationError as error:
        return JsonResponse({"error": "refused", "message": str(error)}, status=400)
    onboarding.location_connected(location.tenant, location, request.user)
    return JsonResponse(_shown(location))


@login_required
@require_POST
def location_cut_over(request, location_id):
    location = access_location_for_admin(request.user, location_id)
    form = forms.CutOverForm(request.POST)
    if not form.is_valid() or form.cleaned_data["confirm"] != location.gatekeeper_id:
        return _settings_page(request, status=400, location_error=(
            f"To cut over, type the gatekeeper id {location.gatekeeper_id} exactly."))
    try:
        locations.cut_over(location, request.user)
    except locations.LocationError as error:
        return _settings_page(request, status=409, location_error=str(error))
    # The onboarding checklist's "cut over" step, for the tenant as it is now (its
    # fields mirror the new active location).
    onboarding.record_cut_over(tenant_for_admin(request.user), request.user)
    messages.success(request, f"New tickets now go to {location.gatekeeper_id} ({location.gatekeeper_url}). "
                              "Existing tickets stay readable where they are.")
    return _back()


@login_required
@require_POST
def location_retire(request, location_id):
    location = access_location_for_admin(request.user, location_id)
    try:
        locations.retire(location, request.user)
    except locations.LocationError as error:
        return _settings_page(request, status=409, location_error=str(error))
    messages.success(request, f"Location {location.gatekeeper_id} retired.")
    return _back()
