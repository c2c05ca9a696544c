"""Gatekeepers running as real processes on loopback, against moto's server.

The story: the vendor's portal (ISSUER) signs with key k1; the customer runs
gatekeeper "gk-test" in front of its bucket; ORIGIN is the portal's page origin.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from gatekeeper_client.client import GatekeeperClient
from gatekeeper_client.grants import SigningKey, mint_grant, private_key_from_seed
from tests import support

ISSUER = "https://portal.test"
ORIGIN = "https://portal.test"
GATEKEEPER_ID = "gk-test"
VENDOR_KEY = SigningKey("k1", private_key_from_seed(bytes(range(32))))
# Same kid, different key: what a forger without the vendor's private key has.
FORGED_KEY = SigningKey("k1", private_key_from_seed(bytes(range(1, 33))))
UNKNOWN_KEY = SigningKey("k9", private_key_from_seed(bytes(range(2, 34))))
_buckets = itertools.count()


def toml_dumps(data: dict) -> str:
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return "[" + ", ".join(value(x) for x in v) + "]"

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, body in data.items():
        if isinstance(body, dict):
            lines.append(f"\n[{section}]")
            lines += [f"{k} = {value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def base_config(moto_url: str, bucket: str, audit_url: str) -> dict:
    return {
        "gatekeeper_id": GATEKEEPER_ID,
        "issuer": ISSUER,
        "allowed_origins": [ORIGIN],
        "presign_ttl": 60,
        "max_grant_lifetime": 300,
        "clock_leeway": 30,
        "max_upload_bytes": 1024 * 1024,
        "enabled": True,
        "vendor_keys": {VENDOR_KEY.kid: VENDOR_KEY.public_b64},
        "storage": {"bucket": bucket, "region": "us-east-1", "endpoint_url": moto_url},
        "acl": {"allow": ["0.0.0.0/0", "::/0"], "deny": []},
        "acl.upload": {"allow": ["0.0.0.0/0", "::/0"], "deny": []},
        "audit": {"url": audit_url, "retention_days": 30},
        "revocation": {"not_before": 0, "subjects": []},
    }


@dataclass
class RunningGatekeeper:
    url: str
    bucket: str
    audit_path: Path | None
    proc: object

    @property
    def client(self) -> GatekeeperClient:
        return GatekeeperClient(self.url)

    def grant(self, prefix="tickets/42/", ops=("get", "list"), key=VENDOR_KEY, **claims) -> str:
        args = dict(issuer=ISSUER, audience=GATEKEEPER_ID, subject="user:7", name="Bob Staff")
        args.update(claims)
        return mint_grant(key, prefix=prefix, ops=list(ops), **args)

    def audit_rows(self, request_id: str) -> list[dict]:
        """Read the customer's audit log directly from its SQLite file."""
        with sqlite3.connect(self.audit_path) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(
                "SELECT * FROM audit WHERE request_id = ? ORDER BY rowid", (request_id,))]


@pytest.fixture(scope="session")
def s3(moto_url):
    return boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")


@pytest.fixture(scope="session")
def start_gatekeeper(moto_url, s3, tmp_path_factory):
    """Start a gatekeeper process with the base config changed by `changes`
    ({"section": {...}} merges into a section; top-level keys replace)."""
    running = []

    def start(changes: dict | None = None, env: dict | None = None) -> RunningGatekeeper:
        bucket = f"reports-{next(_buckets)}-{os.getpid()}"
        s3.create_bucket(Bucket=bucket)
        workdir = tmp_path_factory.mktemp("gatekeeper")
        audit_path = workdir / "audit.db"
        config = base_config(moto_url, bucket, f"sqlite:///{audit_path}")
        for key, value in (changes or {}).items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
        (workdir / "gatekeeper.toml").write_text(toml_dumps(config))
        if config["audit"]["url"].startswith("dynamodb://"):
            # As an operator would: the CLI creates the table before the first start.
            subprocess.run([support.PYTHON, "-m", "gatekeeper", "init-audit", "--config",
                            str(workdir / "gatekeeper.toml")], check=True, cwd=support.ROOT,
                           env={**os.environ, **support.AWS_ENV, **(env or {})}, capture_output=True)
        port = support.free_port()
        url = f"http://127.0.0.1:{port}"
        proc = support.start_process(
            [support.PYTHON, "-m", "gatekeeper", "serve", "--config", str(workdir / "gatekeeper.toml"),
             "--port", str(port)],
            url + "/v1/health", env=env, log_path=workdir / "gatekeeper.log",
        )
        gk = RunningGatekeeper(url, bucket, audit_path if "sqlite" in config["audit"]["url"] else None, proc)
        running.append(gk)
        return gk

    yield start
    for gk in running:
        support.stop_process(gk.proc)


@pytest.fixture(scope="session")
def gatekeeper(start_gatekeeper) -> RunningGatekeeper:
    """The default gatekeeper: everyone allowed, SQLite audit."""
    return start_gatekeeper()
