"""The sign-in settings from the environment: session limits, and vendor support's
second factor required in production, not in debug (the demo's support login)."""

import os
import subprocess
import sys

from tests.portal.test_env_settings import PRODUCTION, ROOT

CODE = ("import portal.settings as s; print(s.DUALKEY_SESSION_IDLE_SECONDS, s.DUALKEY_SESSION_ABSOLUTE_SECONDS, "
        "s.SESSION_COOKIE_AGE, s.DUALKEY_SUPPORT_MFA_REQUIRED)")


def settings_with(**variables) -> list[str]:
    base = {name: value for name, value in os.environ.items() if not name.startswith(("DUALKEY_", "DATABASE_URL"))}
    result = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, env={**base, **variables},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-4:]


def test_the_defaults():
    assert settings_with() == ["7200", "43200", "43200", "False"]
    assert settings_with(**PRODUCTION) == ["7200", "43200", "43200", "True"]


def test_the_variables():
    assert settings_with(DUALKEY_SESSION_IDLE_SECONDS="60", DUALKEY_SESSION_ABSOLUTE_SECONDS="600",
                         DUALKEY_SUPPORT_MFA_REQUIRED="1") == ["60", "600", "600", "True"]


def test_a_bad_value_names_the_variable():
    base = {name: value for name, value in os.environ.items() if not name.startswith(("DUALKEY_", "DATABASE_URL"))}
    result = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**base, "DUALKEY_SESSION_IDLE_SECONDS": "soon"})
    assert result.returncode != 0 and "DUALKEY_SESSION_IDLE_SECONDS" in result.stderr


def test_an_idle_limit_past_the_absolute_one_is_refused():
    base = {name: value for name, value in os.environ.items() if not name.startswith(("DUALKEY_", "DATABASE_URL"))}
    for idle, absolute in [("0", "600"), ("601", "600")]:
        result = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=60,
                                env={**base, "DUALKEY_SESSION_IDLE_SECONDS": idle,
                                     "DUALKEY_SESSION_ABSOLUTE_SECONDS": absolute})
        assert result.returncode != 0 and "DUALKEY_SESSION_IDLE_SECONDS must be above 0" in result.stderr
