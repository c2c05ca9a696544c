"""Storage locations: where a tenant's tickets are written (tenants.models.StorageLocation).

A tenant has exactly one *active* location, which takes new tickets; each ticket
records the location it was written to, and every grant, download and CSP for it
names that location's gatekeeper and storage origin (portal/tickets/grants.py,
tenants/csp.py), so switching the active location never breaks an old ticket.

The life of a location: added (`connecting`) → its health reported (an admin's
browser fetches the gatekeeper's /v1/health and posts it here: the portal never
contacts a gatekeeper) → cut over (it becomes `active`, the previous one
`draining`) → `retired` once it holds no ticket. Each change records who and when.

The tenant's own gatekeeper_url, gatekeeper_id, storage_origin, bucket, region
and data_location are kept as a mirror of its active location (much code and the
storage form read them). The mirror goes one way, location -> tenant: saving a
tenant reads them back from its active location (`mirror_from_active`), and a
cut over writes the new location's into the tenant. The storage form changes
the active location through `edit_in_place`, which refuses a new gatekeeper
once the location holds tickets or is connected (`in_place_refusal`): that is
"add location" and a cut over.
"""

from __future__ import annotations

import datetime as dt
import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from gatekeeper.errors import OPS
from tenants import events
from tenants.models import OnboardingStep, SecurityEvent, StorageLocation, Tenant
from tenants.validators import validate_bucket

# Tenant field -> location field: the mirror.
MIRROR = {
    "data_location": "kind",
    "gatekeeper_url": "gatekeeper_url",
    "gatekeeper_id": "gatekeeper_id",
    "storage_origin": "storage_origin",
    "bucket": "chosen_bucket",
    "region": "chosen_region",
}
# A cut over needs a health report at most this old, and a passed verification
# (the admin's browser's round trip through this gatekeeper) at most this old.
HEALTH_FRESH_FOR = dt.timedelta(minutes=15)
VERIFIED_FRESH_FOR = dt.timedelta(hours=24)
# The health fields recorded, with their longest accepted value.
REPORTED = {"bucket": 63, "region": 30, "storage_problem": 200, "encryption": 20, "kms_key_id": 200}
STORAGE_STATES = ("ok", "unreachable")
REPORTED_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,29}")


class LocationError(Exception):
    """A location change refused, with a reason a person can act on."""


def _display(user) -> str:
    return events.describe(user)[:200] if user else "the portal"


def mirror_from_active(tenant: Tenant) -> StorageLocation:
    """Called by Tenant.save: the tenant's mirrored fields are set from its active
    location (which is created from them only if the tenant has none yet). Never
    the other way: only `edit_in_place`, the locations' cut over and their own
    functions change a location."""
    location = StorageLocation.objects.filter(tenant=tenant, state=StorageLocation.State.ACTIVE).first()
    if location is None:
        now = timezone.now()
        values = {field: getattr(tenant, name) for name, field in MIRROR.items()}
        return StorageLocation.objects.create(tenant=tenant, state=StorageLocation.State.ACTIVE,
                                              state_changed_at=now, created_at=now, **values)
    _copy_to_tenant(tenant, location)
    return location


def _copy_to_tenant(tenant: Tenant, location: StorageLocation) -> None:
    values = {name: getattr(location, field) for name, field in MIRROR.items()}
    if any(getattr(tenant, name) != value for name, value in values.items()):
        Tenant.objects.filter(pk=tenant.pk).update(**values)  # an update: no save, no loop
        for name, value in values.items():
            setattr(tenant, name, value)


# What says where a location's objects are: changed only by adding a location and cutting over.
GATEKEEPER_FIELDS = ("gatekeeper_url", "gatekeeper_id", "storage_origin")


def in_place_refusal(tenant: Tenant, location: StorageLocation) -> str:
    """Why the storage form may not change the active location's gatekeeper, or "".
    Only while onboarding's placeholder: the tenant has no ticket, and the location
    has no gatekeeper or one never connected (no health recorded, no verification
    passed). Otherwise old tickets' grants would follow the new gatekeeper, with no
    health check, freshness check or cut-over event."""
    held = tenant.tickets.count()
    connected = location.has_gatekeeper and (
        location.reported_at is not None
        or tenant.onboarding_steps.filter(step=OnboardingStep.Step.VERIFIED,
                                        state=OnboardingStep.State.DONE).exists())
    if not held and not connected:
        return ""
    why = (f"it holds {held} ticket{'s' if held != 1 else ''}" if held
           else "its gatekeeper is connected and verified")
    return (f"The active location's gatekeeper cannot be changed here: {why}. To move to another gatekeeper, "
            "add it under Storage locations, connect it and cut over: old tickets stay readable where they are.")


