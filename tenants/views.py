"""Tenant admin pages (/settings/, /settings/members/, /audit/) and vendor support pages (/support/).

Admin pages answer 403 to a tenant's staff (wrong role in their own tenant) and
404 for another tenant's objects; the support area is 404 to anyone who is not
vendor support.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe

from accounts.policy import sso_required_for, users_with_mfa
from gatekeeper.errors import AUDIT_OPS
from tenants import events, forms, onboarding, support_access
from tenants import invitations
from tenants.access import (
    access_agent_token_for_admin,
    access_invitation_for_admin,
    access_invitation_for_support,
    access_member_for_admin,
    access_tenant_for_support,
    agent_tokens_for_admin,
    approver_keys_for_admin,
    invitations_for_admin,
    locations_for_support,
    members_for_admin,
    security_events_for_admin,
    support_accesses_for_admin,
    support_required,
    tenant_for_admin,
    tenants_for_support,
)
from tenants.csp import HEADER as CSP_HEADER, idp_origin, set_gatekeeper_csp, verification_policy
from tenants.gatekeeper_toml import gatekeeper_toml
from tenants.location_views import locations_context
from tenants.locations import MIRROR, LocationError, active_location, edit_in_place
from tenants.models import Membership, StorageLocation, TenantSigningKey
from tenants.services import MembershipError, change_role, create_tenant, remove_member
from tenants.signing import (
    RotationError,
    activate_next_key,
    prepare_next_key,
    trusted_public_keys,
    vendor_keys_toml,
)
from tenants.tokens import issue_agent_token


def _gatekeeper_check(tenant, signing_keys) -> dict | None:
    """What the settings page's gatekeeper check compares the gatekeeper's health
    with: the saved URL and id, and the kids it should trust. The check itself
    runs in the admin's browser (static/js/settings/gatekeeper-check.js): the
    portal never contacts a customer's gatekeeper."""
    if not tenant.gatekeeper_url:
        return None
    return {
        "url": tenant.gatekeeper_url,
        "id": tenant.gatekeeper_id,
        **_kids(signing_keys),
        # What the admin chose: the check warns when the gatekeeper reports otherwise.
        "bucket": tenant.bucket,
        "region": tenant.region,
    }


def _kids(signing_keys) -> dict:
    """The kids a gatekeeper of the tenant should trust, as the checks compare them."""
    def kids(status):
        return " ".join(k.kid for k in signing_keys if k.status == status)

    return {"active_kid": kids(TenantSigningKey.Status.ACTIVE), "next_kid": kids(TenantSigningKey.Status.NEXT),
            "previous_kids": kids(TenantSigningKey.Status.PREVIOUS)}


SECURITY_EVENTS_SHOWN = 50


def _settings_page(request, *, storage_form=None, token_form=None, new_token=None, rotation_error=None,
                   support_error=None, status=200, **extra):
    # A fresh tenant: a rejected storage form must not show (nor put into the
    # CSP) values that were not saved.
    tenant = tenant_for_admin(request.user)
    signing_keys = trusted_public_keys(tenant)
    context = {
        "tenant": tenant,
        "storage_form": storage_form or forms.StorageSettingsForm(instance=tenant),
        "token_form": token_form or forms.AgentTokenForm(),
        "tokens": agent_tokens_for_admin(request.user),
        "new_token": new_token,
        "signing_keys": signing_keys,
        "next_key": next((k for k in signing_keys if k.status == TenantSigningKey.Status.NEXT), None),
        "rotation_error": rotation_error,
        "vendor_keys_toml": vendor_keys_toml(tenant),
        "gatekeeper_check": _gatekeeper_check(tenant, signing_keys),
        "security_events": security_events_for_admin(request.user)[:SECURITY_EVENTS_SHOWN],
        **_support_access_context(request.user),
        "support_error": support_error,
        **_onboarding_context(request, tenant, signing_keys),
        **locations_context(request.user),
        **extra,
    }
    response = render(request, "tenants/settings.html", context, status=status)
    target = onboarding.target_for(tenant)
    # The verification writes a probe object to storage and reads it back; the
    # locations' "Connect" asks every location's gatekeeper for its health.
    others = tuple(loc.gatekeeper_origin for loc in context["locations"]
                   if loc.state != StorageLocation.State.RETIRED)
    # The verification follows the location being connected, when there is one.
    response[CSP_HEADER] = verification_policy(tenant.gatekeeper_origin, target.storage_origin if target.connected
                                               else "", idp_origin(tenant),
                                               other_gatekeepers=(target.gatekeeper_origin, *others))
    return response


