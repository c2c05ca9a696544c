"""The one place that changes a move's state (portal/moves/models.py). Both carriers —
the vendor's worker (worker.py) and the admin's browser (views.py) — call these,
so the rules are the same whichever carries the bytes:

- `plan` builds a job from the tickets at one source: the manifest's files (of a
  complete upload) and the stored notes, with the sizes and SHA-256 the portal
  holds. A ticket still uploading or being erased is left out, and named.
- `claim` hands out pending objects under a lease; a carrier killed mid-object
  leaves its lease to run out, and the object is taken again (an S3 upload is
  all or nothing, so nothing half-written is ever counted).
- `copied` / `verified` record what the carrier saw; `verified` compares the
  destination's SHA-256 with the manifest's (constant time) and fails the object
  — and so its ticket, which is never switched — on a mismatch.
- `switch` moves a ticket whose objects are all verified to the destination in
  one transaction; from then on its grants, downloads and CSP name the
  destination. Only a switched ticket's source copies may be erased.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from portal.moves.models import MoveJob, MoveObject, MoveTicket
from portal.tickets.erasure import UPLOADS_MAY_LAND_FOR
from portal.tickets.models import Ticket
from tenants import events
from tenants.models import StorageLocation, Tenant

LEASE = dt.timedelta(minutes=5)  # lease() when DUALKEY_MOVE_LEASE_SECONDS is unset (settings.py sets 60 s)
MAX_CONCURRENCY = 16
MAX_ATTEMPTS = 5  # transient failures of one object before it is failed for good
SHA256_HEX = frozenset("0123456789abcdef")


class MoveRefused(Exception):
    """A move request that cannot go on: `code` for the caller, `status` for HTTP."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _display(user) -> str:
    return events.describe(user)[:200] if user else "the portal"


# What the vendor's worker asks of each end's gatekeeper: reads, erasure (at the
# source), and at the destination the copy, its read-back and an erasure of a failed
# ticket's copies.
WORKER_OPS_AT_SOURCE, WORKER_OPS_AT_DESTINATION = {"get", "list", "delete"}, {"get", "put", "delete"}


def mode_for(source: StorageLocation, destination: StorageLocation) -> str:
    """Who may carry the bytes: the vendor's worker only from storage the vendor hosts,
    and only when neither gatekeeper asks the person's ID token ([identity]) for what
    the worker does there: a worker has none (it could copy, never read its copy back).
    Otherwise the admin's browser, which carries her token."""
    person_needed = source.identity_ops & WORKER_OPS_AT_SOURCE or destination.identity_ops & WORKER_OPS_AT_DESTINATION
    if source.kind == Tenant.DataLocation.VENDOR and not person_needed:
        return MoveJob.Mode.WORKER
    return MoveJob.Mode.BROWSER


def open_move(ticket: Ticket) -> MoveTicket | None:
    """The ticket's unfinished move, if any (no new notes while it moves: they would be left behind)."""
    return MoveTicket.objects.filter(ticket=ticket, state__in=[MoveTicket.State.PENDING,
                                                               MoveTicket.State.SWITCHED]).first()


def _objects_of(ticket: Ticket) -> list[dict]:
    found = [{"key": f.key, "size": f.size, "sha256": f.sha256} for f in ticket.files.all()]
    found += [{"key": n.key, "size": n.size, "sha256": ""} for n in ticket.notes.filter(stored_at__isnull=False)]
    return found


@dataclass
class Plan:
    job: MoveJob
    left_out: list[tuple[int, str]]  # (ticket number, why)


MAX_ERASE_OPS = 100  # keys one erasing request deletes: the gatekeeper's MAX_BATCH_OPS
AWS_HOSTS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")


def _bucket_at(location: StorageLocation) -> tuple[str, str]:
    """(where, bucket): the bucket the location's gatekeeper reported (else the admin's
    choice), and the storage service it is on: "aws" for AWS (a bucket name is AWS's
    alone, whatever the endpoint), else the storage origin's host and port."""
    bucket = location.reported_bucket or location.chosen_bucket
    parts = urlsplit(location.storage_origin)
    host = (parts.hostname or "").rstrip(".").removeprefix(f"{bucket}.")
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, "")
    return ("aws" if host.endswith(AWS_HOSTS) else f"{host}:{port}"), bucket


