"""Password change and reset, with Django's own views, forms and token generator.

What is ours: the reset link is built from DUALKEY_PORTAL_ORIGIN (never from the
request's Host header, which anyone can set), the answer to a reset request is the
same whether or not the address has an account, and requests are rate-limited per
address and per client so the form can be used neither to flood an inbox nor as an
oracle (a throttled request gets the same "check your mail" page, it just sends nothing).
A new password, changed or set by a reset link, is a security event of the account's
tenant (its admins get a mail): a stolen session or mailbox used to take an account over
is heard of.
"""

from __future__ import annotations

import hashlib
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.core.validators import MaxLengthValidator
from django.urls import reverse_lazy

from accounts import policy
from tenants import events
from tenants.models import SecurityEvent

log = logging.getLogger(__name__)


def record_new_password(user, kind: SecurityEvent.Kind) -> None:
    """The event in the tenant the account belongs to (none for vendor support)."""
    membership = policy.live_membership(user)
    if membership is not None:
        events.record(membership.tenant, user, [events.event(kind, subject=user.get_username())])


def _bucket(kind: str, value: str) -> str:
    # Keys hold a digest, never the address itself.
    return "pwreset:" + kind + ":" + hashlib.sha256(value.encode()).hexdigest()[:32]


def allow_reset(email: str, address: str) -> bool:
    """At most DUALKEY_RESET_LIMIT requests an hour per email address and per client address."""
    limit, window = settings.DUALKEY_RESET_LIMIT, settings.DUALKEY_RESET_WINDOW_SECONDS
    allowed = True
    for key in (_bucket("email", email.strip().lower()), _bucket("ip", address or "")):
        cache.add(key, 0, window)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, window)
            count = 1
        if count > limit:
            allowed = False
    return allowed


class ResetRequestForm(auth_forms.PasswordResetForm):
    """Django's form, with the email field's length enforced and the link's scheme
    taken from the configured origin (the domain comes from `domain_override`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].validators.append(MaxLengthValidator(254))
        self.fields["email"].widget.attrs["maxlength"] = 254

    def save(self, *args, **kwargs):
        origin = urlsplit(settings.DUALKEY_PORTAL_ORIGIN)
        kwargs["domain_override"] = origin.netloc
        kwargs["use_https"] = origin.scheme == "https"
        return super().save(*args, **kwargs)


class ResetRequestView(auth_views.PasswordResetView):
    form_class = ResetRequestForm
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")

    def form_valid(self, form):
        if not allow_reset(form.cleaned_data["email"], self.request.META.get("REMOTE_ADDR", "")):
            # The same answer as a sent mail: a throttled request must not reveal anything.
            log.warning("password reset request throttled")
            return auth_views.HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form), status=400)


class ResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")
    # Sessions of the account were ended by the new password hash; sign in again.
    post_reset_login = False

    def render_to_response(self, context, **kwargs):
        # A used, expired or mangled link: the page says so, with a 404.
        if not context.get("validlink"):
            kwargs["status"] = 404
        response = super().render_to_response(context, **kwargs)
        if response.status_code >= 400:
            # Django's request log would name the path, and with it the token: log without it.
            response._has_been_logged = True
            log.warning("password reset link refused (%s)", response.status_code)
        return response

    def form_valid(self, form):
        response = super().form_valid(form)
        record_new_password(form.user, SecurityEvent.Kind.PASSWORD_RESET)
        return response

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form), status=400)


class ChangeView(auth_views.PasswordChangeView):
    """Django's view: checks the old password, applies the validators, and keeps only
    this session (update_session_auth_hash); every other session of the account ends."""
    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("password_change_done")

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def form_valid(self, form):
        response = super().form_valid(form)
        record_new_password(form.user, SecurityEvent.Kind.PASSWORD_CHANGED)
        return response
