"""Second factors: TOTP (pyotp), passkeys (py_webauthn) and recovery codes.

TOTP secrets are sealed at rest (accounts/sealed.py); a code is accepted once
(the last time step used is kept) within one step of the clock either way.
Recovery codes are kept as SHA-256 digests (they are random, 50 bits each) and
each works once. Passkeys: the relying party is the configured portal origin
(DUALKEY_PORTAL_ORIGIN) and its host, never the request's Host header; a
challenge lives in the session, is used once, and expires.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from urllib.parse import urlsplit

import pyotp
from cryptography.exceptions import InvalidTag
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from accounts.models import Authenticator
from accounts.sealed import seal, unseal

log = logging.getLogger(__name__)
TOTP_PURPOSE = "totp-secret"
RECOVERY_CODES = 10
CHALLENGE_SECONDS = 300
CHALLENGE_KEY = "dk_webauthn_challenge"


class MFAError(Exception):
    """A code or credential that does not verify; the message is safe to show."""


# --- TOTP ---------------------------------------------------------------------------

def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, user) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.get_username(), issuer_name="Dualkey")


def _counter(secret: str, code: str, now: float) -> int | None:
    """The time step `code` is valid for (now, one before, one after), or None."""
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = int(now) // totp.interval
    for candidate in (step, step - 1, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def _clean_code(code: str) -> str:
    return "".join(str(code).split())[:64]


def confirm_totp(user, secret: str, code: str, *, now: float | None = None) -> Authenticator:
    """Enrolment: the first code proves the app holds the secret."""
    counter = _counter(secret, _clean_code(code), time.time() if now is None else now)
    if counter is None:
        raise MFAError("That code does not match. Check the app's clock and try the current code.")
    with transaction.atomic():
        Authenticator.objects.filter(user=user, kind=Authenticator.Kind.TOTP).delete()
        row = Authenticator(user=user, kind=Authenticator.Kind.TOTP, name="Authenticator app",
                            last_counter=counter, created_at=timezone.now())
        row.save()
        row.secret_sealed = seal(secret.encode(), purpose=TOTP_PURPOSE, owner=row.pk)
        row.save(update_fields=["secret_sealed"])
    return row


def verify_totp(user, code: str, *, now: float | None = None) -> bool:
    code = _clean_code(code)
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return False
    with transaction.atomic():
        row = Authenticator.objects.select_for_update().filter(user=user, kind=Authenticator.Kind.TOTP).first()
        if row is None:
            return False
        try:
            secret = unseal(row.secret_sealed, purpose=TOTP_PURPOSE, owner=row.pk).decode()
        except (InvalidTag, TypeError, ValueError):  # sealed under another master key
            log.warning("TOTP secret of authenticator %s does not open", row.pk)
            return False
        counter = _counter(secret, code, time.time() if now is None else now)
        if counter is None or counter <= row.last_counter:  # wrong, or replayed
            return False
        row.last_counter, row.last_used_at = counter, timezone.now()
        row.save(update_fields=["last_counter", "last_used_at"])
    return True


# --- recovery codes ---------------------------------------------------------------------

def _digest(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").lower().encode()).hexdigest()


def new_recovery_codes(user) -> list[str]:
    """Ten fresh codes (the old ones stop working); shown once, kept as digests."""
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    with transaction.atomic():
        Authenticator.objects.filter(user=user, kind=Authenticator.Kind.RECOVERY).delete()
        Authenticator.objects.create(user=user, kind=Authenticator.Kind.RECOVERY, name="Recovery codes",
                                     code_hashes=[_digest(c) for c in codes], created_at=timezone.now())
    return codes


def use_recovery_code(user, code: str) -> bool:
    digest = _digest(_clean_code(code))
    with transaction.atomic():
        row = Authenticator.objects.select_for_update().filter(user=user, kind=Authenticator.Kind.RECOVERY).first()
        if row is None:
            return False
        match = next((h for h in row.code_hashes if hmac.compare_digest(h, digest)), None)
        if match is None:
            return False
        row.code_hashes = [h for h in row.code_hashes if h != match]
        row.last_used_at = timezone.now()
        row.save(update_fields=["code_hashes", "last_used_at"])
    return True


def recovery_codes_left(user) -> int | None:
    row = Authenticator.objects.filter(user=user, kind=Authenticator.Kind.RECOVERY).first()
    return None if row is None else len(row.code_hashes)


def verify_code(user, code: str) -> bool:
    """A TOTP code or else a recovery code."""
    return verify_totp(user, code) or use_recovery_code(user, code)


# --- passkeys (WebAuthn) -------------------------------------------------------------------

def relying_party() -> tuple[str, str]:
    """(rp id, expected origin), from the configured portal origin."""
    origin = settings.DUALKEY_PORTAL_ORIGIN
    return urlsplit(origin).hostname, origin


def _remember_challenge(session, purpose: str, challenge: bytes) -> None:
    session[CHALLENGE_KEY] = {"purpose": purpose, "challenge": bytes_to_base64url(challenge), "at": int(time.time())}


def _take_challenge(session, purpose: str) -> bytes:
    """The session's challenge for `purpose`, used up now."""
    stored = session.pop(CHALLENGE_KEY, None)
    if not isinstance(stored, dict) or stored.get("purpose") != purpose:
        raise MFAError("Start again: no passkey request is waiting.")
    if time.time() - stored.get("at", 0) > CHALLENGE_SECONDS:
        raise MFAError("The passkey request expired: start again.")
    return base64url_to_bytes(stored["challenge"])


