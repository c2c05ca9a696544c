"""Who must have a second factor, and who may sign in without the tenant's SSO.

- A tenant's "require MFA" (SignInPolicy.mfa_required) holds its members to a
  second factor: one without is sent to enrol at sign-in and can do nothing else
  until they have (the middleware). Vendor support is held to it by
  DUALKEY_SUPPORT_MFA_REQUIRED. A session signed in through the tenant's SSO is
  not: the customer's IdP decides how its people authenticate.
- A tenant's "SSO required" refuses its members' password (and passkey) sign-in.
  The one break-glass path: a tenant *admin* with a second factor enrolled may
  still sign in with password + second factor; each such sign-in is a security
  event mailed to every admin.
"""

from __future__ import annotations

from django.conf import settings

from accounts.models import Authenticator, SignInPolicy
from tenants.models import Membership, Tenant

SSO_SESSION = "dk_sso"
SECOND_FACTORS = (Authenticator.Kind.TOTP, Authenticator.Kind.PASSKEY)
ENROL_PATHS = ("/accounts/security/", "/accounts/logout/", "/accounts/mfa/", "/static/")


def policy_of(tenant: Tenant) -> SignInPolicy:
    return SignInPolicy.objects.filter(tenant=tenant).first() or SignInPolicy(tenant=tenant)


def live_membership(user) -> Membership | None:
    from tenants.access import LIVE_STATUSES

    return Membership.objects.select_related("tenant").filter(user=user, tenant__status__in=LIVE_STATUSES).first()


def is_support(user) -> bool:
    return user.is_staff and not Membership.objects.filter(user=user).exists()


def has_mfa(user) -> bool:
    return Authenticator.objects.filter(user=user, kind__in=SECOND_FACTORS).exists()


def users_with_mfa(user_ids) -> set[int]:
    return set(Authenticator.objects.filter(user_id__in=list(user_ids), kind__in=SECOND_FACTORS)
               .values_list("user_id", flat=True))


def mfa_required_for(user) -> bool:
    membership = live_membership(user)
    if membership is not None:
        return policy_of(membership.tenant).mfa_required
    return is_support(user) and settings.DUALKEY_SUPPORT_MFA_REQUIRED


def must_enrol(request) -> bool:
    if request.session.get(SSO_SESSION):
        return False
    return mfa_required_for(request.user) and not has_mfa(request.user)


def enrol_exempt(path: str) -> bool:
    return path.startswith(ENROL_PATHS)


def sso_required_for(tenant: Tenant) -> bool:
    found = SignInPolicy.objects.filter(tenant=tenant).first()
    return bool(found and found.sso_enabled and found.sso_required)


class Refused(Exception):
    """A local (password or passkey) sign-in the account's tenant does not allow."""


def local_sign_in(user) -> bool:
    """May `user` sign in without SSO? Returns whether it is a break-glass sign-in;
    raises Refused for a member of an SSO-required tenant who is not an admin with MFA."""
    membership = live_membership(user)
    if membership is None:
        return False
    tenant_policy = policy_of(membership.tenant)
    if not (tenant_policy.sso_enabled and tenant_policy.sso_required):
        return False
    if membership.is_admin and has_mfa(user):
        return True
    raise Refused(f"{membership.tenant.name} signs in with single sign-on: use “Sign in with SSO”.")
