"""Requests that fail part-way, in-process against moto's S3 with chosen failures:
a batch failing at storage (deletes are done last, and the audit log says what was
done; the grant is not used up), and an audit log that takes no writes (health says so)."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import time

from gatekeeper import config as config_module
from gatekeeper.app import Gatekeeper, Request
from gatekeeper.health import HEALTH_PROBE_AFTER
from gatekeeper.config import sqlite_path
from gatekeeper.errors import StorageUnavailable
from gatekeeper.storage import Storage
from gatekeeper_client.grants import mint_grant

from .conftest import GATEKEEPER_ID, ISSUER, VENDOR_KEY, base_config, toml_dumps

_buckets = itertools.count()


class FailingStorage(Storage):
    """The bucket, except that listing fails, and deleting the keys in `broken`;
    with `no_credentials`, the role's credentials cannot be had."""
    broken: set[str] = set()
    no_credentials = False

    def credentials(self):
        if self.no_credentials:
            raise StorageUnavailable("no storage credentials are available", code="storage_credentials")
        return super().credentials()

    def list(self, prefix):
        raise StorageUnavailable("the bucket could not be listed")

    def delete_versions(self, versions):
        if any(v["key"] in self.broken for v in versions):
            raise StorageUnavailable("the objects could not be deleted")
        return super().delete_versions(versions)


def setup(tmp_path, moto_url, s3, *keys):
    bucket = f"partial-{os.getpid()}-{next(_buckets)}"
    s3.create_bucket(Bucket=bucket)
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    path = tmp_path / "gk.toml"
    path.write_text(toml_dumps(base_config(moto_url, bucket, f"sqlite:///{tmp_path}/audit.db")))
    config = config_module.load(str(path), env={})
    return Gatekeeper(config, storage=FailingStorage(config.storage)), bucket


def post(gk, ops, grant=None):
    grant = grant or mint_grant(VENDOR_KEY, issuer=ISSUER, audience=GATEKEEPER_ID, subject="user:1",
                                prefix="tickets/42/", ops=["get", "list", "delete"])
    body = json.dumps({"ops": ops}).encode()
    response = gk.handle(Request("POST", "/v1/sign", {"authorization": f"Bearer {grant}"}, body, "127.0.0.1"))
    with sqlite3.connect(sqlite_path(gk.config.audit_url)) as db:
        rows = db.execute("SELECT op, key, outcome, reason FROM audit WHERE request_id = ? ORDER BY rowid",
                          (dict(response.headers)["X-Request-Id"],)).fetchall()
    return response, rows


def keys(s3, bucket):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_a_failing_list_leaves_the_delete_before_it_undone(tmp_path, moto_url, s3):
    gk, bucket = setup(tmp_path, moto_url, s3, "tickets/42/a")
    response, rows = post(gk, [{"op": "delete", "key": "tickets/42/a"}, {"op": "list", "prefix": "tickets/42/"}])
    assert (response.status, response.body["error"]) == (502, "storage_error")
    assert keys(s3, bucket) == ["tickets/42/a"]  # deletes run last: nothing was done
    assert rows == [("delete", "tickets/42/a", "allow", ""), ("list", "tickets/42/", "allow", ""),
                    ("delete", "tickets/42/a", "deny", "storage_error"),
                    ("list", "tickets/42/", "deny", "storage_error")]


def test_a_delete_done_before_a_failure_keeps_its_allow_record(tmp_path, moto_url, s3):
    gk, bucket = setup(tmp_path, moto_url, s3, "tickets/42/a", "tickets/42/b", "tickets/42/c")
    FailingStorage.broken = {"tickets/42/b"}
    try:
        response, rows = post(gk, [{"op": "delete", "key": "tickets/42/a"}, {"op": "delete", "key": "tickets/42/b"},
                                   {"op": "get", "key": "tickets/42/c"}, {"op": "delete", "key": "tickets/42/c"}])
    finally:
        FailingStorage.broken = set()
    assert (response.status, response.body["error"]) == (502, "storage_error")
    assert keys(s3, bucket) == ["tickets/42/b", "tickets/42/c"]
    # a was deleted: its "allow" is the whole truth. The failed delete, the one not
    # attempted and the get whose URL was never answered are refusals.
    assert [r for r in rows if r[2] == "deny"] == [
        ("delete", "tickets/42/b", "deny", "storage_error"), ("get", "tickets/42/c", "deny", "storage_error"),
        ("delete", "tickets/42/c", "deny", "storage_error")]
    assert len(rows) == 7


def test_a_request_that_fails_at_storage_does_not_use_its_grant_up(tmp_path, moto_url, s3, monkeypatch):
    gk, _ = setup(tmp_path, moto_url, s3, "tickets/42/a")
    grant = mint_grant(VENDOR_KEY, issuer=ISSUER, audience=GATEKEEPER_ID, subject="agent:1",
                       prefix="tickets/42/", ops=["put", "delete", "list"])
    put = [{"op": "put", "key": "tickets/42/b", "size": 3, "content_type": "text/plain"}]
    monkeypatch.setattr(FailingStorage, "no_credentials", True)
    response, rows = post(gk, put, grant)
    assert (response.status, response.body["error"]) == (502, "storage_credentials")
    assert rows[-1] == ("put", "tickets/42/b", "deny", "storage_credentials")
    response, _ = post(gk, [{"op": "delete", "key": "tickets/42/a"}, {"op": "list", "prefix": "tickets/42/"}], grant)
    assert (response.status, response.body["error"]) == (502, "storage_error")  # and again
    monkeypatch.setattr(FailingStorage, "no_credentials", False)
    response, rows = post(gk, put, grant)  # the retry, once storage is back
    assert response.status == 200 and rows == [("put", "tickets/42/b", "allow", "")]
    response, rows = post(gk, put, grant)
    assert (response.status, response.body["error"]) == (403, "grant_reused")


def test_health_says_degraded_while_audit_writes_fail(tmp_path, moto_url, s3):
    gk, _ = setup(tmp_path, moto_url, s3)
    gk.audit.busy_timeout = 0.1
    now = [time.time()]
    gk.clock = lambda: now[0]
    assert gk.health()["audit"] == "ok"  # a probe: nothing written yet
    # Another process holds the write lock: reads still work (WAL), writes do not.
    blocker = sqlite3.connect(sqlite_path(gk.config.audit_url), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        response, _ = post(gk, [{"op": "get", "key": "tickets/42/a"}])
        assert (response.status, response.body["error"]) == (503, "audit_unavailable")
        assert (gk.health()["status"], gk.health()["audit"]) == ("degraded", "unavailable")
        now[0] += HEALTH_PROBE_AFTER + 1  # no write since: the probe writes, and fails
        assert gk.health()["audit"] == "unavailable"
    finally:
        blocker.rollback()
        blocker.close()
    assert gk.health()["audit"] == "unavailable"  # the last write failed, and is recent
    now[0] += HEALTH_PROBE_AFTER + 1
    assert (gk.health()["status"], gk.health()["audit"]) == ("ok", "ok")
    assert post(gk, [{"op": "get", "key": "tickets/42/a"}])[0].status == 200
