"""Per-tenant single sign-on with OpenID Connect (Authlib's Django client).

A tenant's admins set the issuer, client id and client secret (sealed at rest,
accounts/sealed.py) on /settings/sign-in/. Someone signing in names their work
address (its domain picks the tenant) or the tenant's slug; the portal sends them
to the IdP with the authorization-code flow (state and nonce in the session, PKCE
S256), exchanges the code at the IdP's token endpoint with the client secret, and
validates the ID token against the IdP's JWKS: its issuer (the configured one,
which the discovery document must also name), audience (the client id), expiry,
nonce, and an asymmetric signature algorithm.

Then, just in time: the IdP's subject (`sub`) finds the account made for it
before; otherwise an account is made (no usable password) with a membership in
the tenant with its default role (or an open invitation's role, for its address:
the invitation is then used) — or admin, if the ID token's `groups` claim holds
the tenant's admin group. An address outside the tenant's domains is
refused. Everything here reaches the tenant through its SignInPolicy row.
"""

from __future__ import annotations

import logging
import secrets

import jwt
from cryptography.exceptions import InvalidTag
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.django_client import OAuth
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.forms import SECRET_PURPOSE
from accounts.models import SignInPolicy, SSOIdentity
from accounts.sealed import unseal
from tenants import events
from tenants.access import LIVE_STATUSES
from tenants.models import Invitation, Membership, SecurityEvent

log = logging.getLogger(__name__)

TENANT_KEY = "dk_sso_tenant"
ALLOWED_ALGS = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}


class SSOError(Exception):
    """Single sign-on did not work; the message is safe to show."""


def redirect_uri() -> str:
    return settings.DUALKEY_PORTAL_ORIGIN + reverse("sso-callback")


def find_policy(identifier: str) -> SignInPolicy | None:
    """The SSO-enabled policy for an address's domain, or for a tenant slug."""
    identifier = identifier.strip().lower()
    live = SignInPolicy.objects.select_related("tenant").filter(sso_enabled=True, tenant__status__in=LIVE_STATUSES)
    if "@" in identifier:
        domain = identifier.rsplit("@", 1)[1]
        return next((p for p in live if domain in p.domains()), None)
    return live.filter(tenant__slug=identifier).first()


def _client(policy: SignInPolicy):
    try:
        secret = unseal(policy.client_secret_sealed, purpose=SECRET_PURPOSE, owner=policy.tenant_id).decode()
    except (InvalidTag, TypeError, ValueError):  # another master key, or no secret stored
        log.warning("tenant %s: the SSO client secret does not open", policy.tenant.slug)
        raise SSOError("Single sign-on is not set up completely: ask your admin to enter the client secret again.") from None
    scope = "openid email profile" + (" groups" if policy.admin_group else "")
    return OAuth().register(
        name=f"tenant-{policy.tenant_id}", client_id=policy.client_id, client_secret=secret,
        server_metadata_url=policy.issuer + "/.well-known/openid-configuration",
        client_kwargs={"scope": scope, "code_challenge_method": "S256", "timeout": 10})


def _metadata(client, policy: SignInPolicy) -> dict:
    try:
        metadata = client.load_server_metadata()
    except Exception as error:  # network, JSON: the IdP is not answering properly
        log.warning("tenant %s: the IdP's discovery document failed (%s)", policy.tenant.slug, type(error).__name__)
        raise SSOError("Your identity provider did not answer. Try again later, or ask your admin.") from None
    if metadata.get("issuer", "").rstrip("/") != policy.issuer.rstrip("/"):
        raise SSOError("Your identity provider's discovery document names another issuer: ask your admin.")
    return metadata


def begin(request, policy: SignInPolicy):
    """The redirect to the IdP's authorization endpoint."""
    client = _client(policy)
    _metadata(client, policy)
    request.session[TENANT_KEY] = policy.tenant_id
    return client.authorize_redirect(request, redirect_uri(), nonce=secrets.token_urlsafe(24))


