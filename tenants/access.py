"""The only way to reach tenants, memberships and agent tokens (tickets: the
same way, in portal/tickets/access.py).

Every function here filters by the caller's tenant inside the query, so another
tenant's object is indistinguishable from one that does not exist: Http404, never
"forbidden". Role checks within the caller's own tenant answer PermissionDenied
(403): the caller knows their own tenant exists. Views never call
`.objects.get(pk=...)` on tenant data; they call these.

Suspended tenants are invisible to their members.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from tenants.models import (
    AgentToken,
    ApproverKey,
    Invitation,
    Membership,
    SecurityEvent,
    StorageLocation,
    SupportAccess,
    Tenant,
)
from tenants.tokens import hash_token

LIVE_STATUSES = (Tenant.Status.ONBOARDING, Tenant.Status.ACTIVE)
# Recording every use of a token would be a write per request; once a minute is
# plenty to tell an admin which tokens are still in use.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def membership_for_user(user) -> Membership:
    if not user.is_authenticated:
        raise Http404("not found")
    try:
        return Membership.objects.select_related("tenant").get(user=user, tenant__status__in=LIVE_STATUSES)
    except Membership.DoesNotExist:
        raise Http404("not found") from None


def suspended_tenant_for_user(user) -> Tenant | None:
    """The user's own tenant when the vendor has suspended it (so its pages can say
    so, rather than "not found"); None otherwise."""
    if not user.is_authenticated:
        return None
    membership = Membership.objects.select_related("tenant").filter(
        user=user, tenant__status=Tenant.Status.SUSPENDED).first()
    return membership.tenant if membership else None


def tenant_for_user(user) -> Tenant:
    return membership_for_user(user).tenant


def admin_membership_for_user(user) -> Membership:
    """The caller's membership if they are an admin of their tenant: 403 otherwise."""
    membership = membership_for_user(user)
    if not membership.is_admin:
        raise PermissionDenied("tenant admins only")
    return membership


def tenant_for_admin(user) -> Tenant:
    """The caller's tenant if they are its admin: 403 for its staff, 404 for anyone
    without a live tenant."""
    return admin_membership_for_user(user).tenant


def locations_for_admin(user) -> QuerySet[StorageLocation]:
    """The storage locations of the caller's tenant (admins: 403 for staff)."""
    return StorageLocation.objects.filter(tenant=tenant_for_admin(user))


def access_location_for_admin(user, location_id: int) -> StorageLocation:
    try:
        return locations_for_admin(user).select_related("tenant").get(pk=location_id)
    except StorageLocation.DoesNotExist:
        raise Http404("not found") from None


def locations_for_support(user, tenant: Tenant) -> QuerySet[StorageLocation]:
    """A tenant's locations for vendor support (reached through access_tenant_for_support)."""
    require_support(user)
    return StorageLocation.objects.filter(tenant=tenant)


def agent_tokens_for_admin(user) -> QuerySet[AgentToken]:
    return AgentToken.objects.filter(tenant=tenant_for_admin(user))


def security_events_for_admin(user) -> QuerySet[SecurityEvent]:
    return SecurityEvent.objects.filter(tenant=tenant_for_admin(user))


def members_for_admin(user) -> QuerySet[Membership]:
    return Membership.objects.select_related("user", "tenant").filter(tenant=tenant_for_admin(user))


def access_member_for_admin(user, membership_id: int) -> Membership:
    try:
        return members_for_admin(user).get(id=membership_id)
    except Membership.DoesNotExist:
        raise Http404("not found") from None


def invitations_for_admin(user) -> QuerySet[Invitation]:
    """All the tenant's invitations, support's onboarding ones included (an admin
    may revoke those too)."""
    return Invitation.objects.select_related("tenant").filter(tenant=tenant_for_admin(user))


def access_invitation_for_admin(user, invitation_id: int) -> Invitation:
    try:
        return invitations_for_admin(user).get(id=invitation_id)
    except Invitation.DoesNotExist:
        raise Http404("not found") from None


