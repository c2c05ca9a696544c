"""Moving a tenant's existing tickets between its storage locations: the pages
(docs/portal.md, "Moving tickets") and, for a `browser` job, the JSON endpoints the
admin's browser carries the bytes with (static/js/moves/carrier.js).

Tenant admins only (tenants.access.tenant_for_admin: staff 403, no live tenant 404,
another tenant's job 404). Vendor support sees a job's progress read-only for a
tenant it supports (support_required: 404 to anyone else), never a grant.

The browser carrier, one object at a time (several at once, up to the job's
concurrency):
  claim     → objects leased to this tab (services.claim; carrier = user + tab id)
  grants    → a get/list grant at the source, a single-use put at the destination
              (grants.move_grant, carried by the admin in person: [identity] works)
  copied    → the SHA-256 the browser computed of what it read at the source
  verified  → the SHA-256 of what it read back at the destination; the ticket
              switches (services.switch) once all its objects are verified
  sweep     → switched tickets whose source copies are still to erase
  erase-grant / erased → a single-use delete at the source, the gatekeeper's answer
              relayed; the portal writes the receipt (STORAGES["receipts"]) and
              calls services.source_erased.
Nothing here ever carries an object's content: only keys, sizes, digests, states.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from portal.moves import receipts, services, tasks
from portal.moves.models import MoveJob, MoveObject, MoveTicket
from portal.tickets import erasure
from portal.tickets.grants import move_grant, person_carrier
from portal.tickets.models import Ticket
from portal.tickets.serializers import NOTE_CONTENT_TYPE
from tenants.access import access_tenant_for_support, support_required, tenant_for_admin
from tenants.csp import DEFAULT_POLICY, HEADER, idp_origin, render_policy
from tenants.locations import active_location
from tenants.models import StorageLocation, Tenant
from tenants.validators import validate_bucket

MAX_BODY_BYTES = 256 * 1024  # an erase answer of 1000 keys is well under this
TAB_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")  # fullmatch: no trailing newline
FAILURE_CODE = re.compile(r"[a-z0-9_.A-Z]{1,64}")
STALE_COPY = dt.timedelta(minutes=1)  # a copied object nobody verified for this long is handed out again


class Refused(services.MoveRefused):
    pass


def _refused(refusal: services.MoveRefused) -> JsonResponse:
    return JsonResponse({"error": refusal.code, "message": refusal.message}, status=refusal.status)


def _json_body(request) -> dict:
    if len(request.body) > MAX_BODY_BYTES:
        raise Refused("too_large", f"the body is larger than {MAX_BODY_BYTES} bytes", 413)
    try:
        body = json.loads(request.body.decode("utf-8")) if request.body else {}
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused("malformed_json", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise Refused("malformed_json", "the body is a JSON object")
    return body


def _carrier(request, body: dict) -> str:
    """Who holds a lease: this admin, in this tab (a random id the tab keeps for its life)."""
    tab = body.get("carrier")
    if not isinstance(tab, str) or not TAB_ID.fullmatch(tab):
        raise Refused("bad_carrier", "carrier is the tab's id: 8 to 64 letters, digits, - or _")
    return f"u{request.user.pk}:{tab}"[:64]


def _job_for_admin(user, job_id) -> MoveJob:
    job = (MoveJob.objects.select_related("tenant", "source", "destination")
           .filter(tenant=tenant_for_admin(user), pk=job_id).first())
    if job is None:
        raise Http404("not found")
    return job


def _browser_job(user, job_id) -> MoveJob:
    job = _job_for_admin(user, job_id)
    if job.mode != MoveJob.Mode.BROWSER:
        raise Refused("not_a_browser_move", "the vendor's worker carries this move, not a browser", 409)
    return job


def _object_of(job: MoveJob, object_id: int) -> MoveObject:
    found = MoveObject.objects.select_related("move__ticket").filter(move__job=job, pk=object_id).first()
    if found is None:
        raise Http404("not found")
    return found


def move_policy(job: MoveJob) -> str:
    """The job page's CSP: the browser talks to both locations' gatekeepers and storage
    (and the tenant's IdP, when its gatekeeper asks who the person is); nothing else."""
    where = (job.source, job.destination)
    origins = [*(loc.gatekeeper_origin for loc in where), *(loc.storage_origin for loc in where),
               idp_origin(job.tenant)]
    return render_policy({**DEFAULT_POLICY, "connect-src": ("'self'", *dict.fromkeys(filter(None, origins)))})


# --- the pages --------------------------------------------------------------------

class MoveForm(forms.Form):
    source = forms.ModelChoiceField(queryset=StorageLocation.objects.none(), empty_label=None,
                                    help_text="A location that holds tickets.")
    concurrency = forms.IntegerField(min_value=1, max_value=services.MAX_CONCURRENCY, initial=4,
                                     help_text=f"Objects carried at once (1 to {services.MAX_CONCURRENCY}).")
    how = forms.ChoiceField(choices=[("browser", "This browser copies them (between your own locations)"),
                                     ("own_tools", "We copy them with our own tools; this browser verifies")],
                            initial="browser", required=False, widget=forms.RadioSelect)

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.destination = active_location(tenant)
        holding = (Ticket.objects.filter(tenant=tenant, erased_at__isnull=True)
                   .exclude(location=self.destination).values_list("location", flat=True))
        self.fields["source"].queryset = StorageLocation.objects.filter(tenant=tenant, pk__in=holding).order_by("pk")
        self.fields["source"].label_from_instance = lambda loc: f"{loc.gatekeeper_id or loc.get_kind_display()} " \
                                                                f"({loc.get_state_display()})"


def _list_page(request, tenant, form=None, error=None, status=200):
    form = form or MoveForm(tenant=tenant)
    counts = dict(Ticket.objects.filter(tenant=tenant, erased_at__isnull=True).values_list("location")
                  .annotate(n=Count("id")).values_list("location", "n"))
    jobs = list(MoveJob.objects.filter(tenant=tenant).select_related("source", "destination")[:50])
    return render(request, "moves/list.html", {
        "tenant": tenant, "jobs": jobs, "form": form, "destination": form.destination, "error": error,
        "sources": [(loc, counts.get(loc.pk, 0)) for loc in form.fields["source"].queryset]}, status=status)


@login_required
@require_GET
def move_list(request):
    return _list_page(request, tenant_for_admin(request.user))


@login_required
@require_POST
def move_start(request):
    tenant = tenant_for_admin(request.user)
    form = MoveForm(request.POST, tenant=tenant)
    if not form.is_valid():
        return _list_page(request, tenant, form=form, status=400)
    try:
        planned = services.plan(tenant, form.cleaned_data["source"], form.destination, request.user,
                                concurrency=form.cleaned_data["concurrency"],
                                own_tools=form.cleaned_data.get("how") == "own_tools")
    except services.MoveRefused as refusal:
        return _list_page(request, tenant, form=form, error=refusal.message, status=refusal.status)
    # A worker-mode job (out of vendor-hosted storage) runs on the vendor's Celery workers.
    transaction.on_commit(functools.partial(tasks.start, planned.job))
    count = planned.job.tickets.count()
    messages.success(request, f"{count} ticket{'s' if count != 1 else ''} to move." + (
        " Left out: " + ", ".join(f"#{n} ({why})" for n, why in planned.left_out) if planned.left_out else ""))
    return redirect("move-job", job_id=planned.job.id)


def _job_context(job: MoveJob, **extra) -> dict:
    return {"job": job, "tenant": job.tenant, "progress": services.progress(job),
            "tickets": list(job.tickets.select_related("ticket")), **extra}


@login_required
@require_GET
def move_job(request, job_id):
    job = _job_for_admin(request.user, job_id)
    # A job the customer copies with its own tools (job.own_tools): this page carries
    # nothing until the admin asks it to verify the copies (?check=1, which only reads).
    check = request.GET.get("check") == "1"
    # Cancelled with tickets switched: the page still erases their source copies (it claims nothing).
    erasing = job.mode == MoveJob.Mode.BROWSER and job.erasure_due
    browser = job.mode == MoveJob.Mode.BROWSER and job.open
    context = _job_context(job, carries=erasing or (browser and (check or not job.own_tools)),
                           own_tools=browser and job.own_tools,
                           can_own_tools=browser and job.source.kind == Tenant.DataLocation.CUSTOMER,
                           progress_url=reverse("move-progress", args=[job.id]),
                           base_url=reverse("move-job", args=[job.id]),
                           lease_seconds=int(services.lease().total_seconds()),
                           carrier_mode="check" if check else "copy",
                           buckets=(_bucket(job.source, "SOURCE-BUCKET"), _bucket(job.destination, "DESTINATION-BUCKET")))
    response = render(request, "moves/job.html", context)
    response[HEADER] = move_policy(job)
    return response


def _refusal_page(request, job: MoveJob, refusal: services.MoveRefused) -> HttpResponse:
    """A refused change: JSON for a script, else the job page saying why, with its status."""
    if "application/json" in request.headers.get("Accept", ""):
        return _refused(refusal)
    context = _job_context(job, carries=False, error=refusal.message, progress_url=reverse("move-progress", args=[job.id]))
    response = render(request, "moves/job.html", context, status=refusal.status)
    response[HEADER] = move_policy(job)
    return response


@login_required
@require_POST
def move_copier(request, job_id):
    """Who copies from now on (`own_tools` 1: the customer's tools; 0: this browser)."""
    job = _job_for_admin(request.user, job_id)
    own_tools = request.POST.get("own_tools")
    try:
        if own_tools not in ("0", "1"):
            raise Refused("bad_request", "own_tools is 1 (your own tools) or 0 (this browser)")
        services.choose_own_tools(job, own_tools == "1")
    except services.MoveRefused as refusal:
        return _refusal_page(request, job, refusal)
    messages.success(request, "Copy with your own tools: this page only verifies." if own_tools == "1"
                     else "This browser copies the objects.")
    return redirect("move-job", job_id=job.id)


@login_required
@require_GET
def move_progress(request, job_id):
    return JsonResponse(services.progress(_job_for_admin(request.user, job_id)))


@login_required
@require_POST
def move_change(request, job_id, action):
    job = _job_for_admin(request.user, job_id)
    try:
        job = services.change(job, action, request.user)
    except services.MoveRefused as refusal:
        return _refusal_page(request, job, refusal)
    if action in ("resume", "cancel"):  # a cancel still erases what switched (tasks.start)
        transaction.on_commit(functools.partial(tasks.start, job))
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse(services.progress(job))
    messages.success(request, {"pause": "Paused.", "resume": "Resumed.", "cancel": "Cancelled."}[action])
    return redirect("move-job", job_id=job.id)


@login_required
@require_GET
@support_required
def support_move_list(request, slug):
    tenant = access_tenant_for_support(request.user, slug)
    jobs = list(MoveJob.objects.filter(tenant=tenant).select_related("source", "destination")[:50])
    return render(request, "moves/support_list.html", {"support_tenant": tenant, "jobs": jobs})


def _job_for_support(user, slug, job_id) -> MoveJob:
    tenant = access_tenant_for_support(user, slug)
    job = MoveJob.objects.select_related("tenant", "source", "destination").filter(tenant=tenant, pk=job_id).first()
    if job is None:
        raise Http404("not found")
    return job


@login_required
@require_GET
@support_required
def support_move_job(request, slug, job_id):
    """Read-only: the same progress; no script that carries, so the default CSP."""
    job = _job_for_support(request.user, slug, job_id)
    context = _job_context(job, carries=False, support=True,
                           progress_url=reverse("support-move-progress", args=[slug, job.id]))
    context["support_tenant"] = context.pop("tenant")  # no IdP meta: support is not the tenant's person
    return render(request, "moves/job.html", context)


@login_required
@require_GET
@support_required
def support_move_progress(request, slug, job_id):
    return JsonResponse(services.progress(_job_for_support(request.user, slug, job_id)))


# --- the browser carrier's endpoints (JSON, session + CSRF) ----------------------------

def _content_type(obj: MoveObject) -> str:
    ticket = obj.move.ticket
    for file in ticket.files.all():
        if file.key == obj.key:
            return file.content_type
    return NOTE_CONTENT_TYPE


def _shown_object(obj: MoveObject) -> dict:
    return {"id": obj.pk, "key": obj.key, "size": obj.size, "sha256": obj.sha256, "state": obj.state,
            "content_type": _content_type(obj), "ticket": obj.move.ticket.number}


def _carrier_view(view):
    """login + POST + the job (a browser one, the admin's own) + refusals as JSON."""

    @login_required
    @require_POST
    def wrapper(request, job_id, *args, **kwargs):
        try:
            job = _browser_job(request.user, job_id)
            return view(request, job, _json_body(request), *args, **kwargs)
        except services.MoveRefused as refusal:
            return _refused(refusal)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


@_carrier_view
def carrier_claim(request, job, body):
    """Objects for this tab to copy (`copy`), and copied ones nobody verified (`verify`)."""
    carrier = _carrier(request, body)
    limit = body.get("limit", job.concurrency)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= services.MAX_CONCURRENCY:
        raise Refused("bad_limit", f"limit is a whole number from 1 to {services.MAX_CONCURRENCY}")
    # The tab holds each object whole while it hashes it: a round holds at most
    # DUALKEY_MOVE_BROWSER_BYTES (and always one object, however big).
    budget = settings.DUALKEY_MOVE_BROWSER_BYTES
    if job.open and job.own_tools and body.get("mode") != "check":  # a tab opened before the choice
        raise Refused("own_tools", "the customer copies this move with its own tools: a page only verifies", 409)
    taken = services.claim(job, carrier, min(limit, job.concurrency), max_bytes=budget)
    stale = []
    if job.state == MoveJob.State.RUNNING and len(taken) < limit:
        stale = services.within(MoveObject.objects.select_related("move__ticket").filter(
            move__job=job, move__state=MoveTicket.State.PENDING, state=MoveObject.State.COPIED,
            updated_at__lt=timezone.now() - STALE_COPY)[:limit - len(taken)], budget, sum(o.size for o in taken))
    job.refresh_from_db(fields=["state"])
    return JsonResponse({"state": job.state, "copy": [_shown_object(o) for o in taken],
                         "verify": [_shown_object(o) for o in stale]})


@_carrier_view
def carrier_renew(request, job, body):
    """Extend this tab's leases of the objects it is still carrying (the page asks every
    third of a lease): a slow upload is not handed to another tab meanwhile."""
    carrier = _carrier(request, body)
    ids = body.get("ids")
    if (not isinstance(ids, list) or len(ids) > 2 * services.MAX_CONCURRENCY
            or not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63 for i in ids)):
        raise Refused("bad_ids", f"ids is a list of at most {2 * services.MAX_CONCURRENCY} object ids")
    objects = list(MoveObject.objects.filter(move__job=job, pk__in=ids))
    return JsonResponse({"held": services.renew(objects, carrier)})