def finish(request):
    """Back from the IdP: the signed-in account (made or found), its tenant's policy."""
    tenant_id = request.session.pop(TENANT_KEY, None)
    policy = SignInPolicy.objects.select_related("tenant").filter(
        tenant_id=tenant_id, sso_enabled=True, tenant__status__in=LIVE_STATUSES).first()
    if policy is None:
        raise SSOError("This sign-in was not started here, or has expired: start again.")
    client = _client(policy)
    _metadata(client, policy)
    try:
        token = client.authorize_access_token(request)
    except OAuthError as error:
        raise SSOError(f"Single sign-on did not complete ({error.error}).") from None
    except Exception as error:  # the token endpoint, the JWKS, a token that does not validate
        log.warning("tenant %s: SSO token step failed (%s)", policy.tenant.slug, type(error).__name__)
        raise SSOError("Your identity provider's answer did not check out: start again.") from None
    if "id_token" not in token or jwt.get_unverified_header(token["id_token"]).get("alg") not in ALLOWED_ALGS:
        raise SSOError("Your identity provider sent no ID token signed with a key pair.")
    claims = dict(token["userinfo"])
    if not claims.get("email"):
        claims.update(client.userinfo(token=token))
    return just_in_time(policy, claims), policy


def _username_for(email: str) -> str:
    User = get_user_model()
    base = email[:140]
    return base if not User.objects.filter(username=base).exists() else f"{base}-{secrets.token_hex(3)}"


def just_in_time(policy: SignInPolicy, claims: dict, *, now=None):
    """The account for these ID-token claims, made (with its membership) if new."""
    now = now or timezone.now()
    subject, email = str(claims.get("sub", ""))[:255], str(claims.get("email") or "").strip().lower()
    if not subject:
        raise SSOError("The ID token has no subject.")
    groups = claims.get("groups") if isinstance(claims.get("groups"), list) else []
    wants_admin = bool(policy.admin_group) and policy.admin_group in groups
    tenant = policy.tenant
    with transaction.atomic():
        identity = SSOIdentity.objects.select_related("user").filter(tenant=tenant, subject=subject).first()
        if identity is None:
            if not email or claims.get("email_verified") is False:
                raise SSOError("Your identity provider gave no verified email address.")
            if policy.domains() and email.rsplit("@", 1)[-1] not in policy.domains():
                raise SSOError(f"{tenant.name} does not sign in people with that address.")
            User = get_user_model()
            user = User(username=_username_for(email), email=email, first_name=str(claims.get("given_name", ""))[:150],
                        last_name=str(claims.get("family_name", ""))[:150])
            user.set_unusable_password()
            user.save()
            try:
                SSOIdentity.objects.create(tenant=tenant, subject=subject, user=user, created_at=now)
            except IntegrityError:
                raise SSOError("Signing in at the same time twice: try again.") from None
        user = (identity.user if identity else user)
        if not user.is_active:
            raise SSOError("This account is deactivated.")
        membership = Membership.objects.filter(user=user).first()
        if membership is not None and membership.tenant_id != tenant.pk:
            raise SSOError("This account belongs to another tenant.")
        recorded = []
        if membership is None:
            # An open invitation for this address gives its role, and is used up.
            invitation = Invitation.objects.filter(
                tenant=tenant, email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True,
                expires_at__gt=now).first() if email else None
            role = Membership.Role.ADMIN if wants_admin else (invitation.role if invitation else policy.default_role)
            membership = Membership.objects.create(user=user, tenant=tenant, role=role)
            if invitation is not None:
                Invitation.objects.filter(pk=invitation.pk).update(accepted_at=now, user=user)
            recorded.append(events.event(SecurityEvent.Kind.JOINED, subject=user.get_username(),
                                         new=f"{membership.get_role_display()}, by single sign-on"))
        elif wants_admin and not membership.is_admin:
            membership.role = Membership.Role.ADMIN
            membership.save(update_fields=["role"])
            recorded.append(events.event(SecurityEvent.Kind.ROLE_CHANGED, subject=user.get_username(),
                                         old="staff", new=f"admin (IdP group {policy.admin_group})"))
        events.record(tenant, None, recorded, now=now)
    return user
