"""`manage.py publish_gatekeeper` against moto's S3 through django-storages
(STORAGES["artifacts"]): the template and a real `make gatekeeper-zip` zip land under
gatekeeper/<VERSION>/ with their digests; a published version is never replaced."""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
from io import StringIO

import boto3
from botocore.config import Config
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from gatekeeper import VERSION
from tests.deploy.template import TEMPLATE
from tests.deploy.zipbuild import builder

_buckets = itertools.count()


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory):
    return builder.build("x86_64", "3.12", tmp_path_factory.mktemp("zip"), compile_with=None)


@pytest.fixture
def artifacts(moto_url):
    """A fresh artifact bucket on moto, as STORAGES["artifacts"] names it."""
    bucket = f"artifacts-{os.getpid()}-{next(_buckets)}"
    # moto gives a multipart upload (django-storages' for the ~22 MB zip) a whole-object
    # CRC32 that botocore would check against the parts' composite one: not checked here.
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                      config=Config(response_checksum_validation="when_required"))
    s3.create_bucket(Bucket=bucket)
    storages_setting = {**settings.STORAGES, "artifacts": {**settings.STORAGES["artifacts"], "OPTIONS": {
        **settings.STORAGES["artifacts"]["OPTIONS"], "bucket_name": bucket, "endpoint_url": moto_url,
        "addressing_style": "path"}}}
    with override_settings(STORAGES=storages_setting):
        yield s3, bucket


def publish(*zips, **options) -> str:
    out = StringIO()
    call_command("publish_gatekeeper", *[f"--zip={path}" for path in zips], stdout=out, **options)
    return out.getvalue()


def test_it_publishes_the_template_and_the_zip_with_their_digests(artifacts, built_zip):
    s3, bucket = artifacts
    output = publish(built_zip)
    prefix = f"gatekeeper/{VERSION}/"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted([f"{prefix}gatekeeper.yaml", f"{prefix}gatekeeper.yaml.sha256",
                           f"{prefix}{built_zip.name}", f"{prefix}{built_zip.name}.sha256"])
    for key, source in ((f"{prefix}gatekeeper.yaml", TEMPLATE), (f"{prefix}{built_zip.name}", built_zip)):
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert data == source.read_bytes()
        digest = s3.get_object(Bucket=bucket, Key=key + ".sha256")["Body"].read().decode()
        assert digest == f"{hashlib.sha256(data).hexdigest()}  {source.name}\n"
        assert f"/{bucket}/{key}  sha256 {hashlib.sha256(data).hexdigest()}" in output


def test_publishing_the_same_bytes_again_changes_nothing(artifacts, built_zip):
    s3, bucket = artifacts
    publish(built_zip)
    key = f"gatekeeper/{VERSION}/{built_zip.name}"
    before = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    assert "already published, unchanged" in publish(built_zip)
    assert s3.head_object(Bucket=bucket, Key=key)["ETag"] == before
    assert len(s3.list_objects_v2(Bucket=bucket)["Contents"]) == 4


def test_other_bytes_under_a_published_version_are_refused(artifacts, built_zip, tmp_path):
    s3, bucket = artifacts
    publish(built_zip)
    changed = tmp_path / built_zip.name
    shutil.copyfile(built_zip, changed)
    with open(changed, "ab") as fh:
        fh.write(b"\0")  # still a zip (trailing bytes), other bytes
    with pytest.raises(CommandError, match="already published with other bytes"):
        publish(changed)
    key = f"gatekeeper/{VERSION}/{built_zip.name}"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == built_zip.read_bytes()


def test_a_zip_of_another_version_or_no_gatekeeper_is_refused(artifacts, built_zip, tmp_path):
    other = tmp_path / "gatekeeper-0.9.0-py3.12-arm64.zip"
    shutil.copyfile(built_zip, other)
    with pytest.raises(CommandError, match="is version 0.9.0"):
        publish(other)
    stranger = tmp_path / f"gatekeeper-{VERSION}-py3.12-arm64.zip"
    stranger.write_bytes(b"not a zip")
    with pytest.raises(CommandError, match="holds no gatekeeper"):
        publish(stranger)
    s3, bucket = artifacts
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_without_a_built_zip_it_says_how_to_make_one(artifacts, tmp_path, monkeypatch):
    from tenants.management.commands import publish_gatekeeper

    monkeypatch.setattr(publish_gatekeeper, "DIST", tmp_path)
    with pytest.raises(CommandError, match="make gatekeeper-zip"):
        publish()