@_carrier_view
def carrier_grants(request, job, body, object_id):
    """A get grant at the source and a single-use put at the destination, for one
    object this tab holds the lease of (or, `verify`, a get at the destination)."""
    obj = _object_of(job, object_id)
    if job.state != MoveJob.State.RUNNING:
        raise Refused("not_running", f"the move is {job.state}", 409)
    ticket, carrier = obj.move.ticket, person_carrier(request.user)
    if body.get("verify") is True:
        if obj.state != MoveObject.State.COPIED:
            raise Refused("bad_state", f"the object is {obj.state}, not copied", 409)
        return JsonResponse({"get": move_grant(ticket, job.destination, carrier, ("get",)).token})
    if obj.state != MoveObject.State.PENDING or obj.leased_by != _carrier(request, body):
        raise Refused("not_leased", "claim the object first (its lease is another tab's, or over)", 409)
    if body.get("check") is True:
        # The customer copied it with its own tools: read it back at the destination (and,
        # for a note, whose digest the portal never had, at the source too) and hash it.
        answer = {"get_destination": move_grant(ticket, job.destination, carrier, ("get",)).token}
        if not obj.sha256:
            answer["get_source"] = move_grant(ticket, job.source, carrier, ("get",)).token
        return JsonResponse(answer)
    if job.own_tools:
        raise Refused("own_tools", "the customer copies this move with its own tools: a page only verifies", 409)
    return JsonResponse({"get": move_grant(ticket, job.source, carrier, ("get",)).token,
                         "put": move_grant(ticket, job.destination, carrier, ("put",)).token})


