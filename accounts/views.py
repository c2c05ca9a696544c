"""Pages for one's own sign-in (/accounts/mfa/, /accounts/security/, sign out
everywhere) and, for tenant admins, the tenant's sign-in settings and resetting a
member's MFA. The JSON endpoints serve static/js/accounts/passkeys.js."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import mfa, policy, sessions, signin, sso
from accounts.forms import CodeForm, SignInPolicyForm, SSOStartForm
from accounts.models import Authenticator, SignInPolicy
from tenants import events
from tenants.access import access_member_for_admin, tenant_for_admin
from tenants.models import SecurityEvent

log = logging.getLogger(__name__)
TOTP_SETUP = "dk_totp_setup"
MAX_JSON = 16 * 1024


def _json_error(message: str, status: int = 400):
    return JsonResponse({"error": message}, status=status)


def _body(request):
    if len(request.body) > MAX_JSON:
        raise mfa.MFAError("The passkey answer is too large.")
    return request.body


# --- the second step of signing in -------------------------------------------------

@require_http_methods(["GET", "POST"])
def mfa_verify(request):
    user, state = signin.pending_user(request)
    if user is None:
        messages.info(request, "Sign in first.")
        return redirect("login")
    form = CodeForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid() and mfa.verify_code(user, form.cleaned_data["code"]):
            return signin.complete(request, user, backend=state["backend"], next_url=state["next"],
                                   break_glass=state["break_glass"], second_factor=True)
        if not signin.count_failure(request, state, user.get_username()):
            messages.error(request, "Too many wrong codes: sign in again.")
            return redirect("login")
        if form.is_valid():
            form.add_error("code", "That code is not valid (or was used already).")
        status = 400
    context = {"form": form, "has_totp": user.authenticators.filter(kind=Authenticator.Kind.TOTP).exists(),
               "has_passkey": user.authenticators.filter(kind=Authenticator.Kind.PASSKEY).exists()}
    return render(request, "accounts/mfa_verify.html", context, status=status)


@require_POST
def passkey_sign_in_options(request):
    """Options for navigator.credentials.get: the pending account's passkeys in the
    second step, or any discoverable passkey on the login page."""
    user, _ = signin.pending_user(request)
    if user is None and request.user.is_authenticated:
        return _json_error("Signed in already.", 409)
    return JsonResponse({"options": mfa.authentication_options(request.session, user)})


@require_POST
def passkey_sign_in(request):
    user, state = signin.pending_user(request)
    if user is None and request.user.is_authenticated:
        return _json_error("Signed in already.", 409)
    try:
        owner = mfa.authenticate_passkey(request.session, _body(request), user)
    except mfa.MFAError as error:
        if state is not None:
            signin.count_failure(request, state, user.get_username())
        return _json_error(str(error))
    if state is not None:
        response = signin.complete(request, owner, backend=state["backend"], next_url=state["next"],
                                   break_glass=state["break_glass"], second_factor=True)
        return JsonResponse({"next": response["Location"]})
    try:
        break_glass = policy.local_sign_in(owner)
    except policy.Refused as refusal:
        return _json_error(str(refusal), 403)
    response = signin.complete(request, owner, backend="django.contrib.auth.backends.ModelBackend",
                               next_url="home", break_glass=break_glass, second_factor=True)
    return JsonResponse({"next": response["Location"]})


# --- single sign-on -------------------------------------------------------------------------

def _sso_page(request, form=None, error=None, status=200):
    return render(request, "accounts/sso_start.html", {"form": form or SSOStartForm(), "error": error},
                  status=status)


@require_http_methods(["GET", "POST"])
def sso_start(request):
    """Which tenant's IdP: by work address (its domain) or by the tenant's slug."""
    if request.method == "GET":
        return _sso_page(request)
    form = SSOStartForm(request.POST)
    if not form.is_valid():
        return _sso_page(request, form, status=400)
    found = sso.find_policy(form.cleaned_data["identifier"])
    if found is None:
        return _sso_page(request, form, status=400,
                         error="No single sign-on is set up for that address or organisation.")
    try:
        location = sso.begin(request, found)["Location"]
    except sso.SSOError as error:
        return _sso_page(request, form, error=str(error), status=502)
    # A page that goes on to the IdP, not a redirect: the form's CSP (form-action 'self')
    # would stop a form submission redirected to another origin.
    return render(request, "accounts/sso_continue.html", {"location": location})


@require_GET
def sso_callback(request):
    try:
        user, found = sso.finish(request)
    except sso.SSOError as error:
        return _sso_page(request, error=str(error), status=400)
    response = signin.complete(request, user, backend="django.contrib.auth.backends.ModelBackend",
                               next_url="home", break_glass=False, second_factor=False)
    request.session[policy.SSO_SESSION] = True
    return response


# --- one's own security page -------------------------------------------------------------

def _security_page(request, *, new_codes=None, totp_form=None, totp_setup=None, error=None, status=200):
    user = request.user
    context = {
        "authenticators": user.authenticators.exclude(kind=Authenticator.Kind.RECOVERY),
        "recovery_left": mfa.recovery_codes_left(user),
        "has_mfa": policy.has_mfa(user),
        "must_enrol": policy.must_enrol(request),
        "new_codes": new_codes,
        "totp_setup": totp_setup,
        "totp_form": totp_form or CodeForm(),
        "error": error,
    }
    return render(request, "accounts/security.html", context, status=status)


def _first_codes(user):
    """Recovery codes come with the first second factor."""
    return mfa.new_recovery_codes(user) if mfa.recovery_codes_left(user) is None else None


@login_required
@require_GET
def security_page(request):
    # Recovery codes made with a first passkey are shown here, once.
    return _security_page(request, new_codes=request.session.pop("dk_new_codes", None))


@login_required
@require_http_methods(["GET", "POST"])
def totp_enrol(request):
    """GET: a new secret to put into an authenticator app. POST: its first code."""
    if request.method == "GET":
        secret = mfa.new_totp_secret()
        request.session[TOTP_SETUP] = secret
        return _security_page(request, totp_setup={"secret": secret, "uri": mfa.totp_uri(secret, request.user)})
    secret = request.session.get(TOTP_SETUP)
    form = CodeForm(request.POST)
    if not isinstance(secret, str):
        return _security_page(request, error="Start the authenticator app setup again.", status=409)
    setup = {"secret": secret, "uri": mfa.totp_uri(secret, request.user)}
    if not form.is_valid():
        return _security_page(request, totp_form=form, totp_setup=setup, status=400)
    try:
        mfa.confirm_totp(request.user, secret, form.cleaned_data["code"])
    except mfa.MFAError as error:
        form.add_error("code", str(error))
        return _security_page(request, totp_form=form, totp_setup=setup, status=400)
    request.session.pop(TOTP_SETUP, None)
    messages.success(request, "Authenticator app added: sign-in now asks for its code.")
    return _security_page(request, new_codes=_first_codes(request.user))


@login_required
@require_POST
def passkey_register_options(request):
    return JsonResponse({"options": mfa.registration_options(request.user, request.session)})


@login_required
@require_POST
def passkey_register(request):
    try:
        mfa.register_passkey(request.user, request.session, _body(request), request.GET.get("name", "")[:100])
    except mfa.MFAError as error:
        return _json_error(str(error))
    codes = _first_codes(request.user)
    if codes:  # shown once, on the page the script goes to next
        request.session["dk_new_codes"] = codes
    return JsonResponse({"next": "/accounts/security/?added=passkey"})


@login_required
@require_POST
def remove_authenticator(request, authenticator_id):
    deleted, _ = request.user.authenticators.filter(id=authenticator_id).exclude(
        kind=Authenticator.Kind.RECOVERY).delete()
    if not deleted:
        return _security_page(request, error="No such second factor.", status=404)
    if not policy.has_mfa(request.user):
        request.user.authenticators.filter(kind=Authenticator.Kind.RECOVERY).delete()
    messages.success(request, "Second factor removed.")
    return redirect("account-security")


@login_required
@require_POST
def regenerate_recovery_codes(request):
    if not policy.has_mfa(request.user):
        return _security_page(request, error="Add an authenticator app or a passkey first.", status=409)
    return _security_page(request, new_codes=mfa.new_recovery_codes(request.user))


@login_required
@require_POST
def sign_out_everywhere(request):
    user = request.user
    sessions.end_everywhere(user)
    membership = policy.live_membership(user)
    if membership is not None:
        events.record(membership.tenant, user, [events.event(SecurityEvent.Kind.SESSIONS_ENDED,
                                                             subject=user.get_username())])
    else:
        log.info("every session of account %s ended by its owner", user.pk)
    logout(request)
    messages.success(request, "You are signed out on every device.")
    return redirect("login")


# --- tenant admins ------------------------------------------------------------------------

def _sign_in_settings_page(request, form=None, status=200):
    tenant = tenant_for_admin(request.user)
    current = policy.policy_of(tenant)
    context = {"tenant": tenant, "form": form or SignInPolicyForm(instance=current),
               "has_secret": bool(current.client_secret_sealed)}
    return render(request, "accounts/sign_in_settings.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def sign_in_settings(request):
    tenant = tenant_for_admin(request.user)
    if request.method == "GET":
        return _sign_in_settings_page(request)
    current = SignInPolicy.objects.filter(tenant=tenant).first() or SignInPolicy(tenant=tenant)
    before = SignInPolicyForm.describe(current)
    form = SignInPolicyForm(request.POST, instance=current)
    if form.is_valid() and form.cleaned_data["mfa_required"] and not policy.has_mfa(request.user):
        # Or the admin would be held to enrolment by the very setting they just saved.
        form.add_error("mfa_required", "Add a second factor to your own account first (Security).")
    if not form.is_valid():
        return _sign_in_settings_page(request, form, status=400)
    with transaction.atomic():
        saved = form.save(commit=False)
        saved.updated_at = timezone.now()
        saved.save()
        form.store_secret(saved)
        after = SignInPolicyForm.describe(saved)
        if after != before or form.cleaned_data.get("client_secret"):
            events.record(tenant, request.user, [events.event(SecurityEvent.Kind.SIGN_IN_POLICY, old=before,
                                                              new=after)])
    messages.success(request, "Sign-in settings saved.")
    return redirect("tenant-sign-in")


@login_required
@require_POST
def reset_member_mfa(request, membership_id):
    membership = access_member_for_admin(request.user, membership_id)
    member = membership.user
    with transaction.atomic():
        removed, _ = member.authenticators.all().delete()
        sessions.end_everywhere(member)
        events.record(membership.tenant, request.user, [events.event(SecurityEvent.Kind.MFA_RESET,
                                                                     subject=member.get_username())])
    messages.success(request, f"{member.get_username()}'s second factors are removed and their sessions ended"
                              + ("." if removed else " (there were none)."))
    return redirect("tenant-members")
