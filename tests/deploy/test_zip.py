"""`make gatekeeper-zip`: the Lambda zip is reproducible (two builds, same bytes),
holds the gatekeeper and its requirements as wheels for the target architecture,
and nothing of the host's."""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

import pytest

from gatekeeper import VERSION

from .zipbuild import ROOT, builder

ELF_MACHINES = {"arm64": 183, "x86_64": 62}  # e_machine: EM_AARCH64, EM_X86_64


@pytest.fixture(scope="module")
def arm64_zip(tmp_path_factory) -> Path:
    return builder.build("arm64", "3.12", tmp_path_factory.mktemp("zip"))


def test_two_builds_are_the_same_bytes(arm64_zip, tmp_path):
    again = builder.build("arm64", "3.12", tmp_path)
    assert again.name == arm64_zip.name == f"gatekeeper-{VERSION}-py3.12-arm64.zip"
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(arm64_zip.read_bytes()).digest()


def test_entries_are_sorted_with_fixed_times_and_modes(arm64_zip):
    with zipfile.ZipFile(arm64_zip) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o644}


def test_it_holds_the_gatekeeper_and_its_requirements_and_no_host_files(arm64_zip):
    with zipfile.ZipFile(arm64_zip) as archive:
        names = set(archive.namelist())
    modules = {f"gatekeeper/{path.name}" for path in (ROOT / "gatekeeper").glob("*.py")}
    assert modules <= names
    assert {"gatekeeper/lambda_handler.py", "jwt/__init__.py", "botocore/__init__.py",
            "cryptography/__init__.py"} <= names
    assert not [name for name in names if name.endswith(".pyc") and "cpython-312" not in name]
    assert not [name for name in names if "cpython-311" in name or name.startswith(("bin/", "tests/"))]
    # Every requirement's pinned version, as installed metadata.
    for line in (ROOT / "gatekeeper" / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            package, version = line.split("==")
            dist = package.replace("-", "_").lower()
            assert any(n.lower().startswith(f"{dist}-{version}.dist-info/") for n in names), line


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_compiled_code_is_built_for_the_target_architecture(arch, arm64_zip, tmp_path):
    path = arm64_zip if arch == "arm64" else builder.build("x86_64", "3.12", tmp_path)
    with zipfile.ZipFile(path) as archive:
        libraries = [name for name in archive.namelist() if name.endswith(".so")]
        assert "cryptography/hazmat/bindings/_rust.abi3.so" in libraries
        for name in libraries:
            header = archive.read(name)[:20]
            assert header[:4] == b"\x7fELF"
            assert int.from_bytes(header[18:20], "little") == ELF_MACHINES[arch], name


def test_a_geoip_zip_ships_maxminddb_and_the_database_and_its_countries_apply(tmp_path):
    from tests.gatekeeper.conftest import ORIGIN, VENDOR_KEY
    from tests.gatekeeper.test_lambda import function_url_event
    from tests.gatekeeper.test_policy import geoip_db

    from gatekeeper_client.grants import mint_grant

    from .lambda_run import Container

    database = Path(geoip_db(tmp_path / "country.mmdb"))  # 127/8 in NL, 10/8 in KP
    python = builder.find_python("3.12")
    version = "3.12" if python else "%d.%d" % sys.version_info[:2]
    built = builder.build("x86_64", version, tmp_path / "out", compile_with=None, geoip_db=database)
    assert built.name.endswith("-x86_64-geoip.zip")
    task = tmp_path / "task"
    with zipfile.ZipFile(built) as archive:
        assert archive.read(builder.GEOIP_PATH) == database.read_bytes()
        assert "maxminddb/__init__.py" in archive.namelist()
        archive.extractall(task)
    env = {"GATEKEEPER_GATEKEEPER_ID": "gk-geo", "GATEKEEPER_ISSUER": ORIGIN,
           "GATEKEEPER_VENDOR_KEYS": f"{VENDOR_KEY.kid}:{VENDOR_KEY.public_b64}",
           "GATEKEEPER_STORAGE_BUCKET": "geo-reports", "GATEKEEPER_STORAGE_REGION": "eu-west-1",
           "GATEKEEPER_AUDIT_URL": f"sqlite:///{tmp_path / 'audit.db'}",
           "GATEKEEPER_ACL_COUNTRIES": "NL", "GATEKEEPER_ACL_GEOIP_DB": str(task / builder.GEOIP_PATH),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"}
    container = Container(python or sys.executable, task, env)
    try:
        for source_ip, expected in (("127.0.0.1", 200), ("10.1.2.3", 403)):
            grant = mint_grant(VENDOR_KEY, prefix="tickets/42/", ops=["get"], issuer=ORIGIN, audience="gk-geo",
                               subject="user:7")
            status, body, _ = container(function_url_event("/v1/sign", source_ip=source_ip, body={"ops": [
                {"op": "get", "key": "tickets/42/report.json"}]}, headers={"authorization": f"Bearer {grant}"}))
            assert status == expected, body
        assert body["error"] == "country_denied"
    finally:
        container.close()
