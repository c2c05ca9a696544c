"""The receipt of a move's erasure (the source copies once a ticket switched, or a
failed ticket's copies at the destination), whichever carrier erased them: one shape,
built from the gatekeeper's answers (portal/tickets/erasure.py's `parse_answer` parts)
and what the move planned of each key. Kept in STORAGES["receipts"] with its digest
on the MoveTicket; never content."""

from __future__ import annotations

import hashlib
import json

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.utils import timezone

from portal.moves.models import MoveTicket
from portal.tickets.erasure import versions_by_key
from tenants.models import StorageLocation

RECEIPT_FORMAT = "dualkey-move-receipt/1"


def build(move: MoveTicket, location: StorageLocation, parts: list[dict], erased_by: dict, why: str,
          started=None) -> dict:
    """`erased_by`: the grants' carrier (`subject`, `name`): the job's, or the admin's."""
    ticket, job = move.ticket, move.job
    planned = {o.key: o for o in move.move_objects.all()}
    objects = versions_by_key(parts)
    entries = []
    for key, versions in sorted(objects.items()):
        entry = {"key": key, "versions": versions}
        if key in planned:
            entry["moved"] = {"size": planned[key].size, "sha256": planned[key].sha256, "state": planned[key].state}
        entries.append(entry)
    return {
        "format": RECEIPT_FORMAT,
        "why": why,
        "tenant": job.tenant.slug,
        "job": {"id": str(job.id), "subject": job.subject, "started_by": job.created_by_name,
                "source": {"id": job.source.gatekeeper_id, "url": job.source.gatekeeper_url},
                "destination": {"id": job.destination.gatekeeper_id, "url": job.destination.gatekeeper_url}},
        "ticket": {"id": str(ticket.id), "number": ticket.number, "prefix": ticket.prefix,
                   "created_at": ticket.created_at.isoformat()},
        "gatekeeper": {"id": location.gatekeeper_id, "url": location.gatekeeper_url},
        "erased_by": {"subject": erased_by["subject"], "name": erased_by["name"]},
        "started_at": (started or timezone.now()).isoformat(),
        "finished_at": timezone.now().isoformat(),
        "request_ids": [part["request_id"] for part in parts],
        "objects": entries,
        "versions": sum(len(v) for v in objects.values()),
        "bytes": sum(v["size"] for versions in objects.values() for v in versions),
        # Planned objects no answer listed: erased by an earlier run that was cut off.
        "erased_earlier": sorted(set(planned) - set(objects)) if why == "moved" else [],
    }


def store(move: MoveTicket, receipt: dict, suffix: str = "") -> tuple[str, str]:
    """Written to STORAGES["receipts"]: (its name, its SHA-256)."""
    data = json.dumps(receipt, indent=2, sort_keys=True).encode()
    name = storages["receipts"].save(
        f"moves/{move.job.tenant_id}/{move.job_id.hex}/{move.ticket_id.hex}{suffix}.json", ContentFile(data))
    return name, hashlib.sha256(data).hexdigest()