def edit_in_place(tenant: Tenant, values: dict) -> StorageLocation:
    """The storage form's save: the active location takes the form's values for
    the mirrored fields (tenant field names), then the tenant mirrors it. A changed
    gatekeeper URL, id or storage origin is refused (LocationError) unless
    `in_place_refusal` allows it. Under the tenant's row lock, as a cut over."""
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        location = StorageLocation.objects.select_for_update().filter(
            tenant=locked, state=StorageLocation.State.ACTIVE).first()
        if location is None:
            location = mirror_from_active(locked)
        wanted = {MIRROR[name]: value for name, value in values.items() if name in MIRROR}
        changed = [field for field, value in wanted.items() if getattr(location, field) != value]
        if any(field in GATEKEEPER_FIELDS for field in changed):
            refusal = in_place_refusal(locked, location)
            if refusal:
                raise LocationError(refusal)
        if changed:
            for field in changed:
                setattr(location, field, wanted[field])
            location.save(update_fields=changed)
        _copy_to_tenant(tenant, location)
    return location


def active_location(tenant: Tenant) -> StorageLocation:
    """The location that takes the tenant's new tickets."""
    location = StorageLocation.objects.filter(tenant=tenant, state=StorageLocation.State.ACTIVE).first()
    return location if location is not None else mirror_from_active(tenant)


def location_of(ticket) -> StorageLocation:
    """The location a ticket's files were written to."""
    return ticket.location if ticket.location_id is not None else active_location(ticket.tenant)


def add_location(tenant: Tenant, actor, *, kind: str, gatekeeper_url: str, gatekeeper_id: str, storage_origin: str,
                 chosen_bucket: str = "", chosen_region: str = "", now: dt.datetime | None = None) -> StorageLocation:
    """A new location, `connecting` until it is cut over to (a security event)."""
    now = now or timezone.now()
    with transaction.atomic():
        location = StorageLocation.objects.create(
            tenant=tenant, kind=kind, gatekeeper_url=gatekeeper_url, gatekeeper_id=gatekeeper_id,
            storage_origin=storage_origin, chosen_bucket=chosen_bucket, chosen_region=chosen_region,
            state=StorageLocation.State.CONNECTING, state_changed_at=now, state_changed_by=actor,
            state_changed_by_name=_display(actor), created_at=now)
        events.record(tenant, actor, [events.event(SecurityEvent.Kind.LOCATION_ADDED, subject=gatekeeper_id,
                                                   new=gatekeeper_url)], now=now)
    return location


def _text(health: dict, name: str, longest: int) -> str:
    value = health.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > longest:
        raise LocationError(f"The health's {name} is not text of at most {longest} characters.")
    return value


def _identity_ops(health: dict) -> str:
    """The ops health says need the person's ID token (its `identity`: null without
    [identity]), sorted and comma-separated."""
    identity = health.get("identity")
    if identity is None:
        return ""
    ops = identity.get("ops") if isinstance(identity, dict) else None
    if not isinstance(ops, list) or not all(isinstance(op, str) and op in OPS for op in ops):
        raise LocationError("The health's identity is not an object whose ops are gatekeeper ops.")
    return ",".join(sorted(set(ops)))


def record_health(location: StorageLocation, health, *, now: dt.datetime | None = None) -> StorageLocation:
    """Record what the location's gatekeeper reported in its /v1/health (as the
    admin's browser fetched it). It must be this location's gatekeeper: its id and
    storage origin are those saved."""
    if location.state == StorageLocation.State.RETIRED:
        raise LocationError("This location is retired.")
    if not isinstance(health, dict):
        raise LocationError("The health is not a JSON object.")
    if health.get("gatekeeper_id") != location.gatekeeper_id:
        raise LocationError(f"The gatekeeper says it is {str(health.get('gatekeeper_id'))[:64]!r}, "
                            f"not {location.gatekeeper_id!r}: check the URL and the id.")
    if health.get("storage_origin") != location.storage_origin:
        raise LocationError(f"The gatekeeper's storage origin is {str(health.get('storage_origin'))[:200]!r}, "
                            f"not {location.storage_origin!r}: browsers would be refused by the page's CSP.")
    storage = health.get("storage")
    if storage not in STORAGE_STATES:
        raise LocationError("The health has no storage state (ok or unreachable): is the gatekeeper up to date?")
    values = {f"reported_{name}": _text(health, name, longest) for name, longest in REPORTED.items()}
    # Shown on pages and written into the customer's copy script (portal/moves): its own
    # syntax only. A region as S3-compatible stores name theirs too ("default").
    try:
        if values["reported_bucket"]:
            validate_bucket(values["reported_bucket"])
    except ValidationError:
        raise LocationError("The health's bucket is not an S3 bucket name.") from None
    if values["reported_region"] and not REPORTED_REGION.fullmatch(values["reported_region"]):
        raise LocationError("The health's region is not a region name (letters, digits and '-').")
    values.update(reported_storage=storage, reported_identity_ops=_identity_ops(health),
                  reported_at=now or timezone.now())
    StorageLocation.objects.filter(pk=location.pk).update(**values)
    location.refresh_from_db()
    return location