def _sha(body) -> str:
    return body.get("sha256") if isinstance(body.get("sha256"), str) else ""


@_carrier_view
def carrier_copied(request, job, body, object_id):
    obj = _object_of(job, object_id)
    if obj.state == MoveObject.State.PENDING and obj.leased_by != _carrier(request, body):
        raise Refused("not_leased", "the object's lease is another tab's, or over", 409)
    size = body.get("size")  # what the tab read at the source (a note has no manifest digest)
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise Refused("bad_size", "size is the number of bytes read at the source")
    obj = services.copied(obj, _sha(body), size=size)
    return JsonResponse({"state": obj.state, "reason": obj.error})


@_carrier_view
def carrier_verified(request, job, body, object_id):
    obj = services.verified(_object_of(job, object_id), _sha(body))
    move = MoveTicket.objects.get(pk=obj.move_id)
    switched = services.switch(move) if obj.state == MoveObject.State.VERIFIED else False
    return JsonResponse({"state": obj.state, "reason": obj.error, "ticket_switched": switched})


@_carrier_view
def carrier_failed(request, job, body, object_id):
    obj = _object_of(job, object_id)
    if obj.state == MoveObject.State.PENDING and obj.leased_by != _carrier(request, body):
        raise Refused("not_leased", "the object's lease is another tab's, or over", 409)
    code, message = body.get("code"), body.get("message")
    if not isinstance(code, str) or not FAILURE_CODE.fullmatch(code) or not isinstance(message, str):
        raise Refused("bad_failure", "code (letters, digits, _ .) and message are strings")
    obj = services.failed(obj, code, message[:300], permanent=body.get("permanent") is True)
    return JsonResponse({"state": obj.state})