def check_distinct(source: StorageLocation, destination: StorageLocation) -> None:
    """Refuse a move whose two locations keep objects in one bucket (two gatekeepers in
    front of it): each object would be copied onto itself, read back as a match, then
    erased with every version. A bucket not known yet (no health recorded): one storage
    origin for both could be one bucket (path style), so that is refused too."""
    (here, bucket), (there, other) = _bucket_at(source), _bucket_at(destination)
    if not (bucket and other):
        if source.storage_origin == destination.storage_origin:
            raise MoveRefused("bucket_unknown", "Both locations use storage at " + source.storage_origin
                              + " and the bucket of " + ("the source" if not bucket else "the destination")
                              + " is not known: check its gatekeeper (Storage locations) first.", 409)
    elif (here, bucket) == (there, other):
        raise MoveRefused("same_bucket", f"Both locations keep their objects in bucket {bucket}: nothing is "
                          "moved (a copy onto itself, then erased, would lose it). The tickets stay readable "
                          "through the source's gatekeeper; pointing them at another gatekeeper of the same "
                          "bucket without copying is not built yet.", 409)


def _check_own_tools(mode: str, source: StorageLocation) -> None:
    if mode != MoveJob.Mode.BROWSER or source.kind != Tenant.DataLocation.CUSTOMER:
        raise MoveRefused("own_tools_refused", "Only a move out of your own storage can be copied with your own "
                          "tools (you hold no credentials for storage the vendor hosts).", 409)


def plan(tenant: Tenant, source: StorageLocation, destination: StorageLocation, user, *,
         tickets: list[Ticket] | None = None, concurrency: int = 4, own_tools: bool = False,
         now: dt.datetime | None = None) -> Plan:
    """A new running job moving `tickets` (default: all of them) from `source` to
    `destination`; `own_tools`: the customer copies, the browser only verifies."""
    now = now or timezone.now()
    if own_tools:
        _check_own_tools(mode_for(source, destination), source)
    if source.tenant_id != tenant.pk or destination.tenant_id != tenant.pk:
        raise MoveRefused("not_found", "No such location.", 404)
    if source.pk == destination.pk:
        raise MoveRefused("same_location", "The tickets are already at that location.")
    if destination.state != StorageLocation.State.ACTIVE:
        raise MoveRefused("destination_not_active",
                          "Tickets move to the active location: cut over to it first, then move.", 409)
    if not destination.has_gatekeeper:
        raise MoveRefused("destination_not_connected", "The destination has no gatekeeper connected.", 409)
    check_distinct(source, destination)
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise MoveRefused("bad_concurrency", f"concurrency is a whole number from 1 to {MAX_CONCURRENCY}")
    chosen = Ticket.objects.filter(tenant=tenant, location=source, erased_at__isnull=True)
    if tickets is not None:
        chosen = chosen.filter(pk__in=[t.pk for t in tickets])
    try:
        with transaction.atomic():
            return _plan_locked(tenant, source, destination, user, chosen, concurrency, own_tools, now)
    except IntegrityError:  # a simultaneous plan took one of these tickets first
        raise MoveRefused("already_moving", "Another move took some of these tickets: reload and try again.", 409)


