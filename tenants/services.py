"""Tenant lifecycle operations used by the support pages and seed_demo."""

from __future__ import annotations

from django.db import transaction

from tenants import events
from tenants.models import Membership, SecurityEvent, Tenant
from tenants.signing import create_signing_key


def create_tenant(**fields) -> Tenant:
    """A tenant always has an active signing key from its first moment."""
    with transaction.atomic():
        tenant = Tenant.objects.create(**fields)
        create_signing_key(tenant)
    return tenant


class MembershipError(Exception):
    """A membership change refused, with a reason a person can act on."""


def _other_active_admins(membership: Membership) -> bool:
    # Locked first: two admins demoting each other at once must not leave none.
    Tenant.objects.select_for_update().filter(pk=membership.tenant_id).first()
    return (Membership.objects.filter(tenant=membership.tenant, role=Membership.Role.ADMIN, user__is_active=True)
            .exclude(pk=membership.pk).exists())


def change_role(membership: Membership, role: str, *, actor) -> Membership:
    """Change a member's role (a security event). The last admin stays an admin."""
    if role not in Membership.Role.values:
        raise MembershipError(f"Unknown role: choose one of {', '.join(Membership.Role.values)}.")
    if role == membership.role:
        return membership
    with transaction.atomic():
        if membership.is_admin and not _other_active_admins(membership):
            raise MembershipError("The last admin of a tenant cannot be made staff: make another admin first.")
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        events.record(membership.tenant, actor, [events.event(
            SecurityEvent.Kind.ROLE_CHANGED, subject=membership.user.get_username(), old=old, new=role)])
    return membership


def remove_member(membership: Membership, *, actor) -> None:
    """Remove a member from the tenant (a security event). The last admin stays."""
    with transaction.atomic():
        if membership.is_admin and not _other_active_admins(membership):
            raise MembershipError("The last admin of a tenant cannot be removed: make another admin first.")
        tenant, username, role = membership.tenant, membership.user.get_username(), membership.role
        membership.delete()
        events.record(tenant, actor, [events.event(SecurityEvent.Kind.REMOVED, subject=username, old=role)])
