"""The gatekeeper as a customer installs it: the wheel gatekeeper/pyproject.toml
builds (what `make gatekeeper-dist` runs), installed into a clean virtualenv, runs
`dualkey-gatekeeper check-config` and `serve` from a directory that has nothing
to do with this repository.

The build and the install are real; only the download is saved: the wheels of
the runtime requirements (and of the build backend) are fetched from the package
index once, into var/wheelhouse, and every run after installs from there with
--no-index, so the test needs no network and takes seconds.
"""

from __future__ import annotations

import email.parser
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

import gatekeeper
from tests import support
from tests.gatekeeper.conftest import GATEKEEPER_ID, base_config, toml_dumps

PACKAGE = support.ROOT / "gatekeeper"
WHEELHOUSE = support.ROOT / "var" / "wheelhouse"
BUILD_BACKEND = "setuptools==80.9.0"  # as gatekeeper/pyproject.toml's build-system requires


def pip(*args: str, python: Path | None = None) -> subprocess.CompletedProcess:
    target = ["--python", str(python)] if python else []
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *target, *args],
                          check=True, capture_output=True, text=True)


def requirements(name: str) -> list[str]:
    lines = (PACKAGE / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    """The wheels the install needs, downloaded once (per set of pins)."""
    wanted = [*requirements("requirements.txt"), BUILD_BACKEND]
    stamp = WHEELHOUSE / ("ready-" + hashlib.sha1("\n".join(wanted).encode()).hexdigest()[:12])
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    with open(WHEELHOUSE / ".lock", "w") as lock:  # test workers in parallel download it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            pip("download", "--quiet", "--only-binary=:all:", "--dest", str(WHEELHOUSE), *wanted)
            stamp.touch()
    return WHEELHOUSE


@pytest.fixture(scope="module")
def wheel(wheelhouse, tmp_path_factory) -> Path:
    """Built from a copy of gatekeeper/, as `make gatekeeper-dist` builds it in place,
    with build isolation (the pinned setuptools, from the wheelhouse)."""
    work = tmp_path_factory.mktemp("build")
    source = work / "gatekeeper"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    pip("wheel", "--quiet", "--no-deps", "--no-index", "--find-links", str(wheelhouse),
        "--wheel-dir", str(work / "dist"), str(source))
    (built,) = (work / "dist").glob("*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, wheelhouse, tmp_path_factory) -> Path:
    """A clean virtualenv (no system site packages) with the wheel and its pins."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip("install", "--quiet", "--no-index", "--find-links", str(wheelhouse), str(wheel),
        python=venv / "bin" / "python")
    return venv


def outside_env() -> dict[str, str]:
    """The environment, less anything that would lead Python back to this repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "GATEKEEPER_"))}
    return {**env, **support.AWS_ENV}


def test_the_wheel_holds_the_gatekeeper_and_nothing_else(wheel):
    assert wheel.name == f"dualkey_gatekeeper-{gatekeeper.VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"dualkey_gatekeeper-{gatekeeper.VERSION}.dist-info"
        metadata = email.parser.Parser().parsestr(archive.read(f"{info}/METADATA").decode())
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    modules = sorted(name for name in names if not name.startswith(info))
    assert modules == sorted(f"gatekeeper/{path.name}" for path in PACKAGE.glob("*.py"))
    assert metadata["Version"] == gatekeeper.VERSION
    # Its runtime requirements are exactly the pinned file's; GeoIP only as the extra.
    required = metadata.get_all("Requires-Dist")
    assert sorted(r for r in required if "extra ==" not in r) == sorted(requirements("requirements.txt"))
    assert [r.partition(";")[0].strip() for r in required if "extra ==" in r] == requirements(
        "requirements-geoip.txt")
    assert "dualkey-gatekeeper = gatekeeper.cli:main" in entry_points


