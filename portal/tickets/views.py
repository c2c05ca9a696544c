"""Pages for help-desk people: the ticket list and the report page."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from portal.tickets.access import access_ticket_for_user, tickets_for_user
from tenants.access import membership_for_user, tenant_for_user
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