def _plan_locked(tenant, source, destination, user, chosen, concurrency, own_tools, now) -> Plan:
    """The plan's reads and writes in one transaction, the tickets' rows locked: a note
    being started on one of them (portal/tickets/api.py `notes`, which takes the same
    lock) is either seen here or refused there, never written in between (PostgreSQL;
    SQLite has no row locks, and runs one writer at a time)."""
    left_out, moving = [], []
    for ticket in chosen.select_for_update().prefetch_related("files", "notes").order_by("number"):
        if ticket.erasing:
            left_out.append((ticket.number, "being erased"))
        elif ticket.status != Ticket.Status.COMPLETE:
            left_out.append((ticket.number, "still uploading"))
        elif open_move(ticket) is not None:
            left_out.append((ticket.number, "already in a move"))
        elif any(n.stored_at is None and n.created_at > now - UPLOADS_MAY_LAND_FOR for n in ticket.notes.all()):
            # Its upload could still land at the source after the plan: it would be left behind.
            left_out.append((ticket.number, "a note is being written"))
        else:
            moving.append(ticket)
    if not moving:
        raise MoveRefused("nothing_to_move", "No ticket at that location can be moved now.", 409)
    job = MoveJob.objects.create(
        tenant=tenant, source=source, destination=destination, mode=mode_for(source, destination),
        concurrency=concurrency, own_tools=own_tools, created_by=user, created_by_name=_display(user), created_at=now,
        state_changed_at=now, state_changed_by_name=_display(user))
    for ticket in moving:
        move = MoveTicket.objects.create(job=job, ticket=ticket)
        MoveObject.objects.bulk_create(MoveObject(move=move, updated_at=now, **o) for o in _objects_of(ticket))
    return Plan(job, left_out)


def lease() -> dt.timedelta:
    """How long a claimed object stays its carrier's: DUALKEY_MOVE_LEASE_SECONDS (a
    carrier renews it while the object streams: `renew`)."""
    return dt.timedelta(seconds=getattr(settings, "DUALKEY_MOVE_LEASE_SECONDS", LEASE.total_seconds()))


def within(objects, max_bytes: int | None, held: int = 0) -> list[MoveObject]:
    """The first of `objects` that hold at most `max_bytes` together with the `held`
    bytes a carrier already has; all when None. Always one when nothing is held: a
    carrier must be able to take every object, however big."""
    kept = []
    for obj in objects:
        if max_bytes is not None and (kept or held) and held + obj.size > max_bytes:
            break
        kept.append(obj)
        held += obj.size
    return kept


def claim(job: MoveJob, carrier: str, limit: int, *, now: dt.datetime | None = None,
          exclude: set[int] | frozenset = frozenset(), max_bytes: int | None = None) -> list[MoveObject]:
    """Up to `limit` objects for `carrier` to copy: pending ones nobody holds (or whose
    lease ran out). None while the job is paused or over. `exclude`: the ids the
    carrier is still carrying (its own leases, not to be handed to it twice).
    `max_bytes`: what they may hold together (`within`), for a carrier that holds
    each object whole (a browser tab; the worker streams)."""
    now = now or timezone.now()
    with transaction.atomic():
        job = MoveJob.objects.select_for_update().get(pk=job.pk)
        if job.state != MoveJob.State.RUNNING:
            return []
        free = (MoveObject.objects.select_for_update()
                .filter(move__job=job, move__state=MoveTicket.State.PENDING, state=MoveObject.State.PENDING)
                .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now) | Q(leased_by=carrier))
                .exclude(pk__in=list(exclude))
                .order_by("move__ticket__number", "key")[:limit])
        taken = within(free, max_bytes)
        for obj in taken:
            obj.leased_by, obj.leased_until, obj.updated_at = carrier, now + lease(), now
            obj.attempts += 1
        MoveObject.objects.bulk_update(taken, ["leased_by", "leased_until", "updated_at", "attempts"])
    return taken


def renew(objects: list[MoveObject], carrier: str, *, now: dt.datetime | None = None) -> int:
    """Extend `carrier`'s leases of these objects (still pending, still its own) by one
    lease from now; how many it still holds."""
    now = now or timezone.now()
    return MoveObject.objects.filter(pk__in=[o.pk for o in objects], state=MoveObject.State.PENDING,
                                     leased_by=carrier).update(leased_until=now + lease(), updated_at=now)


def _locked(obj: MoveObject) -> MoveObject:
    return MoveObject.objects.select_for_update().select_related("move").get(pk=obj.pk)


def _digest(value: object) -> str:
    if not isinstance(value, str) or len(value) != 64 or not set(value) <= SHA256_HEX:
        raise MoveRefused("bad_digest", "sha256 is 64 lowercase hex digits")
    return value


