"""Where AWS settings move the endpoints — FIPS, dual-stack, AWS_ENDPOINT_URL* or an
AWS config file (presign.botocore_places) — the gatekeeper signs for, and sends its
audit records to, exactly where botocore would: its presigned URLs are byte-identical
to botocore's under the same settings, the DynamoDB store's endpoint is botocore's,
a setting that leaves S3 no endpoint refuses to start, and on moto a Lambda placed by
AWS_ENDPOINT_URL_S3 / _DYNAMODB alone uploads, downloads and audits there. Without
them nothing changes: the partition's defaults (tests/gatekeeper/test_presign.py), and
no botocore import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import botocore.session
import pytest
from botocore.config import Config as BotoConfig

from gatekeeper import lambda_handler
from gatekeeper.app import open_store
from gatekeeper.audit_dynamodb import DynamoAuditStore
from gatekeeper.config import StorageConfig
from gatekeeper.errors import ConfigError
from gatekeeper.presign import ENDPOINT_SETTINGS, AwsCredentials, botocore_places
from gatekeeper.storage import Storage
from gatekeeper_client.client import download, upload

from .conftest import GATEKEEPER_ID, ISSUER, ORIGIN, VENDOR_KEY, RunningGatekeeper
from .test_lambda import call, http_api_event
from .test_presign import amz_date_of

ACCESS_KEY, SECRET_KEY, TOKEN = "AKIAENDPOINTTEST0001", "s" * 40, "session-token"
SETTINGS = [
    {"AWS_USE_FIPS_ENDPOINT": "true"},
    {"AWS_USE_DUALSTACK_ENDPOINT": "true"},
    {"AWS_USE_FIPS_ENDPOINT": "true", "AWS_USE_DUALSTACK_ENDPOINT": "true"},
    {"AWS_ENDPOINT_URL": "https://minio.example.com"},
    {"AWS_ENDPOINT_URL_S3": "https://s3.internal.example:9443", "AWS_ENDPOINT_URL_DYNAMODB": "https://ddb.internal.example"},
]
REGIONS = ["us-east-1", "eu-west-1", "us-gov-west-1", "ca-central-1"]
BUCKETS = ["dualkey-reports", "dualkey.reports.example"]


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Only what each test sets: nothing on this machine steers botocore."""
    for name in (*ENDPOINT_SETTINGS, "AWS_PROFILE", "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT",
                 "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    return monkeypatch


def reference_s3(region: str):
    """botocore's client as storage.py configures it, under the settings in force."""
    return botocore.session.Session().create_client(
        "s3", region_name=region, config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "virtual"}))


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "+".join(sorted(s)))
def test_presigned_urls_are_botocores_under_the_settings(aws_env, settings):
    for name, value in settings.items():
        aws_env.setenv(name, value)
    assert botocore_places()
    compared = 0
    for region in REGIONS:
        reference = reference_s3(region)
        for bucket in BUCKETS:
            storage = Storage(StorageConfig(bucket, region), AwsCredentials())
            for key in ("tickets/42/screen shot.png", "tickets/42/ünï/😀.txt"):
                expected = reference.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                                            ExpiresIn=60)
                assert storage.presigner.presign_get(key, 60, amz_date_of(expected)) == expected, (region, bucket)
                compared += 1
            post_url, _ = storage.presigner.presign_post("tickets/42/a.png", "image/png", 10, 60,
                                                         amz_date_of(expected))
            assert post_url == reference.generate_presigned_post(bucket, "tickets/42/a.png")["url"]
            # What health reports as storage_origin, and agents pin uploads to.
            assert expected.startswith(storage.origin + "/")
    assert compared == len(REGIONS) * len(BUCKETS) * 2


def test_fips_puts_the_bucket_on_the_fips_host(aws_env):
    aws_env.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    storage = Storage(StorageConfig("dualkey-reports", "us-gov-west-1"), AwsCredentials())
    assert storage.origin == "https://dualkey-reports.s3-fips.us-gov-west-1.amazonaws.com"


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "+".join(sorted(s)))
def test_the_dynamodb_store_goes_where_botocore_would(aws_env, settings):
    for name, value in settings.items():
        aws_env.setenv(name, value)
    for region in REGIONS:
        expected = botocore.session.Session().create_client("dynamodb", region_name=region).meta.endpoint_url
        store = DynamoAuditStore("gk-audit", 30, None, region, AwsCredentials())
        assert f"{store._url.scheme}://{store._url.netloc}" == expected, region


def test_an_aws_config_file_lets_botocore_place_them_too(aws_env, tmp_path):
    assert not botocore_places()
    config = tmp_path / "aws-config"
    config.write_text("[default]\nuse_fips_endpoint = true\n")
    aws_env.setenv("AWS_CONFIG_FILE", str(config))
    assert botocore_places()
    storage = Storage(StorageConfig("dualkey-reports", "eu-west-1"), AwsCredentials())
    assert storage.origin == "https://dualkey-reports.s3-fips.eu-west-1.amazonaws.com"
    store = DynamoAuditStore("gk-audit", 30, None, "eu-west-1", AwsCredentials())
    assert store._url.netloc == "dynamodb-fips.eu-west-1.amazonaws.com"