def cut_over(location: StorageLocation, actor, *, now: dt.datetime | None = None) -> StorageLocation:
    """New tickets go to `location` from now on; the active one drains (its
    tickets stay readable there). Under the tenant's row lock, which ticket
    creation also takes (portal/tickets/services.py), so no ticket is created
    against a location that just stopped being active."""
    now = now or timezone.now()
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=location.tenant_id)
        location = StorageLocation.objects.select_for_update().get(pk=location.pk)
        if location.state != StorageLocation.State.CONNECTING:
            raise LocationError(f"Only a connecting location can be cut over to; this one is {location.state}.")
        if not location.has_gatekeeper or not location.storage_origin:
            raise LocationError("This location has no gatekeeper URL, id or storage origin.")
        if location.reported_at is None or now - location.reported_at > HEALTH_FRESH_FOR:
            raise LocationError("Connect first: the gatekeeper's health must have been checked in the last "
                                f"{int(HEALTH_FRESH_FOR.total_seconds() // 60)} minutes.")
        if location.reported_storage != "ok":
            raise LocationError("The gatekeeper reports its storage unreachable"
                                + (f" ({location.reported_storage_problem})" if location.reported_storage_problem
                                   else "") + ": fix the bucket first.")
        if not verified_for(location, now):
            raise LocationError("Verify it first: the browser check (health, then a probe object written, read "
                                "back and deleted) must have passed for this gatekeeper in the last "
                                f"{int(VERIFIED_FRESH_FOR.total_seconds() // 3600)} hours.")
        old = StorageLocation.objects.select_for_update().filter(
            tenant=tenant, state=StorageLocation.State.ACTIVE).first()
        who = {"state_changed_at": now, "state_changed_by": actor, "state_changed_by_name": _display(actor)}
        if old is not None:  # first: one active location per tenant is a constraint
            StorageLocation.objects.filter(pk=old.pk).update(state=StorageLocation.State.DRAINING, **who)
        StorageLocation.objects.filter(pk=location.pk).update(state=StorageLocation.State.ACTIVE, **who)
        # The tenant's mirror (an update: Tenant.save would write it back into the location).
        Tenant.objects.filter(pk=tenant.pk).update(**{name: getattr(location, field)
                                                      for name, field in MIRROR.items()})
        events.record(tenant, actor, [events.event(
            SecurityEvent.Kind.LOCATION_CUT_OVER, subject=location.gatekeeper_id,
            old=old.gatekeeper_url if old else "", new=location.gatekeeper_url)], now=now)
    location.refresh_from_db()
    return location


def verified_for(location: StorageLocation, now: dt.datetime) -> bool:
    """Whether the tenant's latest verification passed, for this very gatekeeper and
    storage origin (tenants/onboarding.py records it with what it checked), recently."""
    row = OnboardingStep.objects.filter(tenant_id=location.tenant_id, step=OnboardingStep.Step.VERIFIED).first()
    return (row is not None and row.state == OnboardingStep.State.DONE and now - row.at <= VERIFIED_FRESH_FOR
            and row.detail.get("gatekeeper_url") == location.gatekeeper_url
            and row.detail.get("gatekeeper_id") == location.gatekeeper_id
            and row.detail.get("storage_origin") == location.storage_origin)


def retire(location: StorageLocation, actor, *, now: dt.datetime | None = None) -> StorageLocation:
    """A draining location that holds no ticket any more, or a connecting one never
    used, is retired: no page names it again."""
    now = now or timezone.now()
    with transaction.atomic():
        Tenant.objects.select_for_update().filter(pk=location.tenant_id).first()
        location = StorageLocation.objects.select_for_update().get(pk=location.pk)
        if location.state not in (StorageLocation.State.DRAINING, StorageLocation.State.CONNECTING):
            raise LocationError(f"Only a draining or connecting location can be retired; this one is "
                                f"{location.state}.")
        held = location.tickets.count()
        if held:
            raise LocationError(f"This location still holds {held} ticket{'s' if held != 1 else ''}: "
                                "they would no longer render. Move them first.")
        StorageLocation.objects.filter(pk=location.pk).update(
            state=StorageLocation.State.RETIRED, state_changed_at=now, state_changed_by=actor,
            state_changed_by_name=_display(actor))
        events.record(location.tenant, actor, [events.event(
            SecurityEvent.Kind.LOCATION_RETIRED, subject=location.gatekeeper_id, old=location.gatekeeper_url)],
            now=now)
    location.refresh_from_db()
    return location
