"""Settings from the environment: typed, and loud about what is wrong."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal import env

ROOT = Path(__file__).resolve().parents[2]
KEY = base64.b64encode(b"k" * 32).decode()


def test_env_bool_reads_common_spellings():
    assert env.env_bool("X", False, environ={"X": "yes"}) is True
    assert env.env_bool("X", True, environ={"X": "0"}) is False
    assert env.env_bool("X", True, environ={}) is True


def test_env_bool_names_the_variable_when_wrong():
    with pytest.raises(ImproperlyConfigured, match="DUALKEY_DEBUG"):
        env.env_bool("DUALKEY_DEBUG", True, environ={"DUALKEY_DEBUG": "maybe"})


def test_env_list_splits_on_commas():
    assert env.env_list("H", environ={"H": "a.example, b.example,"}) == ["a.example", "b.example"]
    with pytest.raises(ImproperlyConfigured, match="H is required"):
        env.env_list("H", environ={})


def test_env_int_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match="N must be an integer"):
        env.env_int("N", 1, environ={"N": "x"})


def test_env_secret_falls_back_only_in_debug():
    assert env.env_secret("S", "dev", debug=True, environ={}) == "dev"
    with pytest.raises(ImproperlyConfigured, match="S is required"):
        env.env_secret("S", "dev", debug=False, environ={})
    with pytest.raises(ImproperlyConfigured, match="S is the development default"):
        env.env_secret("S", "dev", debug=False, environ={"S": "dev"})


def test_env_key_takes_32_bytes_of_either_base64_alphabet():
    raw = bytes(range(200, 232))
    assert env.env_key("K", KEY, debug=False, environ={"K": base64.b64encode(raw).decode()}) == raw
    assert env.env_key("K", KEY, debug=False, environ={"K": base64.urlsafe_b64encode(raw).decode().rstrip("=")}) == raw


@pytest.mark.parametrize("value, problem", [
    ("not base64!", "not base64"),
    (base64.b64encode(b"short").decode(), "32 bytes"),
])
def test_env_key_names_the_variable(value, problem):
    with pytest.raises(ImproperlyConfigured, match=f"DUALKEY_MASTER_KEY.*{problem}"):
        env.env_key("DUALKEY_MASTER_KEY", KEY, debug=False, environ={"DUALKEY_MASTER_KEY": value})


@pytest.mark.parametrize("value", [
    "portal.example.com", "https://portal.example.com/app", "ftp://x.example",
    # urlsplit raises ValueError for these: still the variable's name, not a traceback.
    "https://[::1", "https://portal.example.com:99999999", "https://portal.example.com:port",
])
def test_env_origin_refuses_anything_but_an_origin(value):
    with pytest.raises(ImproperlyConfigured, match="DUALKEY_PORTAL_ORIGIN"):
        env.env_origin("DUALKEY_PORTAL_ORIGIN", environ={"DUALKEY_PORTAL_ORIGIN": value})


def test_env_origin_drops_a_trailing_slash():
    assert env.env_origin("O", environ={"O": "https://portal.example.com/"}) == "https://portal.example.com"


def _load_settings(**variables):
    """Import the settings in a fresh interpreter with exactly these variables."""
    base = {name: value for name, value in os.environ.items() if not name.startswith(("DUALKEY_", "DATABASE_URL"))}
    code = "import portal.settings as s; print(s.DEBUG, s.DUALKEY_PORTAL_ORIGIN, s.DATABASES['default']['ENGINE'])"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**base, **variables},
                          capture_output=True, text=True, timeout=60)


PRODUCTION = {
    "DUALKEY_DEBUG": "0",
    "DUALKEY_SECRET_KEY": "a-real-secret-" + "x" * 40,
    "DUALKEY_MASTER_KEY": KEY,
    "DUALKEY_ALLOWED_HOSTS": "portal.example.com",
    "DUALKEY_PORTAL_ORIGIN": "https://portal.example.com",
    "DUALKEY_CELERY_BROKER_URL": "redis://redis.internal:6379/0",
}


def test_production_settings_load_with_every_variable():
    result = _load_settings(**PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["False", "https://portal.example.com"]


@pytest.mark.parametrize("missing", ["DUALKEY_SECRET_KEY", "DUALKEY_MASTER_KEY", "DUALKEY_ALLOWED_HOSTS",
                                     "DUALKEY_PORTAL_ORIGIN", "DUALKEY_CELERY_BROKER_URL"])
def test_production_refuses_to_start_without_a_variable(missing):
    variables = {name: value for name, value in PRODUCTION.items() if name != missing}
    result = _load_settings(**variables)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


def test_production_refuses_the_development_master_key():
    from portal.settings import DEV_MASTER_KEY

    result = _load_settings(**{**PRODUCTION, "DUALKEY_MASTER_KEY": DEV_MASTER_KEY})
    assert result.returncode != 0
    assert "DUALKEY_MASTER_KEY is the development default" in result.stderr


def test_database_url_selects_postgresql():
    result = _load_settings(**PRODUCTION, DATABASE_URL="postgres://u:p@db.example:5432/dualkey")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[2] == "django.db.backends.postgresql"


def test_env_database_reads_sqlite_and_postgres_urls():
    sqlite = env.env_database("DATABASE_URL", "sqlite:////tmp/x.sqlite3", environ={})
    assert sqlite["ENGINE"] == "django.db.backends.sqlite3" and sqlite["NAME"] == "/tmp/x.sqlite3"
    pg = env.env_database(
        "DATABASE_URL", "", environ={"DATABASE_URL": "postgres://u:pw@127.0.0.1:5433/db"}, conn_max_age=5
    )
    assert (pg["ENGINE"], pg["HOST"], pg["PORT"], pg["NAME"], pg["CONN_MAX_AGE"]) == (
        "django.db.backends.postgresql", "127.0.0.1", 5433, "db", 5,
    )


@pytest.mark.parametrize(
    "value, found",
    [
        # What a shell script once produced: a notice printed in front of the URL.
        ("Removed stale pid file.\npostgres://u:s3cret@127.0.0.1:5432/db", "no scheme"),
        ("mysql://u:s3cret@db/x", "scheme 'mysql'"),
        ("127.0.0.1:5432/db", "no scheme"),
    ],
)
def test_env_database_names_the_variable_and_hides_the_password(value, found):
    with pytest.raises(ImproperlyConfigured) as caught:
        env.env_database("DATABASE_URL", "", environ={"DATABASE_URL": value})
    message = str(caught.value)
    assert message.startswith("DATABASE_URL must be") and found in message
    assert "s3cret" not in message


def test_a_bad_database_url_stops_manage_py_with_the_variable_named():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={**os.environ, "DATABASE_URL": "Removed stale pid file. postgres://x"},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "DATABASE_URL must be sqlite:///PATH or postgres://" in result.stderr


def test_env_email_prints_to_the_console_by_default():
    assert env.env_email("DUALKEY_EMAIL_URL", "console:", environ={}) == {
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}


def test_env_email_reads_file_and_smtp_urls():
    mail = env.env_email("M", "", environ={"M": "file:///var/mail/dualkey"})
    assert mail["EMAIL_FILE_PATH"] == "/var/mail/dualkey"
    smtp = env.env_email("M", "", environ={"M": "smtp+tls://mailer%40x.example:p%40ss@smtp.x.example"})
    assert smtp["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (smtp["EMAIL_HOST"], smtp["EMAIL_PORT"], smtp["EMAIL_USE_TLS"], smtp["EMAIL_USE_SSL"]) == (
        "smtp.x.example", 587, True, False)
    assert (smtp["EMAIL_HOST_USER"], smtp["EMAIL_HOST_PASSWORD"]) == ("mailer@x.example", "p@ss")
    assert env.env_email("M", "", environ={"M": "smtps://h.example:2465"})["EMAIL_PORT"] == 2465
    assert env.env_email("M", "", environ={"M": "smtp://127.0.0.1:1025"})["EMAIL_USE_TLS"] is False


@pytest.mark.parametrize("value", ["http://u:hunter2@x", "smtp://u:hunter2@", "smtp://u:hunter2@h:99999",
                                   "smtp://u:hunter2@h:x", "file://hunter2/dir", "file:hunter2", "hunter2"])
def test_env_email_names_the_variable_and_hides_the_value(value):
    with pytest.raises(ImproperlyConfigured) as error:
        env.env_email("DUALKEY_EMAIL_URL", "", environ={"DUALKEY_EMAIL_URL": value})
    assert "DUALKEY_EMAIL_URL" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_production_sends_mail_by_smtp_when_told():
    code = "import portal.settings as s; print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.DEFAULT_FROM_EMAIL)"
    base = {name: value for name, value in os.environ.items() if not name.startswith(("DUALKEY_", "DATABASE_URL"))}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**base, **PRODUCTION, "DUALKEY_EMAIL_URL": "smtp://smtp.example.com:25",
                                 "DUALKEY_EMAIL_FROM": "help@example.com"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["django.core.mail.backends.smtp.EmailBackend", "smtp.example.com",
                                          "help@example.com"]


def test_env_celery_runs_eagerly_on_memory_and_reads_redis():
    assert env.env_celery("B", "memory://", debug=True, environ={})["CELERY_TASK_ALWAYS_EAGER"] is True
    redis = env.env_celery("B", None, debug=False, environ={"B": "rediss://:pw@redis.internal:6380/1"})
    assert redis == {"CELERY_BROKER_URL": "rediss://:pw@redis.internal:6380/1", "CELERY_TASK_ALWAYS_EAGER": False}


def test_env_celery_reads_the_filesystem_transport_in_debug(tmp_path):
    folder = tmp_path / "broker"
    settings = env.env_celery("B", None, debug=True, environ={"B": f"filesystem://{folder}"})
    assert settings["CELERY_BROKER_URL"] == "filesystem://"
    assert settings["CELERY_BROKER_TRANSPORT_OPTIONS"]["data_folder_in"] == str(folder)
    assert folder.is_dir()


@pytest.mark.parametrize("value, debug, found", [
    ("amqp://guest:secret@mq/", False, "scheme 'amqp'"),
    ("memory://", False, "scheme 'memory'"),
    ("filesystem:///tmp/x", False, "scheme 'filesystem'"),
    ("redis//secret@host", True, "no scheme"),
    ("redis://:secret@host:notaport/0", True, "not a valid broker URL"),
    ("filesystem://relative/dir", True, "filesystem:///ABSOLUTE/DIR"),
])
def test_env_celery_names_the_variable_and_hides_the_value(value, debug, found):
    with pytest.raises(ImproperlyConfigured) as caught:
        env.env_celery("DUALKEY_CELERY_BROKER_URL", None, debug=debug, environ={"DUALKEY_CELERY_BROKER_URL": value})
    assert "DUALKEY_CELERY_BROKER_URL" in str(caught.value) and found in str(caught.value)
    assert "secret" not in str(caught.value)


def test_a_bad_broker_url_stops_manage_py_with_the_variable_named():
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "DUALKEY_CELERY_BROKER_URL": "amqp://guest:secret@mq/"}, timeout=60)
    assert result.returncode != 0
    assert "DUALKEY_CELERY_BROKER_URL must be" in result.stderr and "secret" not in result.stderr