def test_a_shared_credentials_file_or_a_home_relative_config_file_counts_too(aws_env, tmp_path, monkeypatch):
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
                           "use_fips_endpoint = true\n")
    aws_env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    assert botocore_places()
    storage = Storage(StorageConfig("dualkey-reports", "eu-west-1"), AwsCredentials())
    assert storage.origin == "https://dualkey-reports.s3-fips.eu-west-1.amazonaws.com"  # as botocore merges it
    aws_env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "cfg").write_text("[default]\n")
    aws_env.setenv("AWS_CONFIG_FILE", "~/cfg")
    assert botocore_places()


def test_storage_endpoint_url_still_wins(aws_env):
    aws_env.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    storage = Storage(StorageConfig("dualkey-reports", "us-east-1", "http://127.0.0.1:9000"), AwsCredentials())
    assert storage.origin == "http://127.0.0.1:9000"


def test_fips_where_the_partition_has_none_refuses_to_start(aws_env):
    aws_env.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    with pytest.raises(ConfigError) as refused:
        Storage(StorageConfig("dualkey-reports", "cn-north-1"), AwsCredentials())
    assert refused.value.key == "storage.region"
    assert "AWS_USE_FIPS_ENDPOINT" in str(refused.value) and SECRET_KEY not in str(refused.value)


def test_without_the_settings_botocore_is_not_imported(aws_env):
    code = ("import sys\n"
            "from gatekeeper.config import StorageConfig\n"
            "from gatekeeper.audit_dynamodb import DynamoAuditStore\n"
            "from gatekeeper.storage import Storage\n"
            "s = Storage(StorageConfig('dualkey-reports', 'eu-west-1'))\n"
            "d = DynamoAuditStore('gk-audit', 30, None, 'eu-west-1')\n"
            "print(s.origin, d._url.netloc, 'botocore' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ}).stdout.split()
    assert out == ["https://dualkey-reports.s3.eu-west-1.amazonaws.com", "dynamodb.eu-west-1.amazonaws.com", "False"]


def test_a_lambda_placed_by_aws_endpoint_urls_alone_works_on_moto(moto_url, s3, monkeypatch):
    """No storage.endpoint_url: AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_DYNAMODB say
    where S3 and DynamoDB are (as a VPC's interface endpoints would), for the signatures,
    the bucket's health and the audit records alike."""
    bucket, table = "placed-reports", "placed-audit"
    s3.create_bucket(Bucket=bucket)
    open_store(f"dynamodb://{table}", 30, endpoint_url=moto_url).create_table()
    env = {
        "GATEKEEPER_GATEKEEPER_ID": GATEKEEPER_ID, "GATEKEEPER_ISSUER": ISSUER,
        "GATEKEEPER_ALLOWED_ORIGINS": ORIGIN, "GATEKEEPER_VENDOR_KEYS": f"{VENDOR_KEY.kid}:{VENDOR_KEY.public_b64}",
        "GATEKEEPER_STORAGE_BUCKET": bucket, "GATEKEEPER_STORAGE_REGION": "us-east-1",
        "GATEKEEPER_AUDIT_URL": f"dynamodb://{table}",
        "AWS_ENDPOINT_URL_S3": moto_url, "AWS_ENDPOINT_URL_DYNAMODB": moto_url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GATEKEEPER_STORAGE_ENDPOINT_URL", raising=False)
    lambda_handler._gatekeeper = None
    try:
        gatekeeper = RunningGatekeeper(url="", bucket=bucket, audit_path=None, proc=None)
        data = b"placed by AWS_ENDPOINT_URL_S3 " * 40
        status, body, _ = call(http_api_event("/v1/sign", body={"ops": [
            {"op": "put", "key": "tickets/42/placed.txt", "size": len(data), "content_type": "text/plain"}]},
            headers={"authorization": f"Bearer {gatekeeper.grant(ops=['put'])}"}))
        assert status == 200, body
        assert body["results"][0]["url"].startswith(moto_url + "/")
        upload(body["results"][0], data)
        assert s3.get_object(Bucket=bucket, Key="tickets/42/placed.txt")["Body"].read() == data
        status, body, _ = call(http_api_event("/v1/sign", body={"ops": [{"op": "get", "key": "tickets/42/placed.txt"}]},
                                              headers={"authorization": f"Bearer {gatekeeper.grant()}"}))
        assert status == 200 and download(body["results"][0]) == data
        status, health, _ = call(http_api_event("/v1/health", method="GET"))
        assert (health["storage_origin"], health["storage"], health["audit"]) == (moto_url, "ok", "ok")
        # The records are in moto's table, where AWS_ENDPOINT_URL_DYNAMODB points.
        store = open_store(f"dynamodb://{table}", 30, endpoint_url=moto_url)
        entries, _ = store.search(store_query(), time.time())
        assert {(e["op"], e["key"], e["outcome"]) for e in entries} >= {
            ("put", "tickets/42/placed.txt", "allow"), ("get", "tickets/42/placed.txt", "allow")}
    finally:
        lambda_handler._gatekeeper = None


def store_query():
    from gatekeeper.audit import PROCESS_CURSOR_KEY, parse_search
    return parse_search(json.loads("{}"), PROCESS_CURSOR_KEY)
