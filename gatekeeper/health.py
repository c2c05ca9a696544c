"""What GET /v1/health says of this gatekeeper: a report, not a decision.

The audit log is ok if its last write worked: a read would succeed while every
write (and so every request) fails; without a recent write, a probe writes. The
bucket: as S3 reported it at most STORAGE_CHECK_EVERY seconds ago, so that a
health check every second costs the bucket two requests (HeadBucket,
GetBucketEncryption) per 30 s, not two per second. The rest is the configuration
the portal and the customer's own checks compare with what they expect.
"""

from __future__ import annotations

import math
import threading

from . import PROTOCOL, VERSION
from .audit import AuditStore
from .config import Config
from .errors import OPS
from .storage import BucketState, Storage

HEALTH_PROBE_AFTER = 10  # seconds without an audit write after which health writes a probe
STORAGE_CHECK_EVERY = 30
FEATURES = ("approvals", "prefixes")  # what health lists beyond protocol 1 (docs/protocol.md, §2)


class Health:
    def __init__(self, config: Config, storage: Storage, audit: AuditStore):
        self.config, self.storage, self.audit = config, storage, audit
        self.last_write = (-math.inf, False)  # (when, whether it worked)
        self.bucket_checked: tuple[float, BucketState | None] = (-math.inf, None)  # (when, what S3 said)
        self.bucket_lock = threading.Lock()  # one thread asks S3; the others wait for its answer

    def wrote(self, now: float, ok: bool) -> None:
        """An audit write (or claim) at `now` worked, or failed."""
        self.last_write = (now, ok)

    def bucket(self, now: float) -> BucketState:
        """What S3 last said of the bucket, asked again when STORAGE_CHECK_EVERY has passed."""
        with self.bucket_lock:
            when, state = self.bucket_checked
            if state is None or now - when >= STORAGE_CHECK_EVERY:
                state = self.storage.describe()
                self.bucket_checked = (now, state)
            return state

    def report(self, now: float) -> dict:
        config, identity = self.config, self.config.identity
        when, audit_ok = self.last_write
        if now - when > HEALTH_PROBE_AFTER:
            audit_ok = self.audit.healthy()
            self.last_write = (now, audit_ok)
        bucket = self.bucket(now)
        return {
            "status": "ok" if audit_ok and bucket.reachable and config.enabled else "degraded",
            "gatekeeper_id": config.gatekeeper_id,
            "version": VERSION,
            "protocol": PROTOCOL,
            "features": sorted(FEATURES + (("identity",) if identity else ())),
            "identity": {"issuer": identity.issuer, "audience": identity.audience,
                         "ops": sorted(identity.ops)} if identity else None,
            "approvers": sorted(config.approver_keys),
            "approvals_required": config.approvers_required,
            "vendor_kids": list(config.vendor_key_ids),
            "time": int(now),
            "enabled": config.enabled,
            "allowed_ops": [op for op in OPS if op in config.allowed_ops],
            "storage_origin": self.storage.origin,
            "bucket": config.storage.bucket,
            "region": bucket.region,
            "storage": "ok" if bucket.reachable else "unreachable",
            "storage_problem": bucket.problem,
            "encryption": bucket.encryption,
            "kms_key_id": bucket.kms_key_id,
            "upload_encryption": config.storage.encryption,
            "audit": "ok" if audit_ok else "unavailable",
        }