def _onboarding_context(request, tenant, signing_keys) -> dict:
    """The onboarding checklist (templates/tenants/_onboarding.html) and what its
    steps need: the Launch stack link, the verification's endpoints."""
    return {
        "onboarding": onboarding.checklist(tenant),
        "launch_stack_url": onboarding.launch_stack_url(tenant, signing_keys, settings.DUALKEY_PORTAL_ORIGIN),
        "launch_stack_name": onboarding.stack_name_for(tenant),
        "onboarding_target": onboarding.target_for(tenant),
        # What the verification's health checks compare with (the target's own bucket and region).
        "onboarding_kids": _kids(signing_keys),
        # Set by a save of the storage settings: the page says "saved" only once verified.
        "saved_pending_verification": request.GET.get("saved") == "verify",
    }


SUPPORT_ACCESSES_SHOWN = 20


def _support_access_context(user) -> dict:
    """Vendor support's requests (newest first, their state now) and the approver
    keys made in admins' browsers, with the [approvers] block to paste."""
    now = timezone.now()
    keys = list(approver_keys_for_admin(user))
    return {
        "support_accesses": [{"access": a, "state": a.state(now), "approvers": [x["approver"] for x in a.approvals]}
                             for a in support_accesses_for_admin(user)[:SUPPORT_ACCESSES_SHOWN]],
        "approver_keys": keys,
        "approver_ids": " ".join(k.approver_id for k in keys),
        "approvers_toml": support_access.approvers_toml(tenant_for_admin(user)),
    }


render_settings_page = _settings_page  # for tenants/support_access_views.py


@login_required
@require_safe  # HEAD too: the gatekeeper check reads the portal's clock from its Date header
def settings_page(request):
    return _settings_page(request)


@login_required
@require_safe
def download_gatekeeper_toml(request):
    """A complete gatekeeper.toml for a self-hosted gatekeeper (tenants/gatekeeper_toml.py):
    the caller's own tenant only, for its admins (staff 403, anyone else 404)."""
    tenant = tenant_for_admin(request.user)
    text = gatekeeper_toml(tenant, trusted_public_keys(tenant), settings.DUALKEY_PORTAL_ORIGIN, timezone.now(),
                           request.user.get_username(), target=onboarding.target_for(tenant))
    response = HttpResponse(text, content_type="application/toml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="gatekeeper-{tenant.slug}.toml"'
    return response


@login_required
@require_POST
def update_storage(request):
    tenant = tenant_for_admin(request.user)
    before = events.watched_values(tenant)  # the form writes into the instance as it validates
    form = forms.StorageSettingsForm(request.POST, instance=tenant)
    if not form.is_valid():
        return _settings_page(request, storage_form=form, status=400)
    try:
        with transaction.atomic():
            # The active location first (refused if that would move its tickets' gatekeeper),
            # then the tenant, which mirrors it.
            edit_in_place(tenant, {name: form.cleaned_data[name] for name in MIRROR if name in form.cleaned_data})
            form.save()
            events.record(tenant, request.user, events.storage_changes(before, tenant))
            onboarding.storage_saved(tenant, request.user)
    except LocationError as refused:
        form.add_error(None, str(refused))
        return _settings_page(request, storage_form=form, status=400)
    target = onboarding.target_for(tenant)
    if target.connected and not target.connecting:
        # Never a green "saved" before the browser has verified the gatekeeper these
        # settings name: the page runs the verification and says which it is. (While
        # a new location is being connected, the verification is that one's.)
        return redirect(reverse("tenant-settings") + "?saved=verify#onboarding")
    messages.success(request, "Storage settings saved.")
    return redirect("tenant-settings")


@login_required
@require_POST
def create_token(request):
    tenant = tenant_for_admin(request.user)
    form = forms.AgentTokenForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, token_form=form, status=400)
    token, plaintext = issue_agent_token(tenant, form.cleaned_data["name"])
    # Rendered, not redirected: the plaintext must not travel through a URL or
    # the session, and this response is the only time it is shown.
    return _settings_page(request, new_token={"token": token, "plaintext": plaintext})


@login_required
@require_POST
def revoke_token(request, token_id):
    token = access_agent_token_for_admin(request.user, token_id)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("tenant-settings")


@login_required
@require_POST
def prepare_signing_key(request):
    """Rotation, step 1: publish a next key; grants are still signed with the active one."""
    tenant = tenant_for_admin(request.user)
    waiting = prepare_next_key(tenant)
    messages.success(
        request,
        f"Next key {waiting.kid} is published. Paste the [vendor_keys] block into your gatekeeper's "
        "configuration and restart it; switch once the check confirms the gatekeeper trusts it.",
    )
    return redirect(reverse("tenant-settings") + "#vendor-keys")


