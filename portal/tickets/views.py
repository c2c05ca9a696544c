"""Pages for help-desk people: the ticket list, the report page, and the
workflow form both of them post to."""

import datetime as dt
import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.tickets import erasure, grants, services
from portal.tickets.access import (access_ticket_for_admin, access_ticket_for_user, assignable_users, members_of,
                                   tickets_for_user)
from portal.tickets.models import Ticket, TicketFile
from tenants.access import (LIVE_STATUSES, access_support_access_for_support, membership_for_user,
                            suspended_tenant_for_user, tenant_for_user)
from tenants.csp import set_report_csp
from tenants.locations import active_location, location_of

TICKETS_PER_PAGE = 50  # the most one summary grant covers (grants.MAX_SUMMARY_TICKETS)
SUMMARY_NAME = "summary.json"
NO_ONE = "none"


class TicketFilterForm(forms.Form):
    """The list's filters: all on what the vendor holds, so the server can apply
    them to every ticket, not only the ones on a page."""

    number = forms.IntegerField(min_value=1, required=False, label="Ticket #")
    stage = forms.ChoiceField(required=False, label="Status", choices=[("", "Any status"), *Ticket.Stage.choices])
    assignee = forms.ChoiceField(required=False, label="Assignee")
    agent = forms.ChoiceField(required=False, label="Agent")
    created_from = forms.DateField(required=False, label="From (UTC)", widget=forms.DateInput(attrs={"type": "date"}))
    created_to = forms.DateField(required=False, label="To (UTC)", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data, *, members, agents):
        super().__init__(data)
        self.fields["assignee"].choices = [("", "Anyone"), (NO_ONE, "Unassigned"),
                                           *((str(u.pk), _name(u)) for u in members)]
        self.fields["agent"].choices = [("", "Any agent"), *((str(pk), name) for pk, name in agents)]

    def clean(self):
        data = super().clean()
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            raise forms.ValidationError("The range's start is after its end.")
        return data

    def apply(self, tickets):
        data = self.cleaned_data
        if data.get("stage"):
            tickets = tickets.filter(stage=data["stage"])
        if data.get("assignee") == NO_ONE:
            tickets = tickets.filter(assignee__isnull=True)
        elif data.get("assignee"):
            tickets = tickets.filter(assignee_id=int(data["assignee"]))
        if data.get("agent"):
            tickets = tickets.filter(agent_id=int(data["agent"]))
        if data.get("created_from"):
            tickets = tickets.filter(created_at__gte=_utc_midnight(data["created_from"]))
        if data.get("created_to"):
            tickets = tickets.filter(created_at__lt=_utc_midnight(data["created_to"] + dt.timedelta(days=1)))
        return tickets


class WorkflowForm(forms.Form):
    stage = forms.ChoiceField(choices=Ticket.Stage.choices, label="Status")
    assignee = forms.ChoiceField(required=False, label="Assignee")
    next = forms.CharField(required=False, max_length=2000)

    def __init__(self, data=None, *, ticket, members, **kwargs):
        super().__init__(data, **kwargs)
        self.ticket = ticket
        self.members = {str(u.pk): u for u in members}
        self.fields["assignee"].choices = [("", "Unassigned"), *((pk, _name(u)) for pk, u in self.members.items())]


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


def _utc_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.timezone.utc)


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
    return _no_live_tenant(request)


def _no_live_tenant(request):
    """A suspended tenant's member hears so (403); anyone else has no tenant (404)."""
    suspended = suspended_tenant_for_user(request.user)
    if suspended is not None:
        return render(request, "tenants/suspended.html", {"tenant": suspended}, status=403)
    return render(request, "no_tenant.html", status=404)


