"""`make gatekeeper-zip`: the gatekeeper's AWS Lambda code, as one reproducible zip.

    python scripts/build_gatekeeper_zip.py [--arch arm64|x86_64] [--python-version 3.12] [--out dist]
                                           [--geoip-db GeoLite2-Country.mmdb]

What goes in: the manylinux wheels of gatekeeper/requirements.txt for the target
architecture and Python (pip download --only-binary=:all:, so `cryptography` is the
compiled build Lambda can load, never the host's), installed flat as Lambda expects,
plus the gatekeeper package's own modules. Bytecode is compiled with an interpreter
of the target version when one is found (unchecked-hash .pyc: no timestamps, and
/var/task is read-only, so without them every cold start would compile botocore).

With --geoip-db (a MaxMind country database: licensed data, so the customer builds this
zip with its own copy), the zip also holds maxminddb (gatekeeper/requirements-geoip.txt)
and the database at geoip/country.mmdb: deploy it with GeoipDb=/var/task/geoip/country.mmdb.

Reproducible: entries sorted, every timestamp 1980-01-01, fixed permissions, no
bytecode from the host; the same inputs give the same bytes (tests/deploy/test_zip.py
builds twice and compares). Wheels are cached in dist/wheels/<arch>-cp<ver>/; the
dependencies' versions are pinned in deploy/aws/lambda-constraints.txt.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gatekeeper"
REQUIREMENTS = PACKAGE / "requirements.txt"
GEOIP_REQUIREMENTS = PACKAGE / "requirements-geoip.txt"
GEOIP_PATH = "geoip/country.mmdb"  # inside the zip: /var/task/geoip/country.mmdb on Lambda
CONSTRAINTS = ROOT / "deploy" / "aws" / "lambda-constraints.txt"  # its dependencies' pins
WHEEL_CACHE = ROOT / "dist" / "wheels"
PLATFORMS = {  # glibc 2.34 on Lambda's Amazon Linux 2023 (python3.12 and later)
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64"),
}
EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644 << 16


def version() -> str:
    text = (PACKAGE / "__init__.py").read_text()
    return re.search(r'^VERSION = "([^"]+)"', text, re.M).group(1)


def zip_name(arch: str, python_version: str, geoip: bool = False) -> str:
    return f"gatekeeper-{version()}-py{python_version}-{arch}{'-geoip' if geoip else ''}.zip"


def download_wheels(arch: str, python_version: str, cache: Path, requirements: tuple = (REQUIREMENTS,)) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    platforms = [arg for platform in PLATFORMS[arch] for arg in ("--platform", platform)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                    "--only-binary=:all:", *platforms, "--python-version", python_version,
                    "--implementation", "cp", *_dash_r(requirements), "-c", str(CONSTRAINTS),
                    "-d", str(cache)], check=True)


def install_wheels(arch: str, python_version: str, cache: Path, target: Path,
                   requirements: tuple = (REQUIREMENTS,)) -> None:
    platforms = [arg for platform in PLATFORMS[arch] for arg in ("--platform", platform)]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-index", "--find-links", str(cache), "--only-binary=:all:", *platforms,
                    "--python-version", python_version, "--implementation", "cp", "--no-compile",
                    "--target", str(target), *_dash_r(requirements), "-c", str(CONSTRAINTS)], check=True)
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts: nothing runs them on Lambda


def _dash_r(requirements: tuple) -> list[str]:
    return [arg for path in requirements for arg in ("-r", str(path))]


def copy_package(target: Path) -> None:
    destination = target / "gatekeeper"
    destination.mkdir()
    for source in sorted(PACKAGE.glob("*.py")):
        shutil.copyfile(source, destination / source.name)


def find_python(python_version: str) -> str | None:
    """An interpreter of the target version, to compile the bytecode with."""
    candidates = [sys.executable,
                  *sorted(Path(os.path.expanduser("~/.pyenv/versions")).glob(f"{python_version}.*/bin/python3")),
                  shutil.which(f"python{python_version}")]
    for candidate in filter(None, candidates):
        run = subprocess.run([str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True)
        if run.returncode == 0 and run.stdout.strip() == python_version:
            return str(candidate)
    return None


def compile_bytecode(python: str, target: Path) -> None:
    subprocess.run([python, "-m", "compileall", "-q", "-j", "1", "--invalidation-mode", "unchecked-hash",
                    "-d", "/var/task", str(target)], check=True,
                   env={**os.environ, "PYTHONHASHSEED": "0", "SOURCE_DATE_EPOCH": "315532800"})


def write_zip(source: Path, out: Path) -> None:
    files = sorted((path.relative_to(source).as_posix(), path) for path in source.rglob("*") if path.is_file())
    tmp = out.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w") as archive:
        for name, path in files:
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.external_attr = FILE_MODE
            info.create_system = 3  # unix, whatever builds it
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    tmp.replace(out)


def build(arch: str = "arm64", python_version: str = "3.12", out_dir: Path = ROOT / "dist",
          compile_with: str | None = "auto", geoip_db: Path | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = WHEEL_CACHE / f"{arch}-cp{python_version.replace('.', '')}"
    # requirements-geoip.txt is the extra alone (the package's "geoip" extra): both files.
    requirements = (REQUIREMENTS, GEOIP_REQUIREMENTS) if geoip_db else (REQUIREMENTS,)
    with tempfile.TemporaryDirectory(prefix="gatekeeper-zip-") as tmp:
        staging = Path(tmp) / "task"
        cache.mkdir(parents=True, exist_ok=True)
        # One build at a time uses a cache: parallel test workers build too, and pip
        # must not install from a wheel another one is still writing.
        with open(cache / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            download_wheels(arch, python_version, cache, requirements)
            install_wheels(arch, python_version, cache, staging, requirements)
        copy_package(staging)
        if geoip_db:
            (staging / GEOIP_PATH).parent.mkdir()
            shutil.copyfile(geoip_db, staging / GEOIP_PATH)
        python = find_python(python_version) if compile_with == "auto" else compile_with
        if python:
            compile_bytecode(python, staging)
        out = out_dir / zip_name(arch, python_version, geoip=geoip_db is not None)
        write_zip(staging, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="arm64")
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--no-compile", action="store_true", help="leave out the .pyc files")
    parser.add_argument("--geoip-db", type=Path, help="a MaxMind country database to ship (acl.countries)")
    parser.add_argument("--check", action="store_true", help="build twice and fail unless the bytes match")
    args = parser.parse_args(argv)
    compile_with = None if args.no_compile else "auto"
    out = build(args.arch, args.python_version, args.out, compile_with, args.geoip_db)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            again = build(args.arch, args.python_version, Path(tmp), compile_with, args.geoip_db)
            if hashlib.sha256(again.read_bytes()).hexdigest() != digest:
                print(f"{out.name}: two builds differ", file=sys.stderr)
                return 1
    print(f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}  sha256 {digest}"
          f"  {out.stat().st_size} bytes" + ("  (built twice: same bytes)" if args.check else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