def _user_handle(user) -> bytes:
    # Stable, opaque, not the username: HMAC of the account's id under the secret key.
    return hmac.new(settings.SECRET_KEY.encode(), f"webauthn-user:{user.pk}".encode(), hashlib.sha256).digest()


def registration_options(user, session) -> str:
    rp_id, _ = relying_party()
    options = generate_registration_options(
        rp_id=rp_id, rp_name="Dualkey", user_name=user.get_username(),
        user_display_name=user.get_full_name() or user.get_username(), user_id=_user_handle(user),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(a.credential_id))
                             for a in user.authenticators.filter(kind=Authenticator.Kind.PASSKEY)],
    )
    _remember_challenge(session, f"register:{user.pk}", options.challenge)
    return options_to_json(options)


def _credential(body: bytes | str) -> dict:
    try:
        credential = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MFAError("The passkey answer is not JSON.") from None
    if not isinstance(credential, dict) or not isinstance(credential.get("id"), str) or len(credential["id"]) > 255:
        raise MFAError("The passkey answer is malformed.")
    return credential


def register_passkey(user, session, body: bytes | str, name: str = "") -> Authenticator:
    credential = _credential(body)
    challenge = _take_challenge(session, f"register:{user.pk}")
    rp_id, origin = relying_party()
    try:
        verified = verify_registration_response(credential=credential, expected_challenge=challenge,
                                                expected_rp_id=rp_id, expected_origin=origin)
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise MFAError(f"The passkey could not be registered ({type(error).__name__}).") from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if Authenticator.objects.filter(credential_id=credential_id).exists():
        raise MFAError("This passkey is registered already.")
    return Authenticator.objects.create(
        user=user, kind=Authenticator.Kind.PASSKEY, name=(name or "Passkey")[:100], credential_id=credential_id,
        public_key=bytes_to_base64url(verified.credential_public_key), sign_count=verified.sign_count,
        created_at=timezone.now())


def authentication_options(session, user=None) -> str:
    """For `user`'s passkeys (the second step of sign-in), or for any discoverable
    passkey (sign-in with a passkey alone) when `user` is None."""
    rp_id, _ = relying_party()
    allow = None
    if user is not None:
        allow = [PublicKeyCredentialDescriptor(id=base64url_to_bytes(a.credential_id))
                 for a in user.authenticators.filter(kind=Authenticator.Kind.PASSKEY)]
    options = generate_authentication_options(
        rp_id=rp_id, allow_credentials=allow,
        user_verification=UserVerificationRequirement.PREFERRED if user else UserVerificationRequirement.REQUIRED)
    _remember_challenge(session, f"authenticate:{user.pk if user else ''}", options.challenge)
    return options_to_json(options)


def authenticate_passkey(session, body: bytes | str, user=None):
    """The account the passkey belongs to (it must be `user`'s, if given)."""
    credential = _credential(body)
    challenge = _take_challenge(session, f"authenticate:{user.pk if user else ''}")
    rows = Authenticator.objects.select_related("user").filter(kind=Authenticator.Kind.PASSKEY,
                                                               credential_id=credential["id"])
    if user is not None:
        rows = rows.filter(user=user)
    row = rows.first()
    if row is None or not row.user.is_active:
        raise MFAError("This passkey is not registered here.")
    rp_id, origin = relying_party()
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id, expected_origin=origin,
            credential_public_key=base64url_to_bytes(row.public_key), credential_current_sign_count=row.sign_count,
            require_user_verification=user is None)
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise MFAError(f"The passkey did not verify ({type(error).__name__}).") from None
    Authenticator.objects.filter(pk=row.pk).update(sign_count=verified.new_sign_count, last_used_at=timezone.now())
    return row.user
