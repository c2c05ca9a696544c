"""Two real gatekeeper processes, each in front of its own versioned moto bucket, for
the move worker's tests: tenant A's vendor-hosted location (the source) and a
customer location of A's (the destination). The grants' keys are tenant A's, read
from the test's database when the gatekeepers start."""

from __future__ import annotations

import hashlib
import itertools
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import boto3
from django.conf import settings
from django.utils import timezone

from tenants.models import StorageLocation, Tenant
from tenants.signing import trusted_public_keys
from tests import support
from tests.gatekeeper.conftest import base_config, toml_dumps

_buckets = itertools.count()


@dataclass
class RunningGatekeeper:
    url: str
    gatekeeper_id: str
    bucket: str
    audit_path: Path
    proc: object

    def audit_rows(self) -> list[dict]:
        with sqlite3.connect(self.audit_path) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM audit ORDER BY id")]

    def stop(self):
        support.stop_process(self.proc)

    def restart(self):
        """The same configuration on the same port (after `stop`)."""
        self.proc = _serve(self.audit_path.parent, self.url.rsplit(":", 1)[1])


def start_gatekeeper(moto_url: str, workdir: Path, gatekeeper_id: str, public_keys: dict,
                     max_upload_bytes: int = 200 * 1024**2, issuer: str | None = None) -> RunningGatekeeper:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    bucket = f"{gatekeeper_id}-{os.getpid()}-{next(_buckets)}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    workdir.mkdir(parents=True, exist_ok=True)
    audit = workdir / "audit.db"
    config = base_config(moto_url, bucket, f"sqlite:///{audit}")
    config.update(gatekeeper_id=gatekeeper_id, issuer=issuer or settings.DUALKEY_PORTAL_ORIGIN, vendor_keys=public_keys,
                  max_upload_bytes=max_upload_bytes, presign_ttl=600)
    (workdir / "gatekeeper.toml").write_text(toml_dumps(config))
    port = str(support.free_port())
    return RunningGatekeeper(f"http://127.0.0.1:{port}", gatekeeper_id, bucket, audit, _serve(workdir, port))


def _serve(workdir: Path, port: str):
    return support.start_process([support.PYTHON, "-m", "gatekeeper", "serve", "--config",
                                  str(workdir / "gatekeeper.toml"), "--port", port],
                                 f"http://127.0.0.1:{port}/v1/health", log_path=workdir / f"gatekeeper-{os.urandom(2).hex()}.log")


def public_keys(tenant: Tenant) -> dict:
    return {k.kid: k.public_key for k in trusted_public_keys(tenant)}


def point_locations(tenant: Tenant, source_gk: RunningGatekeeper, destination_gk: RunningGatekeeper,
                    moto_url: str) -> tuple[StorageLocation, StorageLocation]:
    """Tenant A's vendor-hosted location, draining, in front of `source_gk`; a new
    active customer location in front of `destination_gk` (as a cut over leaves them)."""
    from tenants.locations import active_location

    source = active_location(tenant)
    StorageLocation.objects.filter(pk=source.pk).update(
        gatekeeper_url=source_gk.url, gatekeeper_id=source_gk.gatekeeper_id, storage_origin=moto_url,
        reported_bucket=source_gk.bucket, state=StorageLocation.State.DRAINING)
    source.refresh_from_db()
    now = timezone.now()
    destination = StorageLocation.objects.create(
        tenant=tenant, kind=Tenant.DataLocation.CUSTOMER, gatekeeper_url=destination_gk.url,
        gatekeeper_id=destination_gk.gatekeeper_id, storage_origin=moto_url, reported_bucket=destination_gk.bucket,
        state=StorageLocation.State.ACTIVE, state_changed_at=now, created_at=now)
    return source, destination


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