def access_agent_token_for_admin(user, token_id: int) -> AgentToken:
    try:
        return agent_tokens_for_admin(user).get(id=token_id)
    except AgentToken.DoesNotExist:
        raise Http404("not found") from None


def access_agent_token(token: str, *, now: dt.datetime | None = None) -> AgentToken | None:
    """The live token with this value, or None: revoked, unknown, or its tenant suspended."""
    if not token:
        return None
    digest = hash_token(token)
    row = (
        AgentToken.objects.select_related("tenant")
        .filter(token_hash=digest, revoked_at__isnull=True, tenant__status__in=LIVE_STATUSES)
        .first()
    )
    # The query already matched; the constant-time compare keeps the check honest
    # should the lookup ever change to something looser.
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    _touch(row, now or timezone.now())
    return row


def _touch(row: AgentToken, now: dt.datetime) -> None:
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        AgentToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now


# --- vendor support: all tenants, but only for vendor staff ------------------------

def require_support(user) -> None:
    """Vendor support are is_staff users with no tenant. Anyone else: 404, so the
    support area does not even show that it exists."""
    if not (user.is_authenticated and user.is_staff and not Membership.objects.filter(user=user).exists()):
        raise Http404("not found")


def support_required(view):
    """For the vendor-support views (under login_required and the method check):
    404 to anyone who is not vendor support. The support access functions below
    check again, so none of them depends on its view being decorated."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        require_support(request.user)
        return view(request, *args, **kwargs)

    return wrapper


def tenants_for_support(user) -> QuerySet[Tenant]:
    require_support(user)
    return Tenant.objects.all()


def access_tenant_for_support(user, slug: str) -> Tenant:
    try:
        return tenants_for_support(user).get(slug=slug)
    except Tenant.DoesNotExist:
        raise Http404("not found") from None


def access_invitation_for_support(user, slug: str, invitation_id: int) -> Invitation:
    """One of the tenant's invitations that vendor support made (onboarding)."""
    tenant = access_tenant_for_support(user, slug)
    try:
        return Invitation.objects.select_related("tenant").get(tenant=tenant, id=invitation_id, onboarding=True)
    except Invitation.DoesNotExist:
        raise Http404("not found") from None


# --- vendor support access to one ticket (tenants/support_access.py) ---------------

def _accesses() -> QuerySet[SupportAccess]:
    return SupportAccess.objects.select_related("tenant", "ticket", "requested_by")


def support_accesses_for_admin(user) -> QuerySet[SupportAccess]:
    """Every support request for the admin's tenant (staff: 403)."""
    return _accesses().filter(tenant=tenant_for_admin(user))


def access_support_access_for_admin(user, access_id) -> SupportAccess:
    try:
        return support_accesses_for_admin(user).get(id=access_id)
    except SupportAccess.DoesNotExist:
        raise Http404("not found") from None


def approver_keys_for_admin(user) -> QuerySet[ApproverKey]:
    return ApproverKey.objects.filter(tenant=tenant_for_admin(user))


def support_accesses_for_support(user) -> QuerySet[SupportAccess]:
    """A support person's own requests: another's, even a colleague's, is not found
    (an approval names one person)."""
    require_support(user)
    return _accesses().filter(requested_by=user)


def access_support_access_for_support(user, access_id) -> SupportAccess:
    try:
        return support_accesses_for_support(user).get(id=access_id)
    except SupportAccess.DoesNotExist:
        raise Http404("not found") from None


def access_ticket_for_support(user, slug: str, number: int):
    """A ticket of the tenant by its number, for a support request: its metadata
    only (the vendor holds that); reading it needs the customer's approval."""
    ticket = access_tenant_for_support(user, slug).tickets.filter(number=number).first()
    if ticket is None:
        raise Http404("not found")
    return ticket