@login_required
@require_POST
def activate_signing_key(request):
    """Rotation, step 2: sign with the next key from now on."""
    tenant = tenant_for_admin(request.user)
    form = forms.ActivateKeyForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, rotation_error=form.errors["kid"][0], status=400)
    try:
        active = activate_next_key(tenant, form.cleaned_data["kid"])
    except RotationError as error:
        return _settings_page(request, rotation_error=str(error), status=400)
    messages.success(request, f"Grants are now signed with {active.kid}. The previous key stays trusted "
                              "until the grants it signed have expired (about five minutes).")
    return redirect(reverse("tenant-settings") + "#vendor-keys")


# --- members (tenant admins; staff 403: addresses and invitations are admin business)

def _members_page(request, *, invite_form=None, error=None, status=200):
    tenant = tenant_for_admin(request.user)
    now = timezone.now()
    pending = [(i, invitations.state_of(i, now=now)) for i in invitations_for_admin(request.user)
               .filter(accepted_at__isnull=True, revoked_at__isnull=True)]
    members = members_for_admin(request.user).order_by("user__username")
    context = {
        "tenant": tenant,
        "members": members,
        "mfa_users": users_with_mfa([m.user_id for m in members]),
        "invitations": [{"invitation": i, "state": state.value, "can_resend": state in RESENDABLE}
                        for i, state in pending],
        "invite_form": invite_form or forms.InviteMemberForm(),
        "roles": Membership.Role.choices,
        "error": error,
    }
    return render(request, "tenants/members.html", context, status=status)


@login_required
@require_GET
def members_page(request):
    return _members_page(request)


@login_required
@require_POST
def invite_member(request):
    tenant = tenant_for_admin(request.user)
    form = forms.InviteMemberForm(request.POST)
    if not form.is_valid():
        return _members_page(request, invite_form=form, status=400)
    invitation, sent = invitations.invite_member(tenant, form.cleaned_data["username"], form.cleaned_data["email"],
                                                 form.cleaned_data["role"], actor=request.user)
    _mail_outcome(request, sent, invitation)
    return redirect("tenant-members")


@login_required
@require_POST
def change_member_role(request, membership_id):
    membership = access_member_for_admin(request.user, membership_id)
    form = forms.RoleForm(request.POST)
    if not form.is_valid():
        return _members_page(request, error=form.errors["role"][0], status=400)
    try:
        change_role(membership, form.cleaned_data["role"], actor=request.user)
    except MembershipError as error:
        return _members_page(request, error=str(error), status=409)
    messages.success(request, f"{membership.user.get_username()} is now {membership.get_role_display().lower()}.")
    # Who made themselves staff can no longer see this page.
    return redirect("tenant-members" if membership.user_id != request.user.pk or membership.is_admin else "home")


@login_required
@require_POST
def remove_member_view(request, membership_id):
    membership = access_member_for_admin(request.user, membership_id)
    username = membership.user.get_username()
    try:
        remove_member(membership, actor=request.user)
    except MembershipError as error:
        return _members_page(request, error=str(error), status=409)
    messages.success(request, f"{username} is no longer a member.")
    return redirect("tenant-members" if membership.user_id != request.user.pk else "home")


@login_required
@require_POST
def resend_member_invitation(request, invitation_id):
    invitation = access_invitation_for_admin(request.user, invitation_id)
    try:
        sent = invitations.resend(invitation, actor=request.user)
    except invitations.InvitationError as error:
        return _members_page(request, error=str(error), status=409)
    _mail_outcome(request, sent, invitation)
    return redirect("tenant-members")


@login_required
@require_POST
def revoke_member_invitation(request, invitation_id):
    invitation = access_invitation_for_admin(request.user, invitation_id)
    try:
        invitations.revoke(invitation, actor=request.user)
    except invitations.InvitationError as error:
        return _members_page(request, error=str(error), status=409)
    messages.success(request, f"The invitation for {invitation.email} is revoked: its link no longer works.")
    return redirect("tenant-members")


# The op filter offers what an audit record's `op` can be (docs/protocol.md, section 9).
AUDIT_SEARCH_OPS = AUDIT_OPS


