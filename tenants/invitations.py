"""Invitations: a single-use, expiring link by email; the invitee sets their own password.

Vendor support invites a tenant's first admin only while the tenant has no
active admin (onboarding); from then on only its admins add members (the members
page, /settings/members/, `invite_member`). An onboarding invitation is also void once the tenant has an
admin, so a spare one cannot let support in later. Support never sees a
password, nor the link: the token goes into the mail and only its SHA-256 is
stored. Every step is a security event (tenants/events.py).
"""

from __future__ import annotations

import datetime as dt
import enum
import hmac
import logging
import secrets
import smtplib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from tenants import events
from tenants.access import LIVE_STATUSES
from tenants.models import Invitation, Membership, SecurityEvent, Tenant
from tenants.tokens import hash_token

log = logging.getLogger(__name__)


class State(enum.Enum):
    """What a link is; every state but OPEN has its own sentence on the page."""

    OPEN = "open"
    USED = "used"
    REVOKED = "revoked"
    EXPIRED = "expired"
    VOID = "void"  # onboarding invitation of a tenant that has an admin now, or a suspended tenant


class InvitationError(Exception):
    """An invitation step refused, with a reason a person can act on."""


def lifetime() -> dt.timedelta:
    return dt.timedelta(days=settings.DUALKEY_INVITATION_DAYS)


def has_active_admin(tenant: Tenant) -> bool:
    return Membership.objects.filter(tenant=tenant, role=Membership.Role.ADMIN, user__is_active=True).exists()


def state_of(invitation: Invitation, *, now: dt.datetime) -> State:
    if invitation.accepted_at is not None:
        return State.USED
    if invitation.revoked_at is not None:
        return State.REVOKED
    if invitation.tenant.status not in LIVE_STATUSES:
        return State.VOID
    if invitation.onboarding and has_active_admin(invitation.tenant):
        return State.VOID
    if now >= invitation.expires_at:
        return State.EXPIRED
    return State.OPEN


def username_taken(username: str) -> bool:
    """By an account, or by an open invitation (it would fail on acceptance)."""
    return get_user_model().objects.filter(username__iexact=username).exists() or invitation_pending(username)


def invitation_pending(username: str) -> bool:
    return Invitation.objects.filter(username__iexact=username, accepted_at__isnull=True,
                                     revoked_at__isnull=True, expires_at__gt=timezone.now()).exists()


def account_for(username: str):
    """The account a username already names, or None."""
    return get_user_model().objects.filter(username__iexact=username).first()


def can_join(user) -> bool:
    """An existing account may take an admin's invitation only while it belongs to no
    tenant (one tenant per user), and never vendor support's."""
    return user.is_active and not user.is_staff and not Membership.objects.filter(user=user).exists()


def invite_first_admin(tenant: Tenant, username: str, email: str, *, actor,
                       now: dt.datetime | None = None) -> tuple[Invitation, bool]:
    """Support's invitation of a tenant's first admin: (invitation, mailed?)."""
    now = now or timezone.now()
    with transaction.atomic():
        Tenant.objects.select_for_update().filter(pk=tenant.pk).first()  # one inviter at a time
        if has_active_admin(tenant):
            raise InvitationError(
                f"{tenant.name} has an admin: only its admins add members now. Vendor support's access "
                "to a tenant goes through the tenant's approval.")
        invitation, token = _create(tenant, username, email, Membership.Role.ADMIN, actor=actor, now=now,
                                    onboarding=True)
    return invitation, send_invitation(invitation, token)


def invite_member(tenant: Tenant, username: str, email: str, role: str, *, actor,
                  now: dt.datetime | None = None) -> tuple[Invitation, bool]:
    """An admin's invitation (the members page): (invitation, mailed?). Not an
    onboarding one, so the tenant having admins does not void it."""
    if role not in Membership.Role.values:
        raise InvitationError(f"Unknown role: choose one of {', '.join(Membership.Role.values)}.")
    now = now or timezone.now()
    with transaction.atomic():
        invitation, token = _create(tenant, username, email, role, actor=actor, now=now, onboarding=False)
    return invitation, send_invitation(invitation, token)


def _create(tenant, username, email, role, *, actor, now, onboarding) -> tuple[Invitation, str]:
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        tenant=tenant, username=username, email=email, role=role, onboarding=onboarding,
        token_hash=hash_token(token), invited_by=actor, created_at=now, sent_at=now, expires_at=now + lifetime())
    events.record(tenant, actor, [events.event(SecurityEvent.Kind.INVITED, subject=_who(invitation),
                                               new=invitation.role)], now=now)
    return invitation, token


