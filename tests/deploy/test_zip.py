"""`make gatekeeper-zip`: the Lambda zip is reproducible (two builds, same bytes),
holds the gatekeeper and its requirements as wheels for the target architecture,
and nothing of the host's."""

from __future__ import annotations

import hashlib
import importlib.util
import zipfile
from pathlib import Path

import pytest

from gatekeeper import VERSION

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("build_gatekeeper_zip", ROOT / "scripts" / "build_gatekeeper_zip.py")
builder = importlib.util.module_from_spec(spec)
spec.loader.exec_module(builder)
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
    assert {"gatekeeper/lambda_handler.py", "jwt/__init__.py", "boto3/__init__.py",
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
