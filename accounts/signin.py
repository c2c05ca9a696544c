"""Signing in, in one or two steps.

Step one is Django's login form (`/accounts/login/`, the fields `username` and
`password`, behind django-axes). For an account with a second factor it does not
sign in: it remembers who passed (the account's id, its auth backend, where to go
next) in the session and sends the visitor to `/accounts/mfa/`, where a TOTP code,
a recovery code or a passkey finishes it. Nothing of the account is reachable
before then: the session has no user until `complete` calls Django's `login`.
A passkey alone (discoverable, user-verified) also signs in, from the login page.
"""

from __future__ import annotations

import time

from django.contrib.auth import login
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect

from accounts import policy
from portal.accounts import LoginForm

PENDING = "dk_mfa_pending"
PENDING_SECONDS = 300
MAX_TRIES = 5
MFA_DONE = "dk_mfa"


def begin_second_step(request, user, next_url: str, break_glass: bool) -> None:
    request.session[PENDING] = {"user": user.pk, "backend": user.backend, "next": next_url,
                                "at": int(time.time()), "tries": 0, "break_glass": break_glass}


def pending(request) -> dict | None:
    """The half-finished sign-in of this session, or None (none, or too old)."""
    state = request.session.get(PENDING)
    if not isinstance(state, dict):
        return None
    if time.time() - state.get("at", 0) > PENDING_SECONDS:
        request.session.pop(PENDING, None)
        return None
    return state


def pending_user(request):
    from django.contrib.auth import get_user_model

    state = pending(request)
    if state is None:
        return None, None
    return get_user_model().objects.filter(pk=state["user"], is_active=True).first(), state


def count_failure(request, state: dict, username: str = "") -> bool:
    """One more wrong code; past MAX_TRIES the whole sign-in starts again. Returns whether it may go on.

    Each wrong code is also a failed sign-in for django-axes (by account and by
    address), so someone who has the password cannot guess codes without limit: past
    AXES_FAILURE_LIMIT the password step itself is paused."""
    if username:
        user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)
    state["tries"] = state.get("tries", 0) + 1
    if state["tries"] >= MAX_TRIES:
        request.session.pop(PENDING, None)
        return False
    request.session[PENDING] = state
    return True


def complete(request, user, *, backend: str, next_url: str, break_glass: bool, second_factor: bool):
    """Sign in for real. A break-glass sign-in is told to the tenant's admins."""
    request.session.pop(PENDING, None)
    login(request, user, backend=backend)
    request.session[MFA_DONE] = second_factor
    if break_glass:
        from tenants import events
        from tenants.models import SecurityEvent

        membership = policy.live_membership(user)
        events.record(membership.tenant, user, [events.event(
            SecurityEvent.Kind.BREAK_GLASS, subject=user.get_username())])
    return redirect(next_url)


class SignInView(auth_views.LoginView):
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        try:
            break_glass = policy.local_sign_in(user)
        except policy.Refused as refusal:
            form.add_error(None, str(refusal))
            return self.render_to_response(self.get_context_data(form=form, sso_refused=True), status=403)
        if policy.has_mfa(user):
            begin_second_step(self.request, user, self.get_success_url(), break_glass)
            return redirect("mfa-verify")
        return super().form_valid(form)
