"""Validators for what a tenant's settings put into grants and the CSP header.

Origins end up inside a Content-Security-Policy header, so anything beyond
scheme://host[:port] (spaces, semicolons, quotes, paths) is refused outright.
"""

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Characters that are allowed in a host[:port] and cannot break a header value.
_NETLOC_RE = re.compile(r"\A[A-Za-z0-9.\-\[\]:]+\Z")

validate_slug = RegexValidator(
    r"\A[a-z0-9][a-z0-9-]{0,39}\Z", "1-40 lowercase letters, digits or '-', starting with a letter or digit."
)
validate_region = RegexValidator(r"\A[a-z]{2}(-[a-z]+)+-\d{1,2}\Z", "An AWS region such as eu-west-1.")
validate_bucket = RegexValidator(
    r"\A[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z", "An S3 bucket name: 3-63 lowercase letters, digits, '.' or '-'."
)
# The gatekeeper checks `aud` against its own id; same alphabet as its key ids.
validate_gatekeeper_id = RegexValidator(r"\A[A-Za-z0-9._-]{1,64}\Z", "1-64 letters, digits, '.', '_' or '-'.")


def validate_printable(value: str) -> None:
    """Names travel into grants (`name`) and the customer's audit log: no control
    characters (C0, DEL, C1), which would forge lines or hide text there."""
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in value):
        raise ValidationError("No control characters.")


def _split(value: str):
    """urlsplit, and the port read now: either raises ValueError on a malformed
    URL ("https://[::1", "https://a.example:99999999"), which must be a refusal,
    not a 500."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValidationError("Enter an http(s) URL: scheme://host[:port], with a port from 1 to 65535.") from None
    if port == 0 or parts.netloc.endswith(":"):
        raise ValidationError("The port must be from 1 to 65535.")
    return parts


def _check_http_url(value: str) -> tuple[str, str]:
    parts = _split(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Enter an http(s) URL.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValidationError("No user, query or fragment.")
    if not _NETLOC_RE.match(parts.netloc):
        raise ValidationError("The host has characters that are not allowed.")
    # Browsers block plain http from an https page anyway; only loopback is exempt
    # so that local demos work.
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValidationError("Use https (plain http is allowed for loopback only).")
    return parts.scheme, parts.netloc


def validate_origin(value: str) -> None:
    _check_http_url(value)
    if _split(value).path:
        raise ValidationError("An origin only: scheme://host[:port], no path or trailing slash.")


def validate_gatekeeper_url(value: str) -> None:
    _check_http_url(value)
    if not re.fullmatch(r"[A-Za-z0-9._~/-]*", _split(value).path):
        raise ValidationError("The path has characters that are not allowed.")


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL that passed validate_gatekeeper_url."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
