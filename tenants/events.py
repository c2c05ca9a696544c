"""Tenant security events: recorded, then told to every admin of the tenant by mail.

What is recorded is what a tenant's admins must be able to check was them:
changes of where the tenant's data goes (gatekeeper URL and id, storage origin)
and of who belongs to it (invited, joined, role changed, removed, invitation
re-sent or revoked). Events hold names, addresses and URLs, never report content.
"""

from __future__ import annotations

import logging
import smtplib

from django.conf import settings
from django.core.mail import send_mass_mail
from django.urls import reverse
from django.utils import timezone

from tenants.models import Membership, SecurityEvent, Tenant

log = logging.getLogger(__name__)

# The storage settings whose change is a security event, in the order they are shown.
WATCHED_FIELDS = {
    "gatekeeper_url": SecurityEvent.Kind.GATEKEEPER_URL,
    "gatekeeper_id": SecurityEvent.Kind.GATEKEEPER_ID,
    "storage_origin": SecurityEvent.Kind.STORAGE_ORIGIN,
}


def describe(user) -> str:
    """The actor as the tenant's admins read it: vendor support says so."""
    if user is None:
        return "the portal"
    name = user.get_username()
    if user.is_staff and not Membership.objects.filter(user=user).exists():
        return f"{name} (vendor support)"
    return name


def event(kind: SecurityEvent.Kind, *, subject: str = "", old: str = "", new: str = "") -> SecurityEvent:
    """An event still to be recorded (with `record`)."""
    return SecurityEvent(kind=kind, subject=subject, old_value=old, new_value=new)


def storage_changes(before: dict, tenant: Tenant) -> list[SecurityEvent]:
    """The events for the watched fields that differ between `before` and the tenant now."""
    return [
        event(kind, old=before[field], new=getattr(tenant, field))
        for field, kind in WATCHED_FIELDS.items()
        if before[field] != getattr(tenant, field)
    ]


def watched_values(tenant: Tenant) -> dict:
    return {field: getattr(tenant, field) for field in WATCHED_FIELDS}


def record(tenant: Tenant, actor, events: list[SecurityEvent], *, now=None) -> list[SecurityEvent]:
    """Save the events and mail the tenant's admins about them (one message each)."""
    if not events:
        return []
    now = now or timezone.now()
    for row in events:
        row.tenant, row.actor, row.actor_name, row.created_at = tenant, actor, describe(actor), now
    SecurityEvent.objects.bulk_create(events)
    notify_admins(tenant, events)
    return events


def admin_addresses(tenant: Tenant) -> list[str]:
    return sorted({
        m.user.email for m in tenant.memberships.select_related("user")
        if m.role == Membership.Role.ADMIN and m.user.is_active and m.user.email
    })


def notify_admins(tenant: Tenant, events: list[SecurityEvent]) -> int:
    """Mail every active admin. A mail failure is logged (without addresses) and does
    not undo the change: the event is recorded and listed on the settings page."""
    recipients = admin_addresses(tenant)
    if not recipients:  # onboarding: no admin yet
        return 0
    subject = f"[Dualkey] {tenant.name}: " + ", ".join(e.get_kind_display().lower() for e in events)
    body = _body(tenant, events)
    messages = [(subject, body, settings.DEFAULT_FROM_EMAIL, [address]) for address in recipients]
    try:
        return send_mass_mail(messages, fail_silently=False)
    except (smtplib.SMTPException, OSError) as error:
        log.warning("security events %s of tenant %s: mail to its admins failed (%s)",
                    [e.id for e in events], tenant.slug, type(error).__name__)
        return 0


def _body(tenant: Tenant, events: list[SecurityEvent]) -> str:
    lines = [f"A security-relevant change was made to {tenant.name} ({tenant.slug}) in Dualkey:", ""]
    for e in events:
        line = f"- {e.created_at:%Y-%m-%d %H:%M:%S} UTC, {e.actor_name}: {e.get_kind_display()}"
        if e.subject:
            line += f" ({e.subject})"
        if e.old_value or e.new_value:
            line += f": {e.old_value or '(none)'} -> {e.new_value or '(none)'}"
        lines.append(line)
    url = settings.DUALKEY_PORTAL_ORIGIN + reverse("tenant-settings") + "#security-events"
    lines += ["", "If you did not expect this, check your tenant's settings and members now:", url, ""]
    return "\n".join(lines)
