"""Erasure through the `delete` op, over HTTP against a gatekeeper process and moto's S3
with versioning on (as deploy/aws/gatekeeper.yaml turns it on): every version and every
delete marker goes, by version id; the answer says which (key, version ids, sizes) with
the request id; the scope check is the same; each erased key is in the audit log.
The page limit and S3 refusing some versions: in-process, with a small page."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3

import pytest

from gatekeeper import app as app_module
from gatekeeper import config as config_module
from gatekeeper import storage as storage_module
from gatekeeper.app import Gatekeeper, Request
from gatekeeper.config import sqlite_path
from gatekeeper.storage import Storage
from gatekeeper_client.grants import mint_grant

from .conftest import GATEKEEPER_ID, ISSUER, VENDOR_KEY, base_config, toml_dumps
from .test_sign import assert_refused, sign

_names = itertools.count()


@pytest.fixture
def versioned(gatekeeper, s3):
    """The gatekeeper's bucket with versioning on, and a fresh ticket prefix in it."""
    s3.put_bucket_versioning(Bucket=gatekeeper.bucket, VersioningConfiguration={"Status": "Enabled"})
    return f"tickets/e{next(_names)}/"


def all_versions(s3, bucket, prefix) -> list[tuple[str, str, bool]]:
    """(key, version id, is a delete marker) of everything S3 still holds under prefix."""
    page = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    return sorted([(v["Key"], v["VersionId"], False) for v in page.get("Versions", [])]
                  + [(m["Key"], m["VersionId"], True) for m in page.get("DeleteMarkers", [])])