def copied(obj: MoveObject, sha256: str, *, size: int | None = None, now: dt.datetime | None = None) -> MoveObject:
    """The carrier wrote the object at the destination; `sha256` (and `size`, when it
    says) is what it read at the source. For a manifest file the digest must already
    match, and for any object the size (else the source changed: it fails, and a
    browser wrote nothing)."""
    now, sha256 = now or timezone.now(), _digest(sha256)
    with transaction.atomic():
        obj = _locked(obj)
        if obj.state != MoveObject.State.PENDING:
            return obj  # a carrier retrying after its answer was lost: nothing done twice
        if size is not None and size != obj.size:
            return _fail(obj, "changed_at_source", f"it holds {size} bytes at the source, not {obj.size}", now)
        if obj.sha256 and not hmac.compare_digest(obj.sha256, sha256):
            return _fail(obj, "changed_at_source", "its SHA-256 at the source is not the manifest's", now)
        obj.sha256 = obj.sha256 or sha256
        obj.state, obj.leased_by, obj.leased_until, obj.updated_at = MoveObject.State.COPIED, "", None, now
        obj.save(update_fields=["sha256", "state", "leased_by", "leased_until", "updated_at"])
    return obj


def verified(obj: MoveObject, sha256: str, *, now: dt.datetime | None = None) -> MoveObject:
    """The carrier read the object back at the destination and hashed it."""
    now, sha256 = now or timezone.now(), _digest(sha256)
    with transaction.atomic():
        obj = _locked(obj)
        if obj.state != MoveObject.State.COPIED:
            return obj
        if not hmac.compare_digest(obj.sha256, sha256):
            return _fail(obj, "changed_at_destination", "its SHA-256 at the destination is not the source's", now)
        obj.state, obj.updated_at = MoveObject.State.VERIFIED, now
        obj.save(update_fields=["state", "updated_at"])
    return obj


def verify_refused(obj: MoveObject, code: str, message: str, *, now: dt.datetime | None = None) -> MoveObject:
    """A copied object the destination refuses, for good, to hand back (a 4xx): it
    fails, and so does its ticket (never switched)."""
    now = now or timezone.now()
    with transaction.atomic():
        obj = _locked(obj)
        if obj.state == MoveObject.State.COPIED:
            return _fail(obj, code, message, now)
    return obj


def failed(obj: MoveObject, code: str, message: str, *, permanent: bool,
           now: dt.datetime | None = None) -> MoveObject:
    """A carrier could not copy it. Transient: the lease is given back, to be tried again
    (up to MAX_ATTEMPTS). Permanent: the object, and its ticket, stop here."""
    now = now or timezone.now()
    with transaction.atomic():
        obj = _locked(obj)
        if obj.state != MoveObject.State.PENDING:
            return obj
        if permanent or obj.attempts >= MAX_ATTEMPTS:
            return _fail(obj, code, message, now)
        obj.error_code, obj.error, obj.leased_by, obj.leased_until, obj.updated_at = (
            code[:64], message[:300], "", None, now)
        obj.save(update_fields=["error_code", "error", "leased_by", "leased_until", "updated_at"])
    return obj


def _fail(obj: MoveObject, code: str, message: str, now: dt.datetime) -> MoveObject:
    obj.state, obj.error_code, obj.error = MoveObject.State.FAILED, code[:64], message[:300]
    obj.leased_by, obj.leased_until, obj.updated_at = "", None, now
    obj.save(update_fields=["state", "error_code", "error", "leased_by", "leased_until", "updated_at"])
    MoveTicket.objects.filter(pk=obj.move_id, state=MoveTicket.State.PENDING).update(
        state=MoveTicket.State.FAILED, error=f"{obj.key.rsplit('/', 1)[-1][:100]}: {message}"[:300])
    return obj


