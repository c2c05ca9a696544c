"""Settings from the environment, through small typed helpers that fail loudly.

Every helper names the variable in its error, so a misconfigured deployment says
exactly what to fix instead of starting with a silently wrong value. Each takes
an optional `environ` mapping so tests need not touch os.environ.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def env_str(name: str, default: str | None = None, *, environ=None) -> str:
    value = _environ(environ).get(name, "").strip()
    if value:
        return value
    if default is None:
        raise ImproperlyConfigured(f"{name} is required")
    return default


def env_bool(name: str, default: bool, *, environ=None) -> bool:
    value = _environ(environ).get(name, "").strip().lower()
    if not value:
        return default
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int, *, environ=None) -> int:
    value = _environ(environ).get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer") from None


def env_list(name: str, default: list[str] | None = None, *, environ=None) -> list[str]:
    """Comma-separated; an empty or missing variable means `default` (required if None)."""
    value = _environ(environ).get(name, "")
    items = [item.strip() for item in value.split(",") if item.strip()]
    if items:
        return items
    if default is None:
        raise ImproperlyConfigured(f"{name} is required (comma-separated)")
    return default


def env_secret(name: str, dev_default: str, *, debug: bool, environ=None) -> str:
    """A secret that may only fall back to its development default in debug mode.

    A production deployment that forgot the variable, or copied the development
    value, must refuse to start rather than run with a secret everyone knows.
    """
    value = _environ(environ).get(name, "").strip()
    if not value:
        if debug:
            return dev_default
        raise ImproperlyConfigured(f"{name} is required when DUALKEY_DEBUG is off")
    if value == dev_default and not debug:
        raise ImproperlyConfigured(f"{name} is the development default; set a real secret")
    return value


def env_key(name: str, dev_default: str, *, debug: bool, length: int = 32, environ=None) -> bytes:
    """A base64 (standard or url-safe) key of exactly `length` bytes."""
    text = env_secret(name, dev_default, debug=debug, environ=environ)
    # One decoder for both alphabets: map url-safe characters onto the standard ones.
    standard = text.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{name} is not base64") from None
    if len(raw) != length:
        raise ImproperlyConfigured(f"{name} must decode to {length} bytes, not {len(raw)}")
    return raw


def env_origin(name: str, default: str | None = None, *, environ=None) -> str:
    """An origin: scheme://host[:port], nothing after it."""
    value = env_str(name, default, environ=environ).rstrip("/")
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # "https://[::1", a port that is not a number or out of range
        valid = False
    if not valid:
        raise ImproperlyConfigured(f"{name} must be an http(s) origin like https://portal.example.com")
    if parts.path or parts.query or parts.fragment or parts.username:
        raise ImproperlyConfigured(f"{name} must be an origin only, with no path, query or user")
    return value


DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql", "pgsql")


def env_database(name: str, default: str, *, conn_max_age: int = 0, environ=None) -> dict:
    """A Django DATABASES entry from a URL: sqlite:///PATH or postgres://USER:PASS@HOST:PORT/NAME.

    The error names the variable and the scheme it found, never the whole value
    (it may hold a password).
    """
    import dj_database_url

    value = env_str(name, default, environ=environ)
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in DATABASE_SCHEMES or not scheme.isascii():
        found = f"scheme {scheme!r}" if scheme and scheme.isalnum() else "no scheme"
        raise ImproperlyConfigured(
            f"{name} must be sqlite:///PATH or postgres://USER:PASSWORD@HOST:PORT/NAME ({found})"
        )
    try:
        return dj_database_url.parse(value, conn_max_age=conn_max_age)
    except ValueError:
        raise ImproperlyConfigured(f"{name} is not a valid database URL") from None


EMAIL_SCHEMES = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "smtp+tls": "django.core.mail.backends.smtp.EmailBackend",
    "smtps": "django.core.mail.backends.smtp.EmailBackend",
}


