"""The customer's bucket, as the gatekeeper sees it: one boto3 client (made on first use) for
listing and deleting, and the presigner fed with the same session's credentials."""

from __future__ import annotations

import functools
from datetime import datetime, timezone

import boto3
import botocore.exceptions
from botocore.config import Config as BotoConfig

from .config import StorageConfig
from .errors import StorageUnavailable
from .presign import Credentials, Presigner

MAX_LIST_KEYS = 1000
CLIENT_TIMEOUTS = dict(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2})


class Storage:
    def __init__(self, config: StorageConfig):
        self.config = config
        self._session = boto3.session.Session(region_name=config.region)
        self.presigner = Presigner(config, self.credentials)

    def credentials(self) -> Credentials:
        # Role credentials are fetched (and refreshed) from a metadata endpoint,
        # which can fail: that is a storage failure, refused and audited like one.
        try:
            found = self._session.get_credentials()
            frozen = found.get_frozen_credentials() if found is not None else None
        except botocore.exceptions.BotoCoreError:
            frozen = None
        if frozen is None:
            raise StorageUnavailable("no storage credentials are available", code="storage_credentials")
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    @property
    def origin(self) -> str:
        """scheme://host[:port] of the presigned URLs: the storage origin."""
        return self.presigner.origin

    @functools.cached_property
    def client(self):
        """Made on first use (it costs milliseconds), then shared: boto3 clients are
        thread-safe. Two threads racing here may each make one; one is kept."""
        return self._session.client("s3", endpoint_url=self.config.endpoint_url or None, config=BotoConfig(
            signature_version="s3v4", s3={"addressing_style": "path" if self.config.endpoint_url else "virtual"},
            **CLIENT_TIMEOUTS))

    def list(self, prefix: str) -> tuple[list[dict], bool]:
        try:
            page = self.client.list_objects_v2(
                Bucket=self.config.bucket, Prefix=prefix, MaxKeys=MAX_LIST_KEYS
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            raise StorageUnavailable("the bucket could not be listed") from None
        objects = [
            {
                "key": item["Key"],
                "size": item["Size"],
                "etag": item["ETag"].strip('"'),
                "last_modified": item["LastModified"].astimezone(timezone.utc).isoformat(),
            }
            for item in page.get("Contents", [])
        ]
        return objects, bool(page.get("IsTruncated"))

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.config.bucket, Key=key)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            raise StorageUnavailable("the object could not be deleted") from None

    def presign_get(self, key: str, ttl: int, now: float) -> str:
        # "attachment": a URL opened directly downloads rather than renders, whatever
        # Content-Type an uploader chose (a text/html object cannot run as a page).
        # fetch() and <img> are unaffected.
        return self.presigner.presign_get(key, ttl, _utc(now), content_disposition="attachment")

    def presign_post(self, key: str, content_type: str, size: int, ttl: int, now: float):
        return self.presigner.presign_post(key, content_type, size, ttl, _utc(now))


def _utc(now: float) -> datetime:
    return datetime.fromtimestamp(int(now), tz=timezone.utc)