@login_required
@require_GET
def audit_page(request):
    """The audit log shell: filters and an empty table. The log itself is the
    customer's: the page's JS gets an audit grant and searches it at the tenant's
    gatekeeper, so no entry passes through the portal."""
    tenant = tenant_for_admin(request.user)
    context = {
        "tenant": tenant,
        "gatekeeper_url": tenant.gatekeeper_url if tenant.has_gatekeeper else "",
        "grant_url": reverse("api-audit-grant"),
        "ops": AUDIT_SEARCH_OPS,
        # For finding a person by the name the log shows, and a ticket by its number.
        "members": members_for_admin(request.user).order_by("user__username"),
        "agent_tokens": agent_tokens_for_admin(request.user),
        "tickets_url": reverse("api-tickets"),
    }
    return set_gatekeeper_csp(render(request, "tenants/audit.html", context), tenant,
                              active_location(tenant))


# --- vendor support ------------------------------------------------------------

@login_required
@require_GET
@support_required
def support_home(request):
    return render(request, "tenants/support_home.html", {"tenants": tenants_for_support(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
@support_required
def support_create_tenant(request):
    form = forms.TenantCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            tenant = create_tenant(**form.cleaned_data)
            onboarding.tenant_created(tenant, request.user)
            messages.success(request, f"Tenant {tenant.slug} created with its signing key.")
            return redirect("support-tenant", slug=tenant.slug)
        return render(request, "tenants/support_create.html", {"form": form}, status=400)
    return render(request, "tenants/support_create.html", {"form": form})


def _support_tenant_page(request, tenant, *, invite_form=None, status_form=None, invite_error=None, status=200):
    now = timezone.now()
    rows = [(i, invitations.state_of(i, now=now)) for i in tenant.invitations.filter(onboarding=True)]
    context = {
        "tenant": tenant,
        "members": tenant.memberships.select_related("user").order_by("user__username"),
        # States only: support sees where a tenant stands, not where its data is.
        "locations": locations_for_support(request.user, tenant),
        "has_admin": invitations.has_active_admin(tenant),
        "invitations": [{"invitation": i, "state": state.value, "can_resend": state in RESENDABLE,
                         "can_revoke": i.is_open} for i, state in rows],
        "invite_form": invite_form or forms.InviteAdminForm(),
        "invite_error": invite_error,
        "status_form": status_form or forms.TenantStatusForm(instance=tenant),
        "vendor_keys_toml": vendor_keys_toml(tenant),
        "onboarding_progress": onboarding.progress(tenant),
    }
    return render(request, "tenants/support_tenant.html", context, status=status)


RESENDABLE = (invitations.State.OPEN, invitations.State.EXPIRED)


@login_required
@require_GET
@support_required
def support_tenant(request, slug):
    return _support_tenant_page(request, access_tenant_for_support(request.user, slug))


def _mail_outcome(request, sent: bool, invitation) -> None:
    if sent:
        messages.success(request, f"Invitation mailed to {invitation.email}; it expires on "
                                  f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC.")
    else:
        messages.error(request, f"The invitation for {invitation.email} is saved, but the mail could not be "
                                "sent. Check the mail settings, then re-send it.")


@login_required
@require_POST
@support_required
def support_invite_admin(request, slug):
    """Onboarding only: the first admin gets a link by mail and chooses a password.
    Support sees neither the password nor the link."""
    tenant = access_tenant_for_support(request.user, slug)
    if invitations.has_active_admin(tenant):
        return _support_tenant_page(request, tenant, status=409, invite_error=(
            f"{tenant.name} has an admin: only its admins add members now."))
    form = forms.InviteAdminForm(request.POST)
    if not form.is_valid():
        return _support_tenant_page(request, tenant, invite_form=form, status=400)
    try:
        invitation, sent = invitations.invite_first_admin(
            tenant, form.cleaned_data["username"], form.cleaned_data["email"], actor=request.user)
    except invitations.InvitationError as error:  # an admin joined meanwhile
        return _support_tenant_page(request, tenant, invite_error=str(error), status=409)
    _mail_outcome(request, sent, invitation)
    return redirect("support-tenant", slug=tenant.slug)


@login_required
@require_POST
@support_required
def support_resend_invitation(request, slug, invitation_id):
    invitation = access_invitation_for_support(request.user, slug, invitation_id)
    try:
        sent = invitations.resend(invitation, actor=request.user)
    except invitations.InvitationError as error:
        return _support_tenant_page(request, invitation.tenant, invite_error=str(error), status=409)
    _mail_outcome(request, sent, invitation)
    return redirect("support-tenant", slug=slug)


@login_required
@require_POST
@support_required
def support_revoke_invitation(request, slug, invitation_id):
    invitation = access_invitation_for_support(request.user, slug, invitation_id)
    try:
        invitations.revoke(invitation, actor=request.user)
    except invitations.InvitationError as error:
        return _support_tenant_page(request, invitation.tenant, invite_error=str(error), status=409)
    messages.success(request, f"The invitation for {invitation.email} is revoked: its link no longer works.")
    return redirect("support-tenant", slug=slug)


# --- accepting an invitation (anyone holding the link) -------------------------

# What the page says for a link that cannot be used, and its status.
LINK_PROBLEMS = {
    "unknown": (404, "This invitation link is not valid",
                "Check that you opened the whole link from the mail, or ask for a new invitation."),
    "used": (410, "This invitation was already used",
             "Its account exists: log in with the password chosen then."),
    "revoked": (410, "This invitation was revoked", "Ask whoever invited you for a new one."),
    "expired": (410, "This invitation has expired", "Ask whoever invited you to send it again."),
    "void": (410, "This invitation no longer applies",
             "The tenant is not taking members through it any more: ask its admin to invite you."),
    "signed_in": (409, "You are signed in", "Log out first: an invitation makes a new account."),
    "sso_required": (409, "This organisation signs in with single sign-on",
                     "Use “Sign in with single sign-on” on the invitation's page."),
    "other_account": (409, "This invitation is for another account",
                      "Log out, then sign in with the account it names and open the link again."),
}


def _link_problem(request, problem: str, text: str | None = None):
    status, title, default_text = LINK_PROBLEMS[problem]
    return render(request, "tenants/invitation_problem.html",
                  {"title": title, "text": text or default_text}, status=status)


@require_http_methods(["GET", "POST"])
def accept_invitation(request):
    """The link's page: choose a password (Django's validators), then signed in; or,
    for an admin's invitation of an existing account, sign in and confirm.
    The token travels in the query string of the link, then in the form."""
    token = (request.POST if request.method == "POST" else request.GET).get("token", "")
    invitation = invitations.find(token)
    if invitation is None:
        return _link_problem(request, "signed_in" if request.user.is_authenticated else "unknown")
    state = invitations.state_of(invitation, now=timezone.now())
    if state is not invitations.State.OPEN:
        return _link_problem(request, state.value)
    if sso_required_for(invitation.tenant):
        # No password for a tenant that signs in with its IdP: its SSO makes the account,
        # with this invitation's role (accounts/sso.py).
        if request.method == "POST":
            return _link_problem(request, "sso_required")
        return render(request, "tenants/invitation_sso.html", {"invitation": invitation})
    account = None if invitation.onboarding else invitations.account_for(invitation.username)
    if account is not None:
        return _join_existing_account(request, invitation, account, token)
    if request.user.is_authenticated:
        return _link_problem(request, "signed_in")
    account = get_user_model()(username=invitation.username, email=invitation.email)
    form = SetPasswordForm(account, request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                user = invitations.accept(invitation, form)
            except invitations.InvitationError as error:
                text = str(error)
                return _link_problem(request, text) if text in LINK_PROBLEMS else _link_problem(
                    request, "void", text)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to {invitation.tenant.name}, {user.get_username()}.")
            return redirect("home")
        status = 400
    return render(request, "tenants/invitation_accept.html",
                  {"invitation": invitation, "form": form, "token": token}, status=status)


def _join_existing_account(request, invitation, account, token):
    """An admin's invitation for an account that exists: its owner signs in (the
    login page comes back here), then confirms; no new password."""
    if request.user.is_authenticated and request.user.pk != account.pk:
        return _link_problem(request, "other_account")
    if request.user.is_authenticated and request.method == "POST":
        try:
            invitations.join(invitation, request.user)
        except invitations.InvitationError as failure:
            return _link_problem(request, str(failure)) if str(failure) in LINK_PROBLEMS else _link_problem(
                request, "void", str(failure))
        messages.success(request, f"Welcome to {invitation.tenant.name}, {request.user.get_username()}.")
        return redirect("home")
    here = f"{reverse('invitation-accept')}?{urlencode({'token': token})}"
    return render(request, "tenants/invitation_join.html", {
        "invitation": invitation, "token": token, "login_url": f"{reverse('login')}?{urlencode({'next': here})}"})


@login_required
@require_POST
@support_required
def support_set_status(request, slug):
    tenant = access_tenant_for_support(request.user, slug)
    old_status = tenant.status
    form = forms.TenantStatusForm(request.POST, instance=tenant)
    if not form.is_valid():
        return _support_tenant_page(request, tenant, status_form=form, status=400)
    with transaction.atomic():
        form.save()
        onboarding.status_changed(tenant, old_status, request.user)
    messages.success(request, f"{tenant.slug} is now {tenant.get_status_display().lower()}.")
    return redirect("support-tenant", slug=tenant.slug)