@login_required
@require_GET
def ticket_list(request):
    try:
        tenant = tenant_for_user(request.user)
    except Http404:
        return _no_live_tenant(request)
    tickets = tickets_for_user(request.user)
    members = list(members_of(tenant))
    agents = list(tickets.filter(agent__isnull=False).values_list("agent_id", "agent__name")
                  .distinct().order_by("agent__name"))
    form = TicketFilterForm(request.GET, members=members, agents=agents)
    context = {"tenant": tenant, "form": form, "page": None, "members": members, "stages": Ticket.Stage.choices}
    if not form.is_valid():
        return render(request, "tickets/list.html", context, status=400)
    number = form.cleaned_data["number"]
    if number is not None:
        ticket = tickets.filter(number=number).first()
        if ticket is not None:
            return redirect("ticket-report", ticket_id=ticket.id)
        tickets = tickets.none()
    found = form.apply(tickets)
    # (A GROUP BY drops Meta.ordering: newest first is said again.)
    found = (found.select_related("agent", "assignee", "location").annotate(file_count=Count("files", distinct=True))
             .prefetch_related(Prefetch("files", TicketFile.objects.filter(name=SUMMARY_NAME, ticket__erasure__isnull=True),
                                        to_attr="summaries"))
             .order_by("-number"))
    page = Paginator(found, TICKETS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    filtered = any(form.cleaned_data.get(name) for name in ("stage", "assignee", "agent", "created_from", "created_to"))
    context.update(page=page, number=number, query=query.urlencode(), filtered=filtered,
                   summary_grant_url=reverse("api-summary-grant"), next_url=request.get_full_path())
    # The page's script reads summaries from the gatekeeper and storage of each
    # shown ticket's own location: one grant per location, and the CSP names them all.
    locations = list({t.location_id: t.location for t in page.object_list}.values()) or [active_location(tenant)]
    return set_report_csp(render(request, "tickets/list.html", context), tenant, *locations)


@login_required
@require_GET
def report(request, ticket_id):
    """The report shell: metadata and manifest only. The page's JS fetches a grant
    and reads the report straight from the tenant's storage."""
    ticket = access_ticket_for_user(request.user, ticket_id)
    tenant, location = ticket.tenant, location_of(ticket)
    if ticket.erasing:
        return _tombstone(request, ticket)
    siblings = tickets_for_user(request.user).filter(tenant=tenant)
    members = list(assignable_users(ticket))
    context = {
        "ticket": ticket,
        "files": list(ticket.files.all()),
        "tenant": tenant,
        "location": location,
        "gatekeeper_url": location.gatekeeper_url,
        "grant_url": reverse("api-ticket-grant", args=[ticket.id]),
        "notes_url": reverse("api-ticket-notes", args=[ticket.id]),
        "prefix": ticket.prefix,
        "notes": list(ticket.notes.filter(stored_at__isnull=False)),
        "events": list(ticket.events.all()),
        "newer": siblings.filter(number__gt=ticket.number).order_by("number").first(),
        "older": siblings.filter(number__lt=ticket.number).order_by("-number").first(),
        "workflow": WorkflowForm(ticket=ticket, members=members,
                                 initial={"stage": ticket.stage, "assignee": ticket.assignee_id or ""}),
        "is_admin": membership_for_user(request.user).is_admin,
    }
    return set_report_csp(render(request, "tickets/report.html", context), tenant, location)


@login_required
@require_http_methods(["GET", "POST"])
def workflow(request, ticket_id):
    """Change a ticket's status and assignee (a form on the list and on the report
    page). A GET, say a reloaded or bookmarked form target, goes to the ticket."""
    ticket = access_ticket_for_user(request.user, ticket_id)
    if request.method == "GET":
        return redirect("ticket-report", ticket_id=ticket.id)
    if ticket.erasing:  # a tombstone has no workflow
        return render(request, "tickets/workflow_refused.html",
                      {"ticket": ticket, "errors": "the ticket is erased"}, status=409)
    form = WorkflowForm(request.POST, ticket=ticket, members=assignable_users(ticket))
    if not form.is_valid():
        errors = "; ".join(f"{form.fields[name].label if name in form.fields else name}: {' '.join(e)}"
                           for name, e in form.errors.items())
        return render(request, "tickets/workflow_refused.html", {"ticket": ticket, "errors": errors}, status=400)
    assignee = form.members.get(form.cleaned_data["assignee"]) if form.cleaned_data["assignee"] else None
    events = services.change_workflow(ticket, request.user, stage=form.cleaned_data["stage"], assignee=assignee)
    if events:
        messages.success(request, f"Ticket #{ticket.number}: " + "; ".join(
            f"{e.get_kind_display().lower()} {e.old} → {e.new}" for e in events) + ".")
    target = form.cleaned_data["next"]
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()) or not target.startswith("/"):
        target = reverse("ticket-report", args=[ticket.id])
    return redirect(target)


# --- vendor support, with a customer's approval (tenants/support_access.py) ---------

@login_required
@require_GET
def support_report(request, access_id):
    """The report page for vendor support: the same shell, whose grants come with
    the customer's approval. Without a running approval: a page that says so."""
    access = access_support_access_for_support(request.user, access_id)
    state = access.state(timezone.now())
    ticket, tenant = access.ticket, access.tenant
    location = location_of(ticket)
    if state != "approved" or tenant.status not in LIVE_STATUSES or not location.has_gatekeeper or ticket.erasing:
        return render(request, "tenants/support_access_closed.html", {"access": access, "state": state}, status=403)
    context = {
        "ticket": ticket,
        "files": list(ticket.files.all()),
        "tenant": tenant,
        "location": location,
        "gatekeeper_url": location.gatekeeper_url,
        "grant_url": reverse("support-access-grant", args=[access.id]),
        "prefix": ticket.prefix,
        "notes": list(ticket.notes.filter(stored_at__isnull=False)),
        "events": list(ticket.events.all()),
        "support_access": access,
    }
    return set_report_csp(render(request, "tickets/report.html", context), tenant, location)


