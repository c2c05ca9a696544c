"""Session limits: an idle timeout, an absolute timeout, and "sign out everywhere".

Every session records, when it signs in, the time and the account's session
epoch (`AccountState.session_epoch`). The middleware ends a session that was idle
longer than DUALKEY_SESSION_IDLE_SECONDS, that began more than
DUALKEY_SESSION_ABSOLUTE_SECONDS ago, or whose epoch is older than the account's:
"sign out everywhere" bumps the epoch, which ends every session of the account at
its next request, whatever the session backend. (A password change ends the other
sessions by itself: Django ties each session to the password hash.)

Times are plain numbers (seconds since the epoch) and the checks take `now`, so
tests move a session back in time instead of patching the clock.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.db.models import F
from django.dispatch import receiver

log = logging.getLogger(__name__)

SIGNED_IN_AT, SEEN_AT, EPOCH = "dk_signed_in_at", "dk_seen_at", "dk_epoch"
# Writing the session on every request costs a write each; to the minute is enough.
SEEN_RESOLUTION = 60


def epoch_of(user) -> int:
    from accounts.models import AccountState

    return AccountState.objects.filter(user_id=user.pk).values_list("session_epoch", flat=True).first() or 0


@receiver(user_logged_in)
def _stamp(sender, request, user, **kwargs):
    if request is None or not hasattr(request, "session"):
        return
    now = int(time.time())
    request.session[SIGNED_IN_AT] = now
    request.session[SEEN_AT] = now
    request.session[EPOCH] = epoch_of(user)


def expiry_reason(session, epoch: int, *, now: float) -> str | None:
    """Why this session must end now, or None."""
    signed_in, seen = session.get(SIGNED_IN_AT), session.get(SEEN_AT)
    if not isinstance(signed_in, int) or not isinstance(seen, int):
        return "unstamped"
    if now - signed_in > settings.DUALKEY_SESSION_ABSOLUTE_SECONDS:
        return "absolute"
    if now - seen > settings.DUALKEY_SESSION_IDLE_SECONDS:
        return "idle"
    if session.get(EPOCH) != epoch:
        return "signed_out_everywhere"
    return None


def touch(session, *, now: float) -> None:
    if now - session.get(SEEN_AT, 0) >= SEEN_RESOLUTION:
        session[SEEN_AT] = int(now)


def end_everywhere(user) -> int:
    """End every session of the account (this one too, at its next request). Returns the new epoch."""
    from accounts.models import AccountState

    state, _ = AccountState.objects.get_or_create(user=user)
    AccountState.objects.filter(pk=state.pk).update(session_epoch=F("session_epoch") + 1)
    state.refresh_from_db()
    return state.session_epoch


def enforce(request, *, now: float | None = None) -> str | None:
    """Ends the request's session if it has expired; returns why, or None."""
    if not request.user.is_authenticated:
        return None
    now = time.time() if now is None else now
    reason = expiry_reason(request.session, epoch_of(request.user), now=now)
    if reason:
        log.info("session ended (%s)", reason)
        logout(request)
        return reason
    touch(request.session, now=now)
    return None
