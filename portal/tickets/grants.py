"""The grants the portal hands out: who may do what, for how long.

A put grant lets one agent upload into one new ticket's prefix; a read grant lets
one logged-in user read one ticket. Both are for exactly `tickets/<id>/`. An
audit grant lets a tenant admin search the tenant gatekeeper's audit log (the
gatekeeper reads the whole log for it, whatever its prefix).

Every grant for a ticket is addressed to the gatekeeper of the ticket's own
location (tenants/locations.py), not the tenant's active one: an old ticket stays
readable after a cut over. The audit grant goes to the active location's.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from django.conf import settings

from gatekeeper_client.grants import mint_grant
from portal.tickets.models import Ticket
from tenants.locations import active_location, location_of
from tenants.models import AgentToken, StorageLocation, SupportAccess, Tenant
from tenants.signing import active_signing_key
from tenants.support_access import live_approval, support_subject

# All must stay within tenants.signing.MAX_GRANT_LIFETIME: key rotation relies on it.
PUT_GRANT_LIFETIME = 300
READ_GRANT_LIFETIME = 120
AUDIT_GRANT_LIFETIME = 120
SUMMARY_GRANT_LIFETIME = 120
NOTE_GRANT_LIFETIME = 120
ERASE_GRANT_LIFETIME = 120
# What each grant asks for, in the gatekeeper's op names (gatekeeper.errors.OPS;
# mint_grant refuses any other).
PUT_GRANT_OPS = ("put",)
READ_GRANT_OPS = ("get", "list")
AUDIT_GRANT_OPS = ("audit",)
SUMMARY_GRANT_OPS = ("get",)
NOTE_GRANT_OPS = ("put",)
ERASE_GRANT_OPS = ("delete",)  # single-use: one grant per gatekeeper answer
# A list page asks for at most this many tickets' summaries in one grant
# (the gatekeeper's MAX_SCOPE_PREFIXES).
MAX_SUMMARY_TICKETS = 50
# A grant needs a prefix; an audit search ignores it, so it names where every
# ticket's data lives rather than any one ticket.
AUDIT_PREFIX = "tickets/"


@dataclass(frozen=True)
class Grant:
    token: str
    expires_at: dt.datetime


def _mint(tenant: Tenant, location: StorageLocation, *, prefix: str | None = None, subject: str, name: str, ops,
          lifetime: int, now: float | None, prefixes: list[str] | None = None, identity: str = "") -> Grant:
    issued = time.time() if now is None else now
    token = mint_grant(
        active_signing_key(tenant),
        issuer=settings.DUALKEY_PORTAL_ORIGIN,
        audience=location.gatekeeper_id,
        subject=subject,
        name=name,
        prefix=prefix,
        prefixes=prefixes,
        ops=ops,
        lifetime=lifetime,
        now=issued,
        identity=identity or None,
    )
    expires = dt.datetime.fromtimestamp(int(issued) + lifetime, tz=dt.timezone.utc)
    return Grant(token, expires)


def put_grant(ticket: Ticket, agent: AgentToken, *, now: float | None = None) -> Grant:
    """Recorded on the ticket first (an update: it takes the ticket's row lock, as the
    erasure's start does), so an erasure knows how long uploads may still land."""
    issued = time.time() if now is None else now
    Ticket.objects.filter(pk=ticket.pk).update(put_granted_at=dt.datetime.fromtimestamp(issued, tz=dt.timezone.utc))
    return _mint(
        ticket.tenant, location_of(ticket), prefix=ticket.prefix, subject=f"agent:{agent.pk}", name=agent.name, ops=PUT_GRANT_OPS,
        lifetime=PUT_GRANT_LIFETIME, now=issued,
    )


def _person(user) -> dict:
    """Who a grant is for. `identity` is the member's email address (verified: an
    invitation reached it, or the tenant's SSO vouched for it), which a gatekeeper
    with [identity] compares with the person's ID token from the customer's IdP."""
    return {"subject": f"user:{user.pk}", "name": user.get_full_name() or user.get_username(),
            "identity": (user.email or "").lower()}


def read_grant(ticket: Ticket, user, *, now: float | None = None) -> Grant:
    return _mint(
        ticket.tenant, location_of(ticket), prefix=ticket.prefix, **_person(user), ops=READ_GRANT_OPS, lifetime=READ_GRANT_LIFETIME, now=now
    )


def audit_grant(tenant: Tenant, user, *, now: float | None = None) -> Grant:
    """For a tenant admin (the caller checks the role: tenants.access.tenant_for_admin)."""
    return _mint(
        tenant, active_location(tenant), prefix=AUDIT_PREFIX, **_person(user), ops=AUDIT_GRANT_OPS, lifetime=AUDIT_GRANT_LIFETIME, now=now
    )


def summary_grant(tickets: list[Ticket], user, *, now: float | None = None) -> Grant:
    """One get-only grant for several tickets of one tenant at one location
    (protocol 2's `prefixes` feature), for the list page: each ticket's exact
    prefix, nothing wider. The caller reached them through portal.tickets.access."""
    if not 1 <= len(tickets) <= MAX_SUMMARY_TICKETS or len({t.tenant_id for t in tickets}) != 1:
        raise ValueError(f"1 to {MAX_SUMMARY_TICKETS} tickets of one tenant")
    if len({location_of(t).pk for t in tickets}) != 1:
        raise ValueError("tickets of one storage location")
    return _mint(
        tickets[0].tenant, location_of(tickets[0]), prefixes=[t.prefix for t in tickets], **_person(user), ops=SUMMARY_GRANT_OPS,
        lifetime=SUMMARY_GRANT_LIFETIME, now=now,
    )


def note_grant(note, user, *, now: float | None = None) -> Grant:
    """A single-use put grant for one note's own prefix (`tickets/<id>/notes/<note>/`)."""
    return _mint(
        note.ticket.tenant, location_of(note.ticket), prefix=note.prefix, **_person(user), ops=NOTE_GRANT_OPS,
        lifetime=NOTE_GRANT_LIFETIME, now=now,
    )


def erase_grant(ticket: Ticket, user, *, now: float | None = None) -> Grant:
    """A single-use delete grant for the ticket's prefix, for a tenant admin who has
    confirmed its erasure (portal/tickets/erasure.py checks both), at the gatekeeper
    that holds the ticket's objects."""
    from portal.tickets.erasure import gatekeeper_for

    return _mint(ticket.tenant, gatekeeper_for(ticket), prefix=ticket.prefix, **_person(user), ops=ERASE_GRANT_OPS,
                 lifetime=ERASE_GRANT_LIFETIME, now=now)


@dataclass(frozen=True)
class SupportGrant(Grant):
    approval: str  # the X-Approval header's value: the customer's approvals of it


def support_grant(access: SupportAccess, *, now: float | None = None) -> SupportGrant | None:
    """A read grant for support while the approval runs (never past its end), or
    None: pending, refused, ended early or expired requests get none."""
    issued = time.time() if now is None else now
    approval = live_approval(access, dt.datetime.fromtimestamp(issued, tz=dt.timezone.utc))
    lifetime = min(READ_GRANT_LIFETIME, int(access.ends_at.timestamp() - issued)) if approval else 0
    if lifetime < 1:
        return None
    user = access.requested_by
    grant = _mint(access.tenant, location_of(access.ticket), prefix=access.ticket.prefix, subject=support_subject(user),
                  name=f"{user.get_username()} (vendor support)", ops=tuple(access.ops), lifetime=lifetime,
                  now=issued, identity=(user.email or "").lower())
    return SupportGrant(grant.token, grant.expires_at, approval)


MOVE_GRANT_LIFETIME = 120
MOVE_GRANT_OPS = frozenset({"get", "list", "put", "delete"})


def move_grant(ticket: Ticket, location: StorageLocation, carrier: dict, ops: tuple[str, ...], *,
               now: float | None = None) -> Grant:
    """A grant for one ticket's prefix at either end of its move (portal/moves): a get
    or list at the source, a single-use put at the destination, a single-use delete at
    the source once the ticket is switched. `carrier` is who the customer's audit log
    names: the job's subject for the vendor's worker (portal.moves.services.worker_carrier), the
    admin in person for a move in the browser. The caller checks the job's state."""
    if not ops or not set(ops) <= MOVE_GRANT_OPS or len(set(ops)) != len(ops):
        raise ValueError("a move grant asks for get, list, put or delete")
    if location.tenant_id != ticket.tenant_id:
        raise ValueError("a location of the ticket's own tenant")
    issued = time.time() if now is None else now
    if "put" in ops:  # as put_grant: an erasure waits while such an upload may land
        Ticket.objects.filter(pk=ticket.pk).update(
            put_granted_at=dt.datetime.fromtimestamp(issued, tz=dt.timezone.utc))
    lifetime = PUT_GRANT_LIFETIME if "put" in ops else MOVE_GRANT_LIFETIME
    return _mint(ticket.tenant, location, prefix=ticket.prefix, ops=ops, lifetime=lifetime, now=issued, **carrier)


def person_carrier(user) -> dict:
    """A move grant's carrier when the admin's browser carries the bytes (move_grant)."""
    return _person(user)
