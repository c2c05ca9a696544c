"""Tenant lifecycle operations used by the support pages and seed_demo."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from tenants.models import Membership, Tenant
from tenants.signing import create_signing_key


def create_tenant(**fields) -> Tenant:
    """A tenant always has an active signing key from its first moment."""
    with transaction.atomic():
        tenant = Tenant.objects.create(**fields)
        create_signing_key(tenant)
    return tenant


def invite_admin(tenant: Tenant, username: str, email: str) -> tuple[Membership, str]:
    """Create an admin with a one-time password, shown to support once."""
    password = secrets.token_urlsafe(12)
    with transaction.atomic():
        user = get_user_model().objects.create_user(username=username, email=email, password=password)
        membership = Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.ADMIN)
    return membership, password