@_carrier_view
def carrier_sweep(request, job, body):
    """Tickets whose objects are all verified are switched (a tab that closed after its
    last `verified`); switched ones are listed for the erasure of their source copies."""
    for move in job.tickets.filter(state=MoveTicket.State.PENDING).exclude(
            move_objects__state__in=[MoveObject.State.PENDING, MoveObject.State.COPIED, MoveObject.State.FAILED]):
        services.switch(move)
    services.settle(job)
    job.refresh_from_db(fields=["state"])
    erase = [{"id": m.pk, "ticket": m.ticket.number, "prefix": m.ticket.prefix}
             for m in job.tickets.filter(state=MoveTicket.State.SWITCHED).select_related("ticket")[:50]]
    return JsonResponse({"state": job.state, "erase": erase, "progress": services.progress(job)})


def _switched(job: MoveJob, move_id: int) -> MoveTicket:
    move = job.tickets.select_related("ticket").filter(pk=move_id).first()
    if move is None:
        raise Http404("not found")
    if move.state != MoveTicket.State.SWITCHED:
        raise Refused("not_switched", f"only a switched ticket's source is erased (this one is {move.state})", 409)
    return move


@_carrier_view
def carrier_erase_grant(request, job, body, move_id):
    """A single-use delete grant at the source, and the next keys to erase with it: only
    what the move verified at the destination (never anything else under the prefix,
    as the worker), at most services.MAX_ERASE_OPS a request, each with every version."""
    move = _switched(job, move_id)
    if job.state == MoveJob.State.PAUSED:
        raise Refused("not_running", "the move is paused", 409)
    services.check_distinct(job.source, job.destination)
    left = sorted(_planned(move) - _settled(_parts(job, move)))
    if not left:
        raise Refused("nothing_left", "every moved key is erased already: relay the last answer", 409)
    grant = move_grant(move.ticket, job.source, person_carrier(request.user), ("delete",))
    return JsonResponse({"grant": grant.token, "prefix": move.ticket.prefix, "keys": left[:services.MAX_ERASE_OPS]})