def switch(move: MoveTicket, *, now: dt.datetime | None = None) -> bool:
    """If every object of the ticket is verified, the ticket now lives at the destination."""
    now = now or timezone.now()
    with transaction.atomic():
        move = MoveTicket.objects.select_for_update().select_related("job").get(pk=move.pk)
        if move.state != MoveTicket.State.PENDING:
            return move.state in (MoveTicket.State.SWITCHED, MoveTicket.State.DONE)
        if move.move_objects.exclude(state=MoveObject.State.VERIFIED).exists():
            return False
        ticket = Ticket.objects.select_for_update().get(pk=move.ticket_id)
        if ticket.location_id != move.job.source_id:
            raise MoveRefused("moved_elsewhere", "the ticket is no longer at the job's source", 409)
        # Locked as tenants.locations.retire locks it: a location retired (it held no
        # ticket then) takes none afterwards; the ticket fails and stays at the source.
        destination = StorageLocation.objects.select_for_update().get(pk=move.job.destination_id)
        if destination.state == StorageLocation.State.RETIRED:
            move.state, move.error = MoveTicket.State.FAILED, "the destination was retired during the move"
            move.save(update_fields=["state", "error"])
            return False
        ticket.location_id = move.job.destination_id
        ticket.save(update_fields=["location"])
        move.state, move.switched_at = MoveTicket.State.SWITCHED, now
        move.save(update_fields=["state", "switched_at"])
    return True


def source_erased(move: MoveTicket, erased_keys: set[str], receipt_name: str, receipt_sha256: str, *,
                  now: dt.datetime | None = None) -> MoveTicket:
    """The switched ticket's source copies are gone (the gatekeeper listed them erased)."""
    now = now or timezone.now()
    with transaction.atomic():
        move = MoveTicket.objects.select_for_update().select_related("job").get(pk=move.pk)
        if move.state != MoveTicket.State.SWITCHED:
            raise MoveRefused("not_switched", "only a switched ticket's source is erased", 409)
        missing = set(move.move_objects.values_list("key", flat=True)) - erased_keys
        if missing:
            raise MoveRefused("objects_missing", f"{len(missing)} of the ticket's objects were not listed erased", 409)
        move.move_objects.update(state=MoveObject.State.SOURCE_ERASED, updated_at=now)
        move.state, move.receipt_name, move.receipt_sha256 = MoveTicket.State.DONE, receipt_name, receipt_sha256
        move.save(update_fields=["state", "receipt_name", "receipt_sha256"])
        _finish_if_done(move.job, now)
    return move


def failed_copies_erased(move: MoveTicket, receipt_name: str, receipt_sha256: str) -> MoveTicket:
    """A failed ticket's copies at the destination are gone (the carrier erased them
    there; the ticket stays at its source): the receipt of that erasure. Once only."""
    with transaction.atomic():
        move = MoveTicket.objects.select_for_update().get(pk=move.pk)
        if move.state != MoveTicket.State.FAILED:
            raise MoveRefused("not_failed", "only a failed ticket's destination copies are erased", 409)
        if not move.receipt_name:
            move.receipt_name, move.receipt_sha256 = receipt_name, receipt_sha256
            move.save(update_fields=["receipt_name", "receipt_sha256"])
    return move


def _finish_if_done(job: MoveJob, now: dt.datetime) -> None:
    if not job.tickets.filter(state__in=[MoveTicket.State.PENDING, MoveTicket.State.SWITCHED]).exists():
        MoveJob.objects.filter(pk=job.pk, state__in=[MoveJob.State.RUNNING, MoveJob.State.PAUSED]).update(
            state=MoveJob.State.FINISHED, finished_at=now, state_changed_at=now)


def settle(job: MoveJob, *, now: dt.datetime | None = None) -> None:
    """Finish the job once no ticket is left to carry (failed ones stay failed, named)."""
    _finish_if_done(job, now or timezone.now())


_CHANGES = {  # action -> (from states, to state)
    "pause": ((MoveJob.State.RUNNING,), MoveJob.State.PAUSED),
    "resume": ((MoveJob.State.PAUSED,), MoveJob.State.RUNNING),
    "cancel": ((MoveJob.State.RUNNING, MoveJob.State.PAUSED), MoveJob.State.CANCELLED),
}


