"""Erasing one ticket (a tenant admin's, GDPR's right to erasure), and its receipt.

The admin's browser does the erasing, as it reads reports: it asks the portal for a
single-use delete grant for the ticket's prefix (`start`), calls the gatekeeper of the
ticket's storage (`/v1/sign`, `{"op": "delete", "prefix": ...}`: every version and
delete marker goes), and relays the gatekeeper's answer here (`record`): keys, version
ids, sizes and the request id, which is metadata, never content. So the vendor's
servers never call the customer's gatekeeper (which may well refuse the vendor's
addresses), and the customer's audit log shows the erasure coming from its admin.

The portal takes that answer on the admin's browser's word (it cannot check the
gatekeeper's signature-less answer); the customer's gatekeeper audit log, by
request id, is the independent record (docs/threat-model.md). It refuses to
finish on an answer that leaves out a key it knows is stored (`must_be_erased`).

When an answer says everything under the prefix is gone, `record` finishes: the
receipt (those answers, joined with the manifest's names, sizes and SHA-256 the
portal holds) is written to STORAGES["receipts"], and the ticket's metadata is
removed but for its tombstone (number, creation time, when, erased by whom).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.tickets.grants import PUT_GRANT_LIFETIME
from portal.tickets.models import Ticket, TicketErasure
from tenants.locations import location_of
from tenants.models import StorageLocation

RECEIPT_FORMAT = "dualkey-erasure-receipt/1"
MAX_OBJECTS = 1000  # what one gatekeeper answer may hold (the gatekeeper's MAX_LIST_KEYS)
MAX_PARTS = 50  # answers one erasure may take; more means something is wrong
REQUEST_ID = re.compile(r"^[0-9a-f]{16}$")  # the gatekeeper's: secrets.token_hex(8) (gatekeeper/app.py)
MAX_TEXT = 1024
MAX_PRESIGN_TTL = 3600  # gatekeeper/config.py's (tests/portal/test_erase.py checks they agree)
# How long after its last put grant an upload may still land: the grant's lifetime,
# then the longest presign_ttl a gatekeeper accepts for the POST it signed.
UPLOADS_MAY_LAND_FOR = dt.timedelta(seconds=PUT_GRANT_LIFETIME + MAX_PRESIGN_TTL)


class ErasureRefused(Exception):
    """The request cannot go on: `code` for the caller, `status` for HTTP."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def gatekeeper_for(ticket: Ticket) -> StorageLocation:
    """Whose gatekeeper holds the ticket's objects: the ticket's own storage location
    (tenants/locations.py). The one place to ask."""
    return location_of(ticket)


def _display(user) -> str:
    return (user.get_full_name() or user.get_username())[:200]


def start(ticket: Ticket, user, confirmation: str, *, now: dt.datetime | None = None) -> TicketErasure:
    """The admin confirmed by typing the ticket's number. From now on the ticket gets no
    grant but the erasure's own (see `Ticket.erasing`). Idempotent until finished."""
    if ticket.erased_at is not None:
        raise ErasureRefused("already_erased", f"Ticket #{ticket.number} is already erased.", 409)
    if str(confirmation).strip().lstrip("#") != str(ticket.number):
        raise ErasureRefused("not_confirmed", f"Type the ticket's number ({ticket.number}) to confirm.")
    _refuse_while_moving(ticket)
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if not TicketErasure.objects.filter(ticket=locked).exists():
            _refuse_while_uploads_may_land(locked, now or timezone.now())
        return _started(ticket, user)


def _refuse_while_moving(ticket: Ticket) -> None:
    """A ticket in an unfinished move has copies at two locations, and its move erases
    the source's itself: erase it once the move is over (or cancelled)."""
    from portal.moves.services import open_move

    if open_move(ticket) is not None:
        raise ErasureRefused("moving", f"Ticket #{ticket.number} is being moved to another storage location: "
                             "erase it once its move is over, or cancel the move.", 409)


def _refuse_while_uploads_may_land(ticket: Ticket, now: dt.datetime) -> None:
    """A put grant issued before the erasure starts stays good for its lifetime, and a
    presigned POST the gatekeeper signed with it for its presign_ttl after that (at
    most MAX_PRESIGN_TTL: the portal does not know the customer's setting). An upload
    could land after the delete until then, so a ticket still uploading waits."""
    if ticket.status != Ticket.Status.UPLOADING or ticket.put_granted_at is None:
        return
    until = ticket.put_granted_at + UPLOADS_MAY_LAND_FOR
    if now < until:
        minutes = max(1, math.ceil((until - now).total_seconds() / 60))
        raise ErasureRefused(
            "still_uploading", f"Ticket #{ticket.number} is still uploading: an upload it was granted could still "
            f"land until {until:%H:%M} UTC (in {minutes} minute{'s' if minutes != 1 else ''}). Erase it after that.",
            409)