def resend(invitation: Invitation, *, actor, now: dt.datetime | None = None) -> bool:
    """A fresh link (the old one stops working: only hashes are kept) and a fresh expiry."""
    now = now or timezone.now()
    state = state_of(invitation, now=now)
    if state not in (State.OPEN, State.EXPIRED):
        raise InvitationError(f"This invitation cannot be re-sent: it is {state.value}.")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation.token_hash, invitation.sent_at, invitation.expires_at = hash_token(token), now, now + lifetime()
        invitation.save(update_fields=["token_hash", "sent_at", "expires_at"])
        events.record(invitation.tenant, actor, [events.event(SecurityEvent.Kind.INVITATION_RESENT,
                                                              subject=_who(invitation))], now=now)
    return send_invitation(invitation, token)


def revoke(invitation: Invitation, *, actor, now: dt.datetime | None = None) -> None:
    now = now or timezone.now()
    if not invitation.is_open:
        raise InvitationError("This invitation was already used or revoked.")
    with transaction.atomic():
        invitation.revoked_at = now
        invitation.save(update_fields=["revoked_at"])
        events.record(invitation.tenant, actor, [events.event(SecurityEvent.Kind.INVITATION_REVOKED,
                                                              subject=_who(invitation))], now=now)


def find(token: str) -> Invitation | None:
    """The invitation whose link carries this token, in whatever state, or None."""
    if not token or len(token) > 100:
        return None
    digest = hash_token(token)
    row = Invitation.objects.select_related("tenant").filter(token_hash=digest).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return row


def _locked_open(invitation: Invitation, now: dt.datetime) -> Invitation:
    """The invitation again, its tenant and itself locked, if it is still open: checked
    again under the lock (two tabs, or an admin joining meanwhile)."""
    Tenant.objects.select_for_update().filter(pk=invitation.tenant_id).first()
    invitation = Invitation.objects.select_for_update().select_related("tenant").get(pk=invitation.pk)
    state = state_of(invitation, now=now)
    if state is not State.OPEN:
        raise InvitationError(state.value)
    return invitation


def _admit(invitation: Invitation, user, now: dt.datetime) -> None:
    """The membership the invitation offers, the invitation used, the event recorded."""
    Membership.objects.create(user=user, tenant=invitation.tenant, role=invitation.role)
    invitation.accepted_at, invitation.user = now, user
    invitation.save(update_fields=["accepted_at", "user"])
    events.record(invitation.tenant, user, [events.event(SecurityEvent.Kind.JOINED, subject=_who(invitation),
                                                         new=invitation.role)], now=now)


def accept(invitation: Invitation, set_password_form, *, now: dt.datetime | None = None):
    """Make the account (with the password the invitee chose, already validated by
    `set_password_form`, a SetPasswordForm on an unsaved user) and its membership."""
    now = now or timezone.now()
    with transaction.atomic():
        invitation = _locked_open(invitation, now)
        if get_user_model().objects.filter(username__iexact=invitation.username).exists():
            raise InvitationError("That username was taken meanwhile: ask for a new invitation.")
        try:
            with transaction.atomic():
                user = set_password_form.save()
        except IntegrityError:
            raise InvitationError("That username was taken meanwhile: ask for a new invitation.") from None
        _admit(invitation, user, now)
    return user


def join(invitation: Invitation, user, *, now: dt.datetime | None = None):
    """An admin's invitation for an account that exists: the account, signed in and
    holding the link, becomes a member (no new password)."""
    now = now or timezone.now()
    with transaction.atomic():
        invitation = _locked_open(invitation, now)
        if invitation.onboarding or user.get_username().lower() != invitation.username.lower():
            raise InvitationError("This invitation is for another account.")
        if not can_join(user):
            raise InvitationError("Your account belongs to a tenant already: one tenant per account.")
        _admit(invitation, user, now)
    return user


def link(token: str) -> str:
    """Built on the portal's origin, never on a request's Host header (which a
    client chooses: a poisoned link would send the token elsewhere)."""
    return f"{settings.DUALKEY_PORTAL_ORIGIN}{reverse('invitation-accept')}?token={token}"


def send_invitation(invitation: Invitation, token: str) -> bool:
    tenant = invitation.tenant
    body = "\n".join([
        f"You are invited to join {tenant.name} in Dualkey as {invitation.get_role_display().lower()}, "
        f"with the username {invitation.username}.",
        "",
        ("You have an account already: open this link, sign in with it, and confirm (the link works once):"
         if not invitation.onboarding and account_for(invitation.username) is not None
         else "Open this link to choose your password (it works once):"),
        link(token),
        "",
        f"It expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. If you did not expect it, ignore this mail.",
        "",
    ])
    try:
        send_mail(f"[Dualkey] Your invitation to {tenant.name}", body, settings.DEFAULT_FROM_EMAIL,
                  [invitation.email], fail_silently=False)
    except (smtplib.SMTPException, OSError) as error:
        log.warning("invitation %s of tenant %s: mail failed (%s)", invitation.pk, tenant.slug,
                    type(error).__name__)
        return False
    return True


def _who(invitation: Invitation) -> str:
    return f"{invitation.username} <{invitation.email}>"