def change(job: MoveJob, action: str, user, *, now: dt.datetime | None = None) -> MoveJob:
    """Pause, resume or cancel. A cancelled job's unswitched tickets stay where they were
    (their copies at the destination are left for the customer's lifecycle rule, and
    listed by `progress`); a switched ticket stays switched, and its source copies are
    still erased (MoveJob.erasure_due: the page or the worker, copying nothing more),
    after which its move is done."""
    now = now or timezone.now()
    if action not in _CHANGES:
        raise MoveRefused("bad_action", "action is pause, resume or cancel")
    before, after = _CHANGES[action]
    with transaction.atomic():
        job = MoveJob.objects.select_for_update().get(pk=job.pk)
        if job.state not in before:
            raise MoveRefused("bad_state", f"a {job.state} move cannot {action}", 409)
        job.state, job.state_changed_at, job.state_changed_by_name = after, now, _display(user)
        job.save(update_fields=["state", "state_changed_at", "state_changed_by_name"])
        if after == MoveJob.State.CANCELLED:
            job.tickets.filter(state=MoveTicket.State.PENDING).update(state=MoveTicket.State.CANCELLED)
    return job


def choose_own_tools(job: MoveJob, own_tools: bool) -> MoveJob:
    """Who copies an open browser job's objects from now on: the customer's own tools
    (the page only verifies) or the admin's browser. Objects a tab holds stay its
    until their leases run out; a copy it then reports is still checked."""
    with transaction.atomic():
        job = MoveJob.objects.select_for_update().select_related("source").get(pk=job.pk)
        if job.state not in (MoveJob.State.RUNNING, MoveJob.State.PAUSED):
            raise MoveRefused("bad_state", f"a {job.state} move is over", 409)
        if own_tools:
            _check_own_tools(job.mode, job.source)
        elif job.mode != MoveJob.Mode.BROWSER:
            raise MoveRefused("bad_mode", "the vendor's worker carries this move", 409)
        job.own_tools = own_tools
        job.save(update_fields=["own_tools"])
    return job


def progress(job: MoveJob, *, now: dt.datetime | None = None) -> dict:
    """What a progress bar shows: objects and bytes done of total, rate, time left,
    failures with their reasons. "Done" is verified or further."""
    now = now or timezone.now()
    objects = MoveObject.objects.filter(move__job=job)
    done_states = [MoveObject.State.VERIFIED, MoveObject.State.SOURCE_ERASED]
    totals = objects.aggregate(n=Count("id"), bytes=Sum("size"),
                               done=Count("id", filter=Q(state__in=done_states)),
                               done_bytes=Sum("size", filter=Q(state__in=done_states)))
    done_bytes, total_bytes = totals["done_bytes"] or 0, totals["bytes"] or 0
    elapsed = max((now if job.open else (job.finished_at or job.state_changed_at)) - job.created_at,
                  dt.timedelta(seconds=1)).total_seconds()
    rate = done_bytes / elapsed
    left = (total_bytes - done_bytes) / rate if rate and job.state == MoveJob.State.RUNNING else None
    tickets = dict(job.tickets.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    failures = [{"ticket": o.move.ticket.number, "key": o.key.rsplit("/", 1)[-1], "code": o.error_code,
                 "reason": o.error}
                for o in objects.filter(state=MoveObject.State.FAILED).select_related("move__ticket")[:100]]
    return {
        "id": str(job.id), "state": job.state, "mode": job.mode,
        "objects": {"done": totals["done"], "total": totals["n"]},
        "bytes": {"done": done_bytes, "total": total_bytes},
        "tickets": {state: tickets.get(state, 0) for state in MoveTicket.State.values},
        "rate_bytes_per_s": round(rate, 1), "seconds_left": round(left) if left is not None else None,
        "failures": failures,
    }


def worker_carrier(job: MoveJob) -> dict:
    """The vendor's worker's name in the customer's audit log: the job, and who started it."""
    return {"subject": job.subject, "name": f"Dualkey move {job.id.hex[:8]} (started by {job.created_by_name})"[:200]}