def _parts_name(job: MoveJob, move: MoveTicket) -> str:
    return f"moves/{job.tenant_id}/{job.id.hex}/{move.ticket_id.hex}.parts.json"


def _parts(job: MoveJob, move: MoveTicket) -> list[dict]:
    """The source gatekeeper's answers relayed so far for this ticket (kept beside its receipt)."""
    store, name = storages["receipts"], _parts_name(job, move)
    if not store.exists(name):
        return []
    with store.open(name, "rb") as kept:
        return json.loads(kept.read())


def _planned(move: MoveTicket) -> set[str]:
    return set(move.move_objects.values_list("key", flat=True))


def _settled(parts: list[dict]) -> set[str]:
    return {key for part in parts for key in part.get("settled", ())}


@_carrier_view
def carrier_erased(request, job, body, move_id):
    """The source gatekeeper's answer to a delete of some moved keys, relayed; once
    every moved key is settled (its answer left no version and refused none), the
    receipt is written and the ticket's move is done. A key an answer lists with
    nothing left was erased by a request whose answer was lost: the receipt says so
    (`erased_earlier`). Answers before the last are kept beside the receipt."""
    move = _switched(job, move_id)
    planned = _planned(move)
    try:
        part = erasure.parse_key_answer(move.ticket, body, planned, services.MAX_ERASE_OPS)
    except erasure.ErasureRefused as refusal:
        raise Refused(refusal.code, refusal.message, refusal.status) from None
    parts = _parts(job, move)
    if part["request_id"] in {p["request_id"] for p in parts}:
        raise Refused("duplicate_answer", "this gatekeeper answer was already recorded", 409)
    if len(parts) >= erasure.MAX_PARTS:
        raise Refused("too_many_parts", f"an erasure takes at most {erasure.MAX_PARTS} answers", 409)
    parts.append(part)
    store, name = storages["receipts"], _parts_name(job, move)
    left = planned - _settled(parts)
    if left:
        if store.exists(name):
            store.delete(name)
        store.save(name, ContentFile(json.dumps(parts).encode()))
        return JsonResponse({"state": "partial", "failed": part["failed"], "left": len(left)})
    receipt = receipts.build(move, job.source, parts, person_carrier(request.user), "moved")
    services.source_erased(move, planned, *receipts.store(move, receipt))
    if store.exists(name):
        store.delete(name)
    return JsonResponse({"state": "erased", "receipt_url": reverse("move-receipt", args=[job.id, move.pk])})


