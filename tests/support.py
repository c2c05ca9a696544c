"""Shared helpers for tests that run real processes on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# Credentials for moto's server: any non-empty values work there.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    """Until something accepts TCP connections on 127.0.0.1:port (an SMTP server, say)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not accept connections within {timeout}s")


def start_process(args: list[str], ready_url: str, env: dict | None = None,
                  log_path: Path | None = None) -> subprocess.Popen:
    full_env = {**os.environ, **AWS_ENV, **(env or {})}
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(args, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_http(ready_url, proc)
    except Exception:
        proc.kill()
        raise
    return proc


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_moto(log_path: Path | None = None) -> tuple[subprocess.Popen, str]:
    """moto's S3/DynamoDB server on a free loopback port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_process([PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                         url + "/moto-api/", log_path=log_path)
    return proc, url


def set_active_location(tenant, **values):
    """A test's shortcut for what the storage form (tenants.locations.edit_in_place)
    or a cut over would do: the tenant's active location takes these values (tenant
    field names: gatekeeper_url, gatekeeper_id, storage_origin, bucket, region,
    data_location) and the tenant mirrors it. Tenant.save no longer writes a location."""
    from tenants.locations import MIRROR, active_location, mirror_from_active
    from tenants.models import StorageLocation

    location = active_location(tenant)
    StorageLocation.objects.filter(pk=location.pk).update(**{MIRROR[name]: value for name, value in values.items()})
    mirror_from_active(tenant)
    return location


def record_passed_verification(tenant, actor, *, now=None):
    """What the admin's browser's verification posts when every check passes, for the
    location the checklist follows (tenants/onboarding.py): a cut over needs it."""
    from tenants import onboarding

    return onboarding.record_verification(tenant, actor, {name: "pass" for name in onboarding.MUST_PASS}, now=now)


def receipts_in(bucket: str, endpoint_url: str):
    """STORAGES["receipts"] (the vendor's erasure receipts) in this moto bucket, for a test."""
    from django.conf import settings
    from django.test import override_settings

    receipts = settings.STORAGES["receipts"]
    return override_settings(STORAGES={**settings.STORAGES, "receipts": {**receipts, "OPTIONS": {
        **receipts["OPTIONS"], "bucket_name": bucket, "endpoint_url": endpoint_url, "addressing_style": "path"}}})