def put_versions(s3, bucket, key, *bodies) -> list[str]:
    return [s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"] for body in bodies]


def test_a_plain_delete_in_a_versioned_bucket_would_keep_every_version(gatekeeper, s3, versioned):
    # Why the op deletes by version id: S3's plain delete only adds a marker.
    key = versioned + "a.txt"
    put_versions(s3, gatekeeper.bucket, key, b"one", b"two")
    s3.delete_object(Bucket=gatekeeper.bucket, Key=key)
    assert [marker for *_, marker in all_versions(s3, gatekeeper.bucket, versioned)].count(False) == 2


def test_deleting_a_key_erases_every_version_and_marker_of_it_and_nothing_else(gatekeeper, s3, versioned):
    key, neighbour = versioned + "old.log", versioned + "old.log.bak"
    ids = put_versions(s3, gatekeeper.bucket, key, b"1", b"22", b"333")
    marker = s3.delete_object(Bucket=gatekeeper.bucket, Key=key)["VersionId"]
    put_versions(s3, gatekeeper.bucket, neighbour, b"kept")
    response = sign(gatekeeper, gatekeeper.grant(versioned, ["delete"]), [{"op": "delete", "key": key}])
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert (result["op"], result["key"], result["deleted"], result["failed"], result["truncated"]) == (
        "delete", key, True, [], False)
    [erased] = result["objects"]
    assert erased["key"] == key
    assert sorted((v["version_id"], v["size"], v["delete_marker"]) for v in erased["versions"]) == sorted(
        [(ids[0], 1, False), (ids[1], 2, False), (ids[2], 3, False), (marker, 0, True)])
    remaining = all_versions(s3, gatekeeper.bucket, versioned)
    assert [k for k, *_ in remaining] == [neighbour]


def test_deleting_a_prefix_erases_every_key_under_it_even_those_only_a_marker_hides(gatekeeper, s3, versioned):
    bucket = gatekeeper.bucket
    put_versions(s3, bucket, versioned + "report.json", b"{}", b'{"v":2}')
    put_versions(s3, bucket, versioned + "notes/n1/note.txt", b"hello")
    put_versions(s3, bucket, versioned + "hidden.log", b"gone?")
    s3.delete_object(Bucket=bucket, Key=versioned + "hidden.log")  # listed by no `list` op any more
    other = versioned.rstrip("/") + "0/kept.txt"  # tickets/eN0/: not under tickets/eN/
    put_versions(s3, bucket, other, b"kept")
    before = all_versions(s3, bucket, versioned)
    assert len(before) == 5

    response = sign(gatekeeper, gatekeeper.grant(versioned, ["delete"]), [{"op": "delete", "prefix": versioned}])
    assert response.status_code == 200, response.text
    body = response.json()
    [result] = body["results"]
    assert (result["prefix"], result["deleted"], result["truncated"]) == (versioned, True, False)
    assert body["request_id"] == response.headers["X-Request-Id"]
    answered = sorted((o["key"], v["version_id"], v["delete_marker"]) for o in result["objects"]
                      for v in o["versions"])
    assert answered == before
    sizes = {o["key"]: sorted(v["size"] for v in o["versions"]) for o in result["objects"]}
    assert sizes == {versioned + "report.json": [2, 7], versioned + "notes/n1/note.txt": [5],
                     versioned + "hidden.log": [0, 5]}
    assert all_versions(s3, bucket, versioned) == []
    assert [k for k, *_ in all_versions(s3, bucket, other)] == [other]
    # The customer's log: the op, then each key it erased, all before anything went.
    rows = gatekeeper.audit_rows(body["request_id"])
    assert [(r["op"], r["key"], r["outcome"]) for r in rows] == [("delete", versioned, "allow")] + [
        ("delete", key, "allow") for key in sorted({k for k, *_ in before})]


def test_erasing_again_finds_nothing_and_says_so(gatekeeper, s3, versioned):
    put_versions(s3, gatekeeper.bucket, versioned + "a", b"x")
    for expected in (1, 0):
        [result] = gatekeeper.client.sign(gatekeeper.grant(versioned, ["delete"]),
                                          [{"op": "delete", "prefix": versioned}])
        assert (len(result["objects"]), result["deleted"]) == (expected, True)


@pytest.mark.parametrize("prefix", ["tickets/", "tickets/e", "tickets/other/"])
def test_a_prefix_wider_than_or_beside_the_grant_is_refused_and_nothing_goes(gatekeeper, s3, versioned, prefix):
    put_versions(s3, gatekeeper.bucket, versioned + "a", b"x")
    response = sign(gatekeeper, gatekeeper.grant(versioned, ["delete"]), [{"op": "delete", "prefix": prefix}])
    assert_refused(gatekeeper, response, 403, "out_of_scope", op="delete")
    assert len(all_versions(s3, gatekeeper.bucket, versioned)) == 1


@pytest.mark.parametrize("op", [
    {"op": "delete", "prefix": "tickets/42/", "key": "tickets/42/a"},
    {"op": "delete", "prefix": "tickets/42/../"},
    {"op": "delete", "prefix": ""},
    {"op": "delete", "prefix": 7},
])
def test_a_malformed_erase_is_a_400_with_its_reason(gatekeeper, op):
    response = sign(gatekeeper, gatekeeper.grant("tickets/42/", ["delete"]), [op])
    assert response.status_code == 400 and response.json()["error"] in ("bad_op", "bad_key"), response.text


def test_an_erase_needs_the_delete_op_in_its_grant(gatekeeper, versioned):
    response = sign(gatekeeper, gatekeeper.grant(versioned, ["get", "list"]), [{"op": "delete", "prefix": versioned}])
    assert_refused(gatekeeper, response, 403, "op_not_granted", op="delete")


def test_a_gatekeeper_auditing_to_dynamodb_records_each_erased_key(start_gatekeeper, s3):
    gk = start_gatekeeper({"audit": {"url": "dynamodb://gk-erase-audit"}})
    s3.put_bucket_versioning(Bucket=gk.bucket, VersioningConfiguration={"Status": "Enabled"})
    for name in ("a", "b", "c"):
        put_versions(s3, gk.bucket, f"tickets/42/{name}", b"1", b"2")
    [result] = gk.client.sign(gk.grant("tickets/42/", ["delete"]), [{"op": "delete", "prefix": "tickets/42/"}])
    assert result["deleted"] and all_versions(s3, gk.bucket, "tickets/42/") == []
    entries = gk.client.audit_search(gk.grant("tickets/", ["audit"]), op="delete")["entries"]
    assert sorted(e["key"] for e in entries) == ["tickets/42/", "tickets/42/a", "tickets/42/b", "tickets/42/c"]


# --- in-process: the page limit, and versions S3 refuses to delete ------------------------

class RefusingStorage(Storage):
    """Deletes like S3, except that it reports the versions of `refused` keys as AccessDenied."""
    refused: set[str] = set()

    def delete_versions(self, versions):
        kept = [v for v in versions if v["key"] in self.refused]
        failed = super().delete_versions([v for v in versions if v["key"] not in self.refused])
        return failed + [{"key": v["key"], "version_id": v["version_id"], "code": "AccessDenied"} for v in kept]


@pytest.fixture
def in_process(tmp_path, moto_url, s3):
    bucket = f"erase-{os.getpid()}-{next(_names)}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    path = tmp_path / "gk.toml"
    path.write_text(toml_dumps(base_config(moto_url, bucket, f"sqlite:///{tmp_path}/audit.db")))
    config = config_module.load(str(path), env={})
    return Gatekeeper(config, storage=RefusingStorage(config.storage)), bucket


def erase(gk, op) -> dict:
    grant = mint_grant(VENDOR_KEY, issuer=ISSUER, audience=GATEKEEPER_ID, subject="user:1",
                       prefix="tickets/42/", ops=["delete"])
    response = gk.handle(Request("POST", "/v1/sign", {"authorization": f"Bearer {grant}"},
                                 json.dumps({"ops": [op]}).encode(), "127.0.0.1"))
    assert response.status == 200, response.body
    return response.body["results"][0]


def test_past_a_page_of_versions_the_answer_is_truncated_and_asking_again_finishes(in_process, s3, monkeypatch):
    gk, bucket = in_process
    monkeypatch.setattr(storage_module, "MAX_LIST_KEYS", 3)
    put_versions(s3, bucket, "tickets/42/a", b"1", b"2", b"3", b"4")
    put_versions(s3, bucket, "tickets/42/b", b"5")
    seen = []
    for _ in range(3):
        result = erase(gk, {"op": "delete", "prefix": "tickets/42/"})
        seen += [v["version_id"] for o in result["objects"] for v in o["versions"]]
        if not result["truncated"]:
            break
    assert result["deleted"] and len(seen) == len(set(seen)) == 5
    assert all_versions(s3, bucket, "tickets/42/") == []


def test_past_the_keys_one_audit_write_holds_the_answer_is_truncated(in_process, s3, monkeypatch):
    # The keys' records are one audit write (DynamoDB: one transaction of at most 100 items).
    gk, bucket = in_process
    monkeypatch.setattr(app_module, "MAX_ERASE_KEYS", 2)
    for name in "abc":
        put_versions(s3, bucket, f"tickets/42/{name}", b"1", b"2")
    result = erase(gk, {"op": "delete", "prefix": "tickets/42/"})
    assert ([o["key"] for o in result["objects"]], result["truncated"]) == (["tickets/42/a", "tickets/42/b"], True)
    assert {k for k, *_ in all_versions(s3, bucket, "tickets/42/")} == {"tickets/42/c"}
    assert erase(gk, {"op": "delete", "prefix": "tickets/42/"})["deleted"] is True
    assert all_versions(s3, bucket, "tickets/42/") == []


def test_one_key_whose_versions_end_the_page_is_not_truncated(in_process, s3, monkeypatch):
    gk, bucket = in_process
    monkeypatch.setattr(storage_module, "MAX_LIST_KEYS", 3)
    put_versions(s3, bucket, "tickets/42/a", b"1", b"2")
    put_versions(s3, bucket, "tickets/42/ab", b"3", b"4")  # listed after a's versions, not erased
    result = erase(gk, {"op": "delete", "key": "tickets/42/a"})
    assert (result["truncated"], result["deleted"], len(result["objects"][0]["versions"])) == (False, True, 2)
    assert {k for k, *_ in all_versions(s3, bucket, "tickets/42/")} == {"tickets/42/ab"}


def test_versions_s3_refuses_are_reported_not_claimed(in_process, s3, monkeypatch):
    gk, bucket = in_process
    monkeypatch.setattr(RefusingStorage, "refused", {"tickets/42/locked"})
    [locked] = put_versions(s3, bucket, "tickets/42/locked", b"held")
    put_versions(s3, bucket, "tickets/42/free", b"x")
    result = erase(gk, {"op": "delete", "prefix": "tickets/42/"})
    assert result["deleted"] is False
    assert result["failed"] == [{"key": "tickets/42/locked", "version_id": locked, "code": "AccessDenied"}]
    assert [o["key"] for o in result["objects"]] == ["tickets/42/free"]
    assert all_versions(s3, bucket, "tickets/42/") == [("tickets/42/locked", locked, False)]
    with sqlite3.connect(sqlite_path(gk.config.audit_url)) as db:
        assert db.execute("SELECT count(*) FROM audit WHERE op = 'delete'").fetchone()[0] == 3