@login_required
@require_GET
def move_receipt(request, job_id, move_id):
    """The erasure receipt of one moved ticket's source copies, as stored."""
    job = _job_for_admin(request.user, job_id)
    move = job.tickets.select_related("ticket").filter(pk=move_id).first()
    if move is None:
        raise Http404("not found")
    if move.state != MoveTicket.State.DONE or not move.receipt_name:
        return JsonResponse({"error": "not_erased", "message": f"ticket #{move.ticket.number}'s source copies are "
                                                               f"not erased yet ({move.state})"}, status=409)
    with storages["receipts"].open(move.receipt_name, "rb") as stored:
        data = stored.read()
    if hashlib.sha256(data).hexdigest() != move.receipt_sha256:
        return JsonResponse({"error": "receipt_changed", "message": "the stored receipt is not the one written"},
                            status=409)
    response = HttpResponse(data, content_type="application/json")
    response["Content-Disposition"] = (f'attachment; filename="move-erasure-{job.tenant.slug}-'
                                       f'{move.ticket.number}.json"')
    return response


# --- the customer copies with its own tools ----------------------------------------------

def _bucket(location: StorageLocation, placeholder: str) -> str:
    """The location's bucket as its gatekeeper reported it (else as the admin chose it),
    if it is a bucket name (record_health checks it; this is what a shell script holds)."""
    bucket = location.reported_bucket or location.chosen_bucket
    try:
        validate_bucket(bucket)
    except ValidationError:
        return placeholder
    return bucket


def _to_copy(job: MoveJob):
    return (MoveObject.objects.filter(move__job=job, move__state=MoveTicket.State.PENDING,
                                      state=MoveObject.State.PENDING).order_by("move__ticket__number", "key"))


@login_required
@require_GET
def own_tools(request, job_id, name):
    """What the customer runs with its own credentials instead of this browser carrying the
    bytes: `copy.sh` (one `aws s3 cp` per object still to copy: exact keys, nothing else
    under the prefixes) or `manifest.csv` (an S3 Batch Operations CSV manifest: bucket and
    URL-encoded key). Then the job page with ?check=1 verifies each copy against the
    portal's SHA-256 before any ticket switches. Keys and bucket names only."""
    import shlex
    from urllib.parse import quote

    job = _browser_job_page(request.user, job_id)
    source, destination = _bucket(job.source, "SOURCE-BUCKET"), _bucket(job.destination, "DESTINATION-BUCKET")
    keys = list(_to_copy(job).values_list("key", flat=True))
    if name == "copy.sh":
        lines = ["#!/bin/sh",
                 f"# Dualkey move {job.id}: {len(keys)} object(s) from s3://{source} to s3://{destination}.",
                 "# Run with credentials that may read the source and write the destination; then open",
                 f"# {request.build_absolute_uri(reverse('move-job', args=[job.id]))}?check=1 to verify the copies.",
                 "set -eu"]
        lines += [f"aws s3 cp {shlex.quote(f's3://{source}/{key}')} {shlex.quote(f's3://{destination}/{key}')}"
                  for key in keys]
        body, content_type = "\n".join(lines) + "\n", "text/x-shellscript; charset=utf-8"
    elif name == "manifest.csv":
        body = "".join(f"{source},{quote(key, safe='/')}\r\n" for key in keys)
        content_type = "text/csv; charset=utf-8"
    else:
        raise Http404("not found")
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="move-{job.id.hex[:8]}-{name}"'
    return response


def _browser_job_page(user, job_id) -> MoveJob:
    job = _job_for_admin(user, job_id)
    if job.mode != MoveJob.Mode.BROWSER:
        raise Http404("not found")
    return job