def _started(ticket: Ticket, user) -> TicketErasure:
    try:
        erasure, _ = TicketErasure.objects.get_or_create(
            ticket=ticket, defaults={"by": user, "by_name": _display(user), "started_at": timezone.now()})
    except IntegrityError:  # a simultaneous start created it first: theirs stands
        erasure = TicketErasure.objects.get(ticket=ticket)
    return erasure


def _text(value, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise ErasureRefused("bad_answer", f"{what} must be a string of 1 to {MAX_TEXT} characters")
    return value


def _count(value, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ErasureRefused("bad_answer", f"{what} must be a non-negative integer")
    return value


def _results(body: object, most: int) -> tuple[str, list]:
    """(request_id, results) of a gatekeeper's /v1/sign answer holding 1 to `most` results."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list) or not 1 <= len(body["results"]) <= most:
        raise ErasureRefused("bad_answer", "expected the gatekeeper's answer: {request_id, results: "
                             + ("[one]}" if most == 1 else f"[1 to {most}]}}"))
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
        raise ErasureRefused("bad_answer", "request_id must be the gatekeeper's (16 hex digits)")
    return request_id, body["results"]


def _erased(ticket: Ticket, result: dict) -> tuple[list[dict], list[dict], bool]:
    """(objects with their versions, refusals, truncated) of one delete op's result."""
    objects, failed = result.get("objects"), result.get("failed")
    if not isinstance(objects, list) or not isinstance(failed, list) or len(objects) + len(failed) > MAX_OBJECTS:
        raise ErasureRefused("bad_answer", f"objects and failed are lists of at most {MAX_OBJECTS}")
    if not isinstance(result.get("truncated"), bool):
        raise ErasureRefused("bad_answer", "truncated must be true or false")
    kept = []
    for item in objects:
        if not isinstance(item, dict) or not isinstance(item.get("versions"), list) or not item["versions"]:
            raise ErasureRefused("bad_answer", "each object has a key and its versions")
        key = _text(item.get("key"), "key")
        if not key.startswith(ticket.prefix):
            raise ErasureRefused("bad_answer", "a key outside this ticket's prefix")
        versions = []
        for version in item["versions"][:MAX_OBJECTS]:
            if not isinstance(version, dict) or not isinstance(version.get("delete_marker"), bool):
                raise ErasureRefused("bad_answer", "each version has version_id, size, delete_marker")
            versions.append({"version_id": _text(version.get("version_id"), "version_id"),
                             "size": _count(version.get("size"), "size"), "delete_marker": version["delete_marker"]})
        kept.append({"key": key, "versions": versions})
    refused = [{"key": _text(f.get("key"), "key"), "version_id": _text(f.get("version_id"), "version_id"),
                "code": _text(f.get("code"), "code")[:64]} for f in failed if isinstance(f, dict)]
    if len(refused) != len(failed):
        raise ErasureRefused("bad_answer", "each failure has key, version_id, code")
    return kept, refused, result["truncated"]


def parse_answer(ticket: Ticket, body: object) -> tuple[dict, bool]:
    """The gatekeeper's /v1/sign answer to one erase op, as the browser relays it:
    (the part to keep, whether everything is gone). Anything else is refused."""
    request_id, [result] = _results(body, 1)
    if not isinstance(result, dict) or result.get("op") != "delete" or result.get("prefix") != ticket.prefix:
        raise ErasureRefused("bad_answer", "the answer is not the erasure of this ticket's prefix")
    kept, refused, truncated = _erased(ticket, result)
    return {"request_id": request_id, "objects": kept, "failed": refused}, not refused and not truncated


def parse_key_answer(ticket: Ticket, body: object, keys: set[str], most: int) -> dict:
    """The gatekeeper's answer to a delete of each of some of `keys` (exactly that key,
    every version: a move erases only what it moved), as the browser relays it. The
    part to keep names the keys it `settled`: none of their versions left or refused."""
    request_id, results = _results(body, most)
    part = {"request_id": request_id, "objects": [], "failed": [], "settled": []}
    for result in results:
        if (not isinstance(result, dict) or result.get("op") != "delete" or "prefix" in result
                or not isinstance(result.get("key"), str) or result["key"] not in keys):
            raise ErasureRefused("bad_answer", "the answer is not the erasure of this move's keys, one by one")
        kept, refused, truncated = _erased(ticket, result)
        if any(item["key"] != result["key"] for item in kept):
            raise ErasureRefused("bad_answer", "a delete of one key lists another")
        part["objects"] += kept
        part["failed"] += refused
        if not refused and not truncated:
            part["settled"].append(result["key"])
    return part


def record(ticket: Ticket, body: object) -> TicketErasure:
    """Keep one relayed answer; finish once it says nothing is left."""
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if ticket.erased_at is not None:
            raise ErasureRefused("already_erased", f"Ticket #{ticket.number} is already erased.", 409)
        erasure = TicketErasure.objects.filter(ticket=ticket).first()
        if erasure is None:
            raise ErasureRefused("not_started", "Confirm the erasure first.", 409)
        part, done = parse_answer(ticket, body)
        if part["request_id"] in {p["request_id"] for p in erasure.parts}:
            raise ErasureRefused("duplicate_answer", "this gatekeeper answer was already recorded", 409)
        if len(erasure.parts) >= MAX_PARTS:
            raise ErasureRefused("too_many_parts", f"an erasure takes at most {MAX_PARTS} answers", 409)
        erasure.parts.append(part)
        if done:
            missing = sorted(must_be_erased(ticket) - {item["key"] for p in erasure.parts for item in p["objects"]})
            if missing:  # nothing kept: the erasure stays started, to be tried again
                raise ErasureRefused(
                    "objects_missing", f"The gatekeeper's answer does not list {len(missing)} of this ticket's "
                    f"objects as erased (the first: {missing[0][len(ticket.prefix):][:200]!r}): nothing is "
                    "finished; erase again, and check the request id in your gatekeeper's audit log.", 409)
        erasure.save(update_fields=["parts"])
        if done:
            _finish(ticket, erasure)
    return erasure


def must_be_erased(ticket: Ticket) -> set[str]:
    """The keys the portal knows are stored, which a finishing answer must list as
    erased: every stored note, and every file of the manifest once the agent said
    its upload is complete (before that, a file may never have arrived: the
    receipt lists those as `manifest_not_found`)."""
    keys = {note.key for note in ticket.notes.filter(stored_at__isnull=False)}
    if ticket.status == Ticket.Status.COMPLETE:
        keys |= {file.key for file in ticket.files.all()}
    return keys


def versions_by_key(parts: list[dict]) -> dict[str, list]:
    """The erased versions of each key across the gatekeeper's answers (`parse_answer`
    parts), each with the request id of the answer that named it."""
    objects: dict[str, list] = {}
    for part in parts:
        for item in part["objects"]:
            objects.setdefault(item["key"], []).extend(
                dict(v, request_id=part["request_id"]) for v in item["versions"])
    return objects


def receipt(ticket: Ticket, erasure: TicketErasure, finished_at) -> dict:
    """What was erased, as the gatekeeper said, with what the portal knew of each object."""
    manifest = {f.key: f for f in ticket.files.all()}
    notes = {n.key: n for n in ticket.notes.all()}
    objects = versions_by_key(erasure.parts)
    entries = []
    for key, versions in sorted(objects.items()):
        entry = {"key": key, "versions": versions}
        if key in manifest:
            file = manifest[key]
            entry["manifest"] = {"name": file.name, "size": file.size, "content_type": file.content_type,
                                 "sha256": file.sha256}
        elif key in notes:
            entry["note"] = {"id": str(notes[key].id), "size": notes[key].size}
        entries.append(entry)
    holder = gatekeeper_for(ticket)
    return {
        "format": RECEIPT_FORMAT,
        "tenant": ticket.tenant.slug,
        "ticket": {"id": str(ticket.id), "number": ticket.number, "prefix": ticket.prefix,
                   "created_at": ticket.created_at.isoformat()},
        "gatekeeper": {"id": holder.gatekeeper_id, "url": holder.gatekeeper_url},
        "erased_by": {"id": erasure.by_id, "name": erasure.by_name},
        "started_at": erasure.started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "request_ids": [part["request_id"] for part in erasure.parts],
        "objects": entries,
        "versions": sum(len(v) for v in objects.values()),
        "bytes": sum(v["size"] for versions in objects.values() for v in versions),
        # Files the agent announced that storage never held (an upload that never finished).
        "manifest_not_found": sorted(f.name for key, f in manifest.items() if key not in objects),
    }


def _finish(ticket: Ticket, erasure: TicketErasure) -> None:
    now = timezone.now()
    data = json.dumps(receipt(ticket, erasure, now), indent=2, sort_keys=True).encode()
    name = storages["receipts"].save(f"erasures/{ticket.tenant_id}/{ticket.id.hex}.json", ContentFile(data))
    erasure.receipt_name, erasure.receipt_sha256, erasure.finished_at = name, hashlib.sha256(data).hexdigest(), now
    erasure.save(update_fields=["receipt_name", "receipt_sha256", "finished_at"])
    # The tombstone: number, creation time, erased when and by whom. Vendor support's
    # access records stay: they are the customer's record of who was let in (their
    # grants stop: the ticket is `erasing`).
    ticket.files.all().delete()
    ticket.notes.all().delete()
    ticket.events.all().delete()
    ticket.erased_at, ticket.assignee, ticket.agent, ticket.completed_at = now, None, None, None
    ticket.save(update_fields=["erased_at", "assignee", "agent", "completed_at"])


def read_receipt(erasure: TicketErasure) -> bytes:
    """The stored receipt, refused if it is not the one written (its digest is kept)."""
    with storages["receipts"].open(erasure.receipt_name, "rb") as stored:
        data = stored.read()
    if hashlib.sha256(data).hexdigest() != erasure.receipt_sha256:
        raise ErasureRefused("receipt_changed", "the stored receipt is not the one written", 500)
    return data