def env_email(name: str, default: str, *, environ=None) -> dict:
    """Django's EMAIL_* settings from one URL: `console:` (print), `file:///DIR`
    (one file a message), `smtp://USER:PASSWORD@HOST:PORT` (`smtp+tls://` for
    STARTTLS, `smtps://` for TLS from the start). User and password are
    percent-decoded. Errors name the variable and the scheme, never the value
    (it may hold a password)."""
    from urllib.parse import unquote

    value = env_str(name, default, environ=environ)
    scheme = value.split(":", 1)[0] if ":" in value else ""
    if scheme not in EMAIL_SCHEMES:
        found = f"scheme {scheme!r}" if scheme.isascii() and scheme.replace("+", "").isalnum() else "no scheme"
        raise ImproperlyConfigured(f"{name} must be console:, file:///DIR or smtp[s]://USER:PASSWORD@HOST:PORT ({found})")
    settings = {"EMAIL_BACKEND": EMAIL_SCHEMES[scheme]}
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name} is not a valid mail URL") from None
    if scheme == "file":
        if not parts.path.startswith("/") or parts.netloc:
            raise ImproperlyConfigured(f"{name} must be file:///ABSOLUTE/DIR for the file backend")
        settings["EMAIL_FILE_PATH"] = parts.path
    elif scheme != "console":
        if not parts.hostname:
            raise ImproperlyConfigured(f"{name} must name the SMTP host")
        settings.update({
            "EMAIL_HOST": parts.hostname,
            "EMAIL_PORT": port or {"smtp": 25, "smtp+tls": 587, "smtps": 465}[scheme],
            "EMAIL_HOST_USER": unquote(parts.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
            "EMAIL_USE_TLS": scheme == "smtp+tls",
            "EMAIL_USE_SSL": scheme == "smtps",
        })
    return settings


CELERY_SCHEMES = ("redis", "rediss", "filesystem", "memory")


def env_celery(name: str, default: str | None, *, debug: bool, environ=None) -> dict:
    """Celery's broker settings from one URL: `redis://HOST:PORT/DB` (`rediss://` for
    TLS) in production; with DUALKEY_DEBUG on also `filesystem:///DIR` (kombu's
    embedded transport, a directory of message files: what `make demo`'s worker
    uses) and `memory://` (tasks run eagerly in the calling process, no worker).
    Errors name the variable and the scheme, never the value (it may hold a password)."""
    value = env_str(name, default, environ=environ)
    scheme = value.split("://", 1)[0] if "://" in value else ""
    allowed = CELERY_SCHEMES if debug else ("redis", "rediss")
    if scheme not in allowed:
        found = f"scheme {scheme!r}" if scheme.isascii() and scheme.isalnum() else "no scheme"
        kinds = "redis[s]://HOST:PORT/DB, filesystem:///DIR or memory://" if debug else \
            "redis[s]://HOST:PORT/DB (filesystem:// and memory:// only with DUALKEY_DEBUG on)"
        raise ImproperlyConfigured(f"{name} must be {kinds} ({found})")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise ImproperlyConfigured(f"{name} is not a valid broker URL") from None
    settings = {"CELERY_BROKER_URL": value, "CELERY_TASK_ALWAYS_EAGER": scheme == "memory"}
    if scheme in ("redis", "rediss") and not parts.hostname:
        raise ImproperlyConfigured(f"{name} must name the Redis host")
    if scheme == "filesystem":
        if not parts.path.startswith("/") or parts.netloc:
            raise ImproperlyConfigured(f"{name} must be filesystem:///ABSOLUTE/DIR")
        folder = parts.path
        Path(folder).mkdir(parents=True, exist_ok=True)
        settings["CELERY_BROKER_URL"] = "filesystem://"
        settings["CELERY_BROKER_TRANSPORT_OPTIONS"] = {
            "data_folder_in": folder, "data_folder_out": folder, "control_folder": folder + "/control"}
    return settings
