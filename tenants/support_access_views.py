"""Vendor support access to one ticket: support asks (/support/…), a tenant admin
approves with an approver key only the customer holds, or refuses, or ends it early
(/settings/…). The steps are tenants/support_access.py's; the report page that
support then opens, and its grants, are portal/tickets' (views.support_report).

Admin pages: 403 to the tenant's staff, 404 for another tenant's requests. Support
pages: 404 to anyone but vendor support, and for another support person's requests.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tenants import forms, support_access
from tenants.views import render_settings_page as settings_page
from tenants.access import (
    access_support_access_for_admin,
    access_tenant_for_support,
    access_ticket_for_support,
    support_accesses_for_support,
    support_required,
    tenant_for_admin,
)

SETTINGS_ANCHOR = "#support-access"


# --- vendor support --------------------------------------------------------------

@login_required
@require_GET
@support_required
def support_access_list(request):
    now = timezone.now()
    rows = [{"access": a, "state": a.state(now)} for a in support_accesses_for_support(request.user)]
    return render(request, "tenants/support_access_list.html", {"rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
@support_required
def support_access_new(request, slug):
    tenant = access_tenant_for_support(request.user, slug)
    form = forms.SupportAccessRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "GET":
        return render(request, "tenants/support_access_new.html", {"tenant": tenant, "form": form})
    if form.is_valid():
        data = form.cleaned_data
        ticket = access_ticket_for_support(request.user, slug, data["number"])
        try:
            support_access.request_access(request.user, ticket, reason_code=data["reason_code"], reason=data["reason"],
                                          hours=data["hours"], ops=data["ops"])
        except support_access.AccessError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Asked {tenant.name}'s admins for access to ticket #{ticket.number}.")
            return redirect("support-access")
    return render(request, "tenants/support_access_new.html", {"tenant": tenant, "form": form}, status=400)


# --- tenant admins ------------------------------------------------------------------

@login_required
@require_GET
def support_access_request_json(request, access_id):
    """What an approver signs, for `python -m gatekeeper approvers approve` (and
    for the page's browser key)."""
    access = access_support_access_for_admin(request.user, access_id)
    response = JsonResponse(support_access.request_json(access), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="support-access-{access.approval_id}.json"'
    return response


def _step(request, access_id, step, done: str):
    access = access_support_access_for_admin(request.user, access_id)
    try:
        step(access)
    except support_access.AccessError as error:
        return settings_page(request, support_error=str(error), status=error.status)
    messages.success(request, done.format(number=access.ticket.number, who=access.requested_by.get_username()))
    return redirect(reverse("tenant-settings") + SETTINGS_ANCHOR)


@login_required
@require_POST
def support_access_approve(request, access_id):
    access_support_access_for_admin(request.user, access_id)  # 404 / 403 before the body is read
    form = forms.ApprovalForm(request.POST)
    if not form.is_valid():
        return settings_page(request, support_error="Paste or make an approval (a JWS) first.", status=400)
    return _step(request, access_id, lambda a: support_access.approve(a, form.cleaned_data["approval"], request.user),
                 "Approved: {who} may read ticket #{number} until the approval ends.")


@login_required
@require_POST
def support_access_refuse(request, access_id):
    return _step(request, access_id, lambda a: support_access.refuse(a, request.user),
                 "Refused: {who} gets no access to ticket #{number}.")


@login_required
@require_POST
def support_access_end(request, access_id):
    return _step(request, access_id, lambda a: support_access.end(a, request.user),
                 "Ended: the portal gives {who} no more access to ticket #{number}. For a hard stop, add the "
                 "approval id to your gatekeeper's revocation.approvals.")


@login_required
@require_POST
def approver_key_add(request):
    tenant = tenant_for_admin(request.user)
    form = forms.ApproverKeyForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": "bad_request", "message": "approver_id and public_jwk are required"},
                            status=400)
    try:
        key = support_access.add_approver_key(tenant, request.user, form.cleaned_data["approver_id"],
                                              form.cleaned_data["public_jwk"])
    except support_access.AccessError as error:
        return JsonResponse({"error": "bad_request", "message": str(error)}, status=400)
    return JsonResponse({"approver_id": key.approver_id}, status=201)
