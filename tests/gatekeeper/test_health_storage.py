"""/v1/health reports the bucket as S3 reports it (HeadBucket, GetBucketEncryption):
its name, region, default encryption, and `storage: ok | unreachable` with the
reason, asked at most every STORAGE_CHECK_EVERY seconds, and never so that health
fails or waits long. Real gatekeeper processes against moto's server, and
in-process ones with an injected clock for the cache."""

from __future__ import annotations

import itertools
import os
import socket
import time

import boto3
import pytest
import requests

from gatekeeper import config as config_module
from gatekeeper.app import Gatekeeper, Request
from gatekeeper.health import STORAGE_CHECK_EVERY
from gatekeeper.storage import PROBE_TIMEOUTS

from .conftest import base_config, toml_dumps

KMS_KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
_names = itertools.count()


def bucket_name(what: str) -> str:
    return f"health-{what}-{os.getpid()}-{next(_names)}"


def health(gk) -> tuple[int, dict]:
    response = requests.get(gk.url + "/v1/health", timeout=10)
    return response.status_code, response.json()


def test_a_reachable_bucket_is_reported_with_its_region_and_encryption(start_gatekeeper, s3):
    bucket = bucket_name("kms")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KMS_KEY},
        "BucketKeyEnabled": True}]})
    status, body = health(start_gatekeeper({"storage": {"bucket": bucket}}))
    assert status == 200
    assert {k: body[k] for k in ("status", "bucket", "region", "storage", "storage_problem", "encryption",
                                  "kms_key_id", "upload_encryption")} == {
        "status": "ok", "bucket": bucket, "region": "us-east-1", "storage": "ok", "storage_problem": "",
        "encryption": "sse-kms", "kms_key_id": KMS_KEY, "upload_encryption": "sse-s3"}


def test_sse_s3_and_no_default_encryption_are_told_apart(start_gatekeeper, s3):
    bucket = bucket_name("aes")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    assert health(start_gatekeeper({"storage": {"bucket": bucket}}))[1]["encryption"] == "sse-s3"
    plain = start_gatekeeper()  # moto's buckets have no default encryption unless told
    assert (health(plain)[1]["encryption"], health(plain)[1]["kms_key_id"]) == ("none", "")


def test_a_missing_bucket_is_unreachable_not_an_error(start_gatekeeper):
    bucket = bucket_name("missing")  # never created
    status, body = health(start_gatekeeper({"storage": {"bucket": bucket}}))
    assert status == 200
    assert (body["status"], body["storage"], body["storage_problem"]) == ("degraded", "unreachable",
                                                                          "no_such_bucket")
    assert (body["bucket"], body["region"], body["encryption"]) == (bucket, "us-east-1", "unknown")
    assert body["audit"] == "ok"  # the rest of health is still told


def test_a_bucket_in_another_region_is_unreachable_for_presigned_urls(start_gatekeeper, moto_url):
    bucket = bucket_name("elsewhere")
    boto3.client("s3", endpoint_url=moto_url, region_name="eu-west-1").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    body = health(start_gatekeeper({"storage": {"bucket": bucket}}))[1]  # configured: us-east-1
    assert (body["storage"], body["storage_problem"], body["region"]) == ("unreachable", "wrong_region",
                                                                         "eu-west-1")


# --- in-process: the cache, and an endpoint that never answers -------------------------

def in_process(tmp_path, moto_url, bucket, clock, endpoint_url=None) -> Gatekeeper:
    config = base_config(endpoint_url or moto_url, bucket, f"sqlite:///{tmp_path}/audit.db")
    (tmp_path / "gk.toml").write_text(toml_dumps(config))
    return Gatekeeper(config_module.load(str(tmp_path / "gk.toml"), env={}), clock=clock)


def get_health(gk) -> dict:
    response = gk.handle(Request("GET", "/v1/health", {}, b"", "127.0.0.1"))
    assert response.status == 200
    return response.body


def test_health_asks_s3_at_most_every_30_seconds(tmp_path, moto_url, s3):
    bucket = bucket_name("cached")
    s3.create_bucket(Bucket=bucket)
    now = [1_800_000_000.0]
    gk = in_process(tmp_path, moto_url, bucket, lambda: now[0])
    assert get_health(gk)["storage"] == "ok"
    s3.delete_bucket(Bucket=bucket)
    now[0] += STORAGE_CHECK_EVERY - 1
    assert get_health(gk)["storage"] == "ok"  # cached: S3 was not asked again
    now[0] += 1
    assert (get_health(gk)["storage"], get_health(gk)["storage_problem"]) == ("unreachable", "no_such_bucket")
    s3.create_bucket(Bucket=bucket)
    now[0] += STORAGE_CHECK_EVERY - 1
    assert get_health(gk)["storage"] == "unreachable"  # a failure is cached as long
    now[0] += 1
    assert get_health(gk)["storage"] == "ok"
    assert STORAGE_CHECK_EVERY == 30


@pytest.fixture
def silent_endpoint():
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_storage_endpoint_that_never_answers_does_not_hold_health(tmp_path, moto_url, silent_endpoint):
    gk = in_process(tmp_path, moto_url, bucket_name("silent"), time.time, endpoint_url=silent_endpoint)
    started = time.monotonic()
    body = get_health(gk)
    took = time.monotonic() - started
    assert (body["storage"], body["storage_problem"], body["status"]) == ("unreachable", "no_connection",
                                                                          "degraded")
    assert took < PROBE_TIMEOUTS["connect_timeout"] + PROBE_TIMEOUTS["read_timeout"] + 1
    started = time.monotonic()
    get_health(gk)
    assert time.monotonic() - started < 0.5  # the next one is the cached answer


@pytest.mark.parametrize("encryption_answer, expected", [
    ({"ServerSideEncryptionConfiguration": {"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}},
     ("ok", "", "sse-s3")),
    ("ServerSideEncryptionConfigurationNotFoundError", ("ok", "", "none")),
    ("NoSuchBucket", ("unreachable", "no_such_bucket", "unknown")),
    ("AccessDenied", ("unreachable", "access_denied", "unknown")),
])
def test_a_role_that_may_list_only_under_tickets_still_gets_the_bucket_reported(encryption_answer, expected):
    """deploy/aws/gatekeeper.yaml's role has s3:ListBucket only with an s3:prefix of
    tickets/* (or none, with list switched off), so S3 refuses HeadBucket (403); the
    encryption read, which the role always has, then decides. moto does not enforce
    IAM, so S3's answers are stubbed here (botocore's Stubber, in the real client)."""
    from botocore.stub import Stubber

    from gatekeeper.config import StorageConfig
    from gatekeeper.storage import Storage

    storage = Storage(StorageConfig(bucket="acme-reports", region="eu-west-1"))
    with Stubber(storage.probe_client) as stub:
        stub.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
        if isinstance(encryption_answer, dict):
            stub.add_response("get_bucket_encryption", encryption_answer, {"Bucket": "acme-reports"})
        else:
            stub.add_client_error("get_bucket_encryption", service_error_code=encryption_answer,
                                  http_status_code=404 if encryption_answer != "AccessDenied" else 403)
        state = storage.describe()
        stub.assert_no_pending_responses()
    reported = ("ok" if state.reachable else "unreachable", state.problem, state.encryption)
    assert reported == expected
    assert state.region == "eu-west-1"