@login_required
@require_POST
def support_grant(request, access_id):
    """The page's grant: session + CSRF, as the ticket grant. 403 once the approval
    is not running: the portal stops minting for an ended approval at once."""
    access = access_support_access_for_support(request.user, access_id)
    grant, location = None, location_of(access.ticket)
    if access.tenant.status in LIVE_STATUSES and location.has_gatekeeper and not access.ticket.erasing:
        grant = grants.support_grant(access)
    if grant is None:
        return JsonResponse({"error": "no_approval", "message": "This access is not approved, or has ended."},
                            status=403)
    return JsonResponse({"grant": grant.token, "approval": grant.approval,
                         "gatekeeper_url": location.gatekeeper_url, "prefix": access.ticket.prefix,
                         "expires_at": grant.expires_at.isoformat()})


# --- erasing a ticket (a tenant admin's; portal/tickets/erasure.py) -------------------

def _tombstone(request, ticket):
    """What is left of an erased ticket (or one being erased): its number, times, who."""
    found = getattr(ticket, "erasure", None) if ticket.erasing else None
    is_admin = membership_for_user(request.user).is_admin
    return render(request, "tickets/erased.html", {"ticket": ticket, "erasure": found, "is_admin": is_admin})


def _refused(refusal: erasure.ErasureRefused) -> JsonResponse:
    return JsonResponse({"error": refusal.code, "message": refusal.message}, status=refusal.status)


def _json_body(request) -> object:
    try:
        return json.loads(request.body.decode("utf-8")) if request.body else {}
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise erasure.ErasureRefused("malformed_json", "the body is not JSON") from None


@login_required
@require_GET
def erase(request, ticket_id):
    """The confirmation page. Its script erases through the gatekeeper (erase.js)."""
    ticket = access_ticket_for_admin(request.user, ticket_id)
    holder = erasure.gatekeeper_for(ticket)
    found = getattr(ticket, "erasure", None) if ticket.erasing else None
    context = {"ticket": ticket, "erasure": found, "files": list(ticket.files.all()),
               "notes": ticket.notes.count(), "tenant": ticket.tenant, "gatekeeper_url": holder.gatekeeper_url,
               "grant_url": reverse("ticket-erase-grant", args=[ticket.id]),
               "done_url": reverse("ticket-erase-done", args=[ticket.id]),
               "receipt_url": reverse("ticket-erase-receipt", args=[ticket.id])}
    return set_report_csp(render(request, "tickets/erase.html", context), ticket.tenant, holder)


@login_required
@require_POST
def erase_grant(request, ticket_id):
    """Confirm (`{"confirm": "<the ticket's number>"}`) and get a single-use delete grant
    for the ticket's prefix. Session + CSRF. Again for each answer that says more is left."""
    ticket = access_ticket_for_admin(request.user, ticket_id)
    holder = erasure.gatekeeper_for(ticket)
    try:
        body = _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("confirm"), (str, int)):
            raise erasure.ErasureRefused("not_confirmed", f"Type the ticket's number ({ticket.number}) to confirm.")
        if not holder.has_gatekeeper:
            raise erasure.ErasureRefused("no_gatekeeper", "This tenant has no gatekeeper configured.", 409)
        erasure.start(ticket, request.user, str(body["confirm"]))
    except erasure.ErasureRefused as refusal:
        return _refused(refusal)
    grant = grants.erase_grant(ticket, request.user)
    return JsonResponse({"grant": grant.token, "gatekeeper_url": holder.gatekeeper_url, "prefix": ticket.prefix,
                         "expires_at": grant.expires_at.isoformat()})


@login_required
@require_POST
def erase_done(request, ticket_id):
    """The gatekeeper's answer to the erase op, as the admin's browser got it."""
    ticket = access_ticket_for_admin(request.user, ticket_id)
    try:
        found = erasure.record(ticket, _json_body(request))
    except erasure.ErasureRefused as refusal:
        return _refused(refusal)
    if found.finished_at is None:
        return JsonResponse({"state": "partial", "failed": found.parts[-1]["failed"]})
    return JsonResponse({"state": "erased", "receipt_url": reverse("ticket-erase-receipt", args=[ticket.id])})


@login_required
@require_GET
def erase_receipt(request, ticket_id):
    """The erasure's receipt (JSON), as stored; 404 until the erasure has finished."""
    ticket = access_ticket_for_admin(request.user, ticket_id)
    found = getattr(ticket, "erasure", None) if ticket.erasing else None
    if found is None or found.finished_at is None:
        raise Http404("not found")
    try:
        data = erasure.read_receipt(found)
    except erasure.ErasureRefused as refusal:
        return _refused(refusal)
    response = HttpResponse(data, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="erasure-{ticket.tenant.slug}-{ticket.number}.json"'
    return response