def test_installed_it_checks_a_config_and_serves_from_any_directory(installed, moto_url, s3, tmp_path):
    bin_dir = installed / "bin"
    where = subprocess.run([bin_dir / "python", "-c", "import gatekeeper; print(gatekeeper.__file__)"],
                           cwd=tmp_path, env=outside_env(), capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(installed)  # not this repository's copy
    version = subprocess.run([bin_dir / "dualkey-gatekeeper", "--version"], cwd=tmp_path, env=outside_env(),
                             capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"dualkey-gatekeeper {gatekeeper.VERSION}"

    bucket = "installed-wheel-" + str(os.getpid())
    s3.create_bucket(Bucket=bucket)
    config = base_config(moto_url, bucket, "sqlite:audit.db")  # relative: to this directory
    (tmp_path / "gatekeeper.toml").write_text(toml_dumps(config))
    checked = subprocess.run([bin_dir / "dualkey-gatekeeper", "check-config", "--config", "gatekeeper.toml"],
                             cwd=tmp_path, env=outside_env(), capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"config ok: gatekeeper_id={GATEKEEPER_ID}")

    broken = subprocess.run([bin_dir / "dualkey-gatekeeper", "check-config", "--config", "gatekeeper.toml"],
                            cwd=tmp_path, env={**outside_env(), "GATEKEEPER_PRESIGN_TTL": "0"},
                            capture_output=True, text=True)
    assert broken.returncode == 2
    assert "presign_ttl" in broken.stderr

    port = support.free_port()
    url = f"http://127.0.0.1:{port}/v1/health"
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen([bin_dir / "dualkey-gatekeeper", "serve", "--config", "gatekeeper.toml",
                                 "--port", str(port)], cwd=tmp_path, env=outside_env(), stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        support.wait_for_http(url, proc)
        with urllib.request.urlopen(url, timeout=5) as answer:
            health = json.load(answer)
    finally:
        support.stop_process(proc)
    assert health["status"] == "ok"
    assert health["gatekeeper_id"] == GATEKEEPER_ID
    assert health["version"] == gatekeeper.VERSION
    assert (health["bucket"], health["storage"]) == (bucket, "ok")  # it reached moto's bucket
    assert (tmp_path / "audit.db").exists()  # the relative audit URL is the working directory's


# --- the systemd unit of docs/operations.md ----------------------------------------------------

UNIT = support.ROOT / "deploy" / "systemd" / "dualkey-gatekeeper.service"


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            name, _, value = line.partition("=")
            settings.setdefault(name, []).append(value)
    return settings


def test_the_systemd_unit_verifies_against_the_installed_package(installed, tmp_path):
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/dualkey-gatekeeper", str(installed)))
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                              cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    # Exposure 0 (locked down) to 10 (unprotected); the unit is at 1.4 ("OK").
    rated = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(unit)],
                           capture_output=True, text=True, cwd=tmp_path)
    assert rated.returncode == 0, rated.stdout[-2000:]
    assert "Overall exposure level for dualkey-gatekeeper.service: 1." in rated.stdout


def test_the_unit_runs_the_real_commands_and_keeps_the_audit_log_in_its_state_directory():
    from tenants.gatekeeper_toml import AUDIT_URL  # the portal's download: what the unit is for

    settings = unit_settings()
    assert settings["ExecStart"] == ["/opt/dualkey-gatekeeper/bin/dualkey-gatekeeper serve --config "
                                     "%d/gatekeeper.toml --host 127.0.0.1 --port 8700"]
    assert settings["ExecStartPre"] == ["/opt/dualkey-gatekeeper/bin/dualkey-gatekeeper init-audit --config "
                                        "%d/gatekeeper.toml"]
    parser_check = subprocess.run(
        [sys.executable, "-c", "import sys; from gatekeeper import cli; sys.exit(cli.main(sys.argv[1:]))", "serve",
         "--config", "/nonexistent/gatekeeper.toml", "--host", "127.0.0.1", "--port", "8700"],
        cwd=support.ROOT, capture_output=True, text=True)
    # The options parse; the missing file is then refused by name, as a config error.
    assert parser_check.returncode == 2 and "file not found: /nonexistent/gatekeeper.toml" in parser_check.stderr
    assert settings["StateDirectory"] == ["dualkey-gatekeeper"]
    assert AUDIT_URL == "sqlite:///var/lib/dualkey-gatekeeper/audit.db"
    for hardening in ("DynamicUser", "NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"):
        assert settings[hardening] == ["yes"], hardening
    assert settings["ProtectSystem"] == ["strict"]
    assert settings["CapabilityBoundingSet"] == [""]
