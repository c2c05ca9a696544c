"""Sign-in throttling, with django-axes: what a locked-out visitor is told.

Axes counts failed sign-ins by account and by address (settings.AXES_*) and,
past the limit, refuses even the right password until the cool-off has passed.
The answer is the same whether or not the account exists, and names neither
the account nor the address, so it tells an attacker nothing they did not send.
"""

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator
from django.shortcuts import render


class LoginForm(AuthenticationForm):
    """Django's form, with its username length enforced: Django sets the field's
    max_length after the field is built, so no validator checks it, and a longer
    username reached authenticate() and axes' varchar(255) (a 500 on PostgreSQL)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length))


def locked_out(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: one page (429) for every kind of client, where axes'
    own answer to XMLHttpRequest is JSON naming the username with a wildcard CORS header."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "registration/locked_out.html", {"cooloff_minutes": minutes},
                  status=settings.AXES_HTTP_RESPONSE_CODE)
