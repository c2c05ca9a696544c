"""Dualkey portal settings. Everything deployment-specific comes from the
environment through portal.env's helpers; see docs/portal.md for the list.

DUALKEY_DEBUG defaults to on so a fresh checkout runs with one command; with it
off, the secrets have no defaults and the portal refuses to start without them.
"""

import datetime as dt
from pathlib import Path

from portal.env import (
    env_bool,
    env_celery,
    env_database,
    env_email,
    env_int,
    env_key,
    env_list,
    env_origin,
    env_secret,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DUALKEY_DEBUG", True)

# Development-only values: public on purpose, refused when DEBUG is off.
DEV_SECRET_KEY = "dualkey-development-secret-key-not-for-production"
DEV_MASTER_KEY = "ZGV2ZWxvcG1lbnQtbWFzdGVyLWtleS0zMi1ieXRlcyE="  # b"development-master-key-32-bytes!"

SECRET_KEY = env_secret("DUALKEY_SECRET_KEY", DEV_SECRET_KEY, debug=DEBUG)
# Encrypts tenants' signing keys at rest (AES-256-GCM); see tenants/signing.py.
DUALKEY_MASTER_KEY = env_key("DUALKEY_MASTER_KEY", DEV_MASTER_KEY, debug=DEBUG)

ALLOWED_HOSTS = env_list("DUALKEY_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else None)

# The grants' `iss`: each gatekeeper is configured with exactly this value.
DUALKEY_PORTAL_ORIGIN = env_origin("DUALKEY_PORTAL_ORIGIN", "http://127.0.0.1:8000" if DEBUG else None)
CSRF_TRUSTED_ORIGINS = [DUALKEY_PORTAL_ORIGIN]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "tenants",
    "accounts",
    "portal.tickets",
    "portal.webhooks",
    "portal.moves",
]

MIDDLEWARE = [
    # Outermost: whatever answers a HEAD, its body is not sent (portal/head.py).
    "portal.head.HeadWithoutBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Inside WhiteNoise (static files keep their caching): every other answer is
    # no-store unless it says otherwise (portal/caching.py).
    "portal.caching.NoStoreByDefaultMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.csp.ContentSecurityPolicyMiddleware",
    # Session timeouts, "sign out everywhere", and MFA enrolment (accounts/middleware.py);
    # after the CSP middleware, so its own answers get the policy too.
    "accounts.middleware.SignInPolicyMiddleware",
    # Inside the CSP middleware, so its page gets the policy: a 405 says what to do.
    "portal.errors.MethodNotAllowedPageMiddleware",
    # Last: turns a sign-in refused by axes into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DEFAULT_DATABASE_URL = f"sqlite:///{BASE_DIR / 'var' / 'portal.sqlite3'}"
DATABASES = {
    "default": env_database(
        "DATABASE_URL", DEFAULT_DATABASE_URL, conn_max_age=env_int("DUALKEY_DB_CONN_MAX_AGE", 0)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite cannot create the directory of its file; the default lives in var/.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Applied where people choose a password (invitation, password change and reset).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in throttling (django-axes, docs/portal.md "Signing in"). Its backend goes first:
# it refuses a locked-out account or address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failures count per account and per address, each on its own: many passwords for
# one account from many addresses, or many accounts from one address, both stop.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = env_int("DUALKEY_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("DUALKEY_LOGIN_COOLOFF_MINUTES", 15))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "portal.accounts.locked_out"
# The address is the socket peer only: a client-sent X-Forwarded-For would let an
# attacker pick a fresh address for every guess. Behind a reverse proxy, have the
# server set REMOTE_ADDR from it (waitress: trusted_proxy).
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
# The trail: every failure (AccessFailureLog), every sign-in (AccessLog), counts (AccessAttempt).
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_ENABLE_ADMIN = False

# Password reset (portal/passwords.py): links last PASSWORD_RESET_TIMEOUT seconds and
# work once (Django's token covers the password hash and last sign-in); requests are
# limited per address and per client within the window.
PASSWORD_RESET_TIMEOUT = env_int("DUALKEY_PASSWORD_RESET_SECONDS", 3600)
DUALKEY_RESET_LIMIT = env_int("DUALKEY_PASSWORD_RESET_LIMIT", 5)
DUALKEY_RESET_WINDOW_SECONDS = 3600

# Sessions (accounts/sessions.py): ended after this long without a request, and this
# long after signing in whatever happens; "sign out everywhere" ends them all.
DUALKEY_SESSION_IDLE_SECONDS = env_int("DUALKEY_SESSION_IDLE_SECONDS", 2 * 3600)
DUALKEY_SESSION_ABSOLUTE_SECONDS = env_int("DUALKEY_SESSION_ABSOLUTE_SECONDS", 12 * 3600)
if not 0 < DUALKEY_SESSION_IDLE_SECONDS <= DUALKEY_SESSION_ABSOLUTE_SECONDS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("DUALKEY_SESSION_IDLE_SECONDS must be above 0 and at most "
                               "DUALKEY_SESSION_ABSOLUTE_SECONDS")
SESSION_COOKIE_AGE = DUALKEY_SESSION_ABSOLUTE_SECONDS
# Vendor support must have a second factor (accounts/policy.py); off in debug so the
# demo's seeded support login keeps working with its password alone.
DUALKEY_SUPPORT_MFA_REQUIRED = env_bool("DUALKEY_SUPPORT_MFA_REQUIRED", not DEBUG)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "static_collected"

# Vendor artifacts (the gatekeeper's CloudFormation template and Lambda zips, published
# by `manage.py publish_gatekeeper`): S3 through django-storages; moto's S3 in the demo
# and tests (DUALKEY_ARTIFACTS_ENDPOINT_URL). Credentials: the standard AWS chain.
DUALKEY_ARTIFACTS_BUCKET = env_str("DUALKEY_ARTIFACTS_BUCKET", "dualkey-artifacts")
# Erasure receipts (portal/tickets/erasure.py: keys, version ids, sizes, hashes, request
# ids; no content) in a private bucket of the vendor's, on the same S3 endpoint.
DUALKEY_RECEIPTS_BUCKET = env_str("DUALKEY_RECEIPTS_BUCKET", "dualkey-receipts")


def _vendor_s3(bucket: str, **options) -> dict:
    """A django-storages S3 backend in the vendor's artifact account (moto's S3 in the
    demo and tests, through DUALKEY_ARTIFACTS_ENDPOINT_URL): objects never replaced."""
    endpoint = env_str("DUALKEY_ARTIFACTS_ENDPOINT_URL", "")
    return {"BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": bucket, "region_name": env_str("DUALKEY_ARTIFACTS_REGION", "us-east-1"),
                        "endpoint_url": endpoint or None, "addressing_style": "path" if endpoint else None,
                        "file_overwrite": False, "default_acl": None, **options}}


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # A published version is never replaced (the command refuses); plain URLs,
    # since templates and zips are public by design (no customer data).
    "artifacts": _vendor_s3(DUALKEY_ARTIFACTS_BUCKET, querystring_auth=False),
    # A receipt is written once and never replaced; read back by the portal only.
    "receipts": _vendor_s3(DUALKEY_RECEIPTS_BUCKET),
}
# In debug WhiteNoise serves straight from static/, so no collectstatic is needed.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Cookies and HSTS follow the scheme the portal is really served on.
_HTTPS = DUALKEY_PORTAL_ORIGIN.startswith("https://")
SESSION_COOKIE_SECURE = _HTTPS
CSRF_COOKIE_SECURE = _HTTPS
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = 0 if DEBUG or not _HTTPS else 31536000
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: the browsable API renders inline script, which our CSP refuses.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["portal.tickets.parsers.JSONParser"],  # DRF's, bounded
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Dualkey portal API",
    "DESCRIPTION": "Tickets, their file manifests, and grants for the tenant's gatekeeper.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Mail: invitations and security-event notices. Printed to the console unless
# DUALKEY_EMAIL_URL names a file directory or an SMTP server (docs/portal.md).
globals().update(env_email("DUALKEY_EMAIL_URL", "console:"))
DEFAULT_FROM_EMAIL = env_str("DUALKEY_EMAIL_FROM", "Dualkey <dualkey@localhost>")
EMAIL_TIMEOUT = 10
# How long an invitation link stays usable (tenants/invitations.py).
DUALKEY_INVITATION_DAYS = env_int("DUALKEY_INVITATION_DAYS", 7)

# Celery: Redis in production (required when DEBUG is off); `make demo` runs a real
# worker on kombu's filesystem transport; memory:// (the debug default) runs tasks
# eagerly in-process, for unit tests. See portal.env.env_celery and docs/operations.md.
_celery = env_celery("DUALKEY_CELERY_BROKER_URL", "memory://" if DEBUG else None, debug=DEBUG)
CELERY_BROKER_URL = _celery["CELERY_BROKER_URL"]
CELERY_BROKER_TRANSPORT_OPTIONS = _celery.get("CELERY_BROKER_TRANSPORT_OPTIONS", {})
if CELERY_BROKER_URL.startswith("redis"):
    # How long a task taken by a worker that then died (kill -9) waits in Redis before
    # it is handed out again (acks_late tasks: portal/moves/tasks.py). A move's run
    # that outlives it is handed out again while it runs: harmless, its leases
    # keep the two runs off each other's objects.
    CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS,
                                       "visibility_timeout": env_int("DUALKEY_CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_TASK_ALWAYS_EAGER = env_bool("DUALKEY_CELERY_EAGER", _celery["CELERY_TASK_ALWAYS_EAGER"])
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SERIALIZER = "json"
# Outgoing webhooks (portal/webhooks): retries after RETRY_SECONDS × 2^(attempt−1), at
# most MAX_ATTEMPTS attempts; private addresses refused unless ALLOW_PRIVATE (SSRF).
DUALKEY_WEBHOOK_RETRY_SECONDS = env_int("DUALKEY_WEBHOOK_RETRY_SECONDS", 30)
DUALKEY_WEBHOOK_MAX_ATTEMPTS = env_int("DUALKEY_WEBHOOK_MAX_ATTEMPTS", 8)
DUALKEY_WEBHOOK_ALLOW_PRIVATE = env_bool("DUALKEY_WEBHOOK_ALLOW_PRIVATE", False)
# Loopback receivers (http too): the demo's and the tests'. Never without DEBUG.
DUALKEY_WEBHOOK_ALLOW_LOOPBACK = DEBUG and env_bool("DUALKEY_WEBHOOK_ALLOW_LOOPBACK", True)
# Moves (portal/moves/worker.py): an object's lease (renewed while it streams), the
# retries of a transient failure (backoff RETRY_SECONDS × 2^(n−1)), and an optional
# cap on each object's transfer rate (0: none), to spare a customer's link.
DUALKEY_MOVE_LEASE_SECONDS = env_int("DUALKEY_MOVE_LEASE_SECONDS", 60)
DUALKEY_MOVE_RETRIES = env_int("DUALKEY_MOVE_RETRIES", 4)
DUALKEY_MOVE_RETRY_SECONDS = float(env_str("DUALKEY_MOVE_RETRY_SECONDS", "0.5"))
DUALKEY_MOVE_MAX_BYTES_PER_SECOND = env_int("DUALKEY_MOVE_MAX_BYTES_PER_SECOND", 0)
# What a browser carrier's tab is handed at once (it holds each object whole to hash it).
DUALKEY_MOVE_BROWSER_BYTES = env_int("DUALKEY_MOVE_BROWSER_BYTES", 256 * 1024 * 1024)
CELERY_BEAT_SCHEDULE = {
    "purge-retired-signing-keys": {
        "task": "tenants.tasks.purge_retired_signing_keys",
        "schedule": 3600.0,
    },
    "kick-stalled-moves": {  # a run for a running move whose task was lost (portal/moves/tasks.py)
        "task": "moves.kick_stalled",
        "schedule": 300.0,
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("DUALKEY_LOG_LEVEL", "INFO")},
}
