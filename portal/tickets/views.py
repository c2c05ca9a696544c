"""Pages for help-desk people: the ticket list and the report page."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from portal.tickets import grants

from portal.tickets.access import access_ticket_for_user, tickets_for_user
from tenants.access import LIVE_STATUSES, access_support_access_for_support, membership_for_user, tenant_for_user
from tenants.csp import set_report_csp

TICKETS_PER_PAGE = 25


class FindTicketForm(forms.Form):
    number = forms.IntegerField(min_value=1, required=False, label="Ticket number")


@require_GET
def home(request):
    """Send each kind of user to where their work is."""
    if not request.user.is_authenticated:
        return redirect("login")
    try:
        membership_for_user(request.user)
        return redirect("tickets")
    except Http404:
        pass  # not a member of a live tenant: maybe vendor support
    if request.user.is_staff:
        return redirect("support")
    return render(request, "no_tenant.html", status=404)


@login_required
@require_GET
def ticket_list(request):
    tenant = tenant_for_user(request.user)
    form = FindTicketForm(request.GET)
    if not form.is_valid():
        return render(request, "tickets/list.html", {"tenant": tenant, "form": form, "page": None}, status=400)
    number = form.cleaned_data["number"]
    found = tickets_for_user(request.user)
    if number is not None:
        ticket = found.filter(number=number).first()
        if ticket is not None:
            return redirect("ticket-report", ticket_id=ticket.id)
        found = found.none()
    # (A GROUP BY drops Meta.ordering: newest first is said again.)
    found = found.select_related("agent").annotate(file_count=Count("files", distinct=True)).order_by("-number")
    page = Paginator(found, TICKETS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"tenant": tenant, "form": form, "page": page, "number": number}
    return render(request, "tickets/list.html", context)


@login_required
@require_GET
def report(request, ticket_id):
    """The report shell: metadata and manifest only. The page's JS fetches a grant
    and reads the report straight from the tenant's storage."""
    ticket = access_ticket_for_user(request.user, ticket_id)
    tenant = ticket.tenant
    context = {
        "ticket": ticket,
        "files": list(ticket.files.all()),
        "tenant": tenant,
        "gatekeeper_url": tenant.gatekeeper_url,
        "grant_url": reverse("api-ticket-grant", args=[ticket.id]),
        "prefix": ticket.prefix,
    }
    return set_report_csp(render(request, "tickets/report.html", context), tenant)


# --- vendor support, with a customer's approval (tenants/support_access.py) ---------

@login_required
@require_GET
def support_report(request, access_id):
    """The report page for vendor support: the same shell, whose grants come with
    the customer's approval. Without a running approval: a page that says so."""
    access = access_support_access_for_support(request.user, access_id)
    state = access.state(timezone.now())
    ticket, tenant = access.ticket, access.tenant
    if state != "approved" or tenant.status not in LIVE_STATUSES or not tenant.has_gatekeeper:
        return render(request, "tenants/support_access_closed.html", {"access": access, "state": state}, status=403)
    context = {
        "ticket": ticket,
        "files": list(ticket.files.all()),
        "tenant": tenant,
        "gatekeeper_url": tenant.gatekeeper_url,
        "grant_url": reverse("support-access-grant", args=[access.id]),
        "prefix": ticket.prefix,
        "support_access": access,
    }
    return set_report_csp(render(request, "tickets/report.html", context), tenant)


@login_required
@require_POST
def support_grant(request, access_id):
    """The page's grant: session + CSRF, as the ticket grant. 403 once the approval
    is not running: the portal stops minting for an ended approval at once."""
    access = access_support_access_for_support(request.user, access_id)
    grant = None
    if access.tenant.status in LIVE_STATUSES and access.tenant.has_gatekeeper:
        grant = grants.support_grant(access)
    if grant is None:
        return JsonResponse({"error": "no_approval", "message": "This access is not approved, or has ended."},
                            status=403)
    response = JsonResponse({"grant": grant.token, "approval": grant.approval,
                             "gatekeeper_url": access.tenant.gatekeeper_url, "prefix": access.ticket.prefix,
                             "expires_at": grant.expires_at.isoformat()})
    response["Cache-Control"] = "no-store"
    return response
