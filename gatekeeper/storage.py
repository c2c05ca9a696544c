"""The customer's bucket, as the gatekeeper sees it: one botocore client (made on first use)
for listing and erasing (every version), another with short timeouts for what health
reports of the bucket, and the presigner fed with the process's AWS credentials.

botocore, not boto3: boto3 adds nothing the gatekeeper uses, and importing it (with
s3transfer) is most of a Lambda cold start (bench/bench_cold_start.py). Even botocore
is imported only when a client is made: signing needs none (presign.py)."""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from .config import StorageConfig
from .errors import ConfigError, StorageUnavailable
from .presign import ENDPOINT_SETTINGS, AwsCredentials, Credentials, Presigner, botocore_places

MAX_LIST_KEYS = 1000
CLIENT_TIMEOUTS = dict(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2})
# Health must answer promptly whatever the bucket does: one attempt, short waits.
PROBE_TIMEOUTS = dict(connect_timeout=1, read_timeout=1.5, retries={"total_max_attempts": 1})
# S3's default-encryption algorithms, in the words of config's storage.encryption.
ENCRYPTION_NAMES = {"AES256": "sse-s3", "aws:kms": "sse-kms", "aws:kms:dsse": "dsse-kms"}
NO_ENCRYPTION_CONFIG = "ServerSideEncryptionConfigurationNotFoundError"
# Why a bucket is unreachable (health's storage_problem), by what HeadBucket answered.
PROBLEMS = {"404": "no_such_bucket", "NoSuchBucket": "no_such_bucket", "403": "access_denied",
            "AccessDenied": "access_denied", "301": "wrong_region", "PermanentRedirect": "wrong_region"}


@dataclass(frozen=True)
class BucketState:
    """The bucket as S3 reports it: reachable (HeadBucket answered 200) and, if so, its
    region and default encryption ("sse-s3", "sse-kms", "dsse-kms", "none", or
    "unknown" when it could not be read); `problem` says why it is not reachable."""
    reachable: bool
    region: str
    encryption: str = "unknown"
    kms_key_id: str = ""
    problem: str = ""


class Storage:
    def __init__(self, config: StorageConfig, aws: AwsCredentials | None = None):
        self.config = config
        self._aws = aws or AwsCredentials()  # app.py passes the audit store's: one botocore session
        self._client_lock = threading.Lock()  # a botocore session is not thread-safe; its clients are
        placed = not config.endpoint_url and botocore_places()
        self.presigner = Presigner(config, self.credentials, self._object_base() if placed else "")

    def credentials(self) -> Credentials:
        # None of them (a role's could not be fetched): a storage failure, refused and audited like one.
        found = self._aws()
        if found is None:
            raise StorageUnavailable("no storage credentials are available", code="storage_credentials")
        return found

    @property
    def origin(self) -> str:
        """scheme://host[:port] of the presigned URLs: the storage origin."""
        return self.presigner.origin

    def _client(self, timeouts: dict, signature_version: object = "s3v4"):
        from botocore.config import Config as BotoConfig

        with self._client_lock:
            return self._aws.session.create_client(
                "s3", region_name=self.config.region, endpoint_url=self.config.endpoint_url or None,
                config=BotoConfig(signature_version=signature_version,
                                  s3={"addressing_style": "path" if self.config.endpoint_url else "virtual"},
                                  **timeouts))

    def _object_base(self) -> str:
        """Where this bucket's objects are as botocore, configured as the clients above,
        places them under the AWS settings in force: its unsigned URL of a key, less the key."""
        from botocore import UNSIGNED
        from botocore.exceptions import BotoCoreError

        try:
            url = self._client(CLIENT_TIMEOUTS, UNSIGNED).generate_presigned_url(
                "get_object", Params={"Bucket": self.config.bucket, "Key": "k"})
        except BotoCoreError as exc:  # e.g. FIPS asked for in a partition without it
            settings = ", ".join(name for name in ENDPOINT_SETTINGS if os.environ.get(name)) or "the AWS config or credentials file"
            raise ConfigError("storage.region", f"{settings} leave S3 no endpoint here: {exc}") from None
        return url.split("?")[0].removesuffix("k")

    @functools.cached_property
    def client(self):
        """Made on first use (it costs milliseconds), then shared: botocore clients are
        thread-safe. Two threads racing here may each make one; one is kept."""
        return self._client(CLIENT_TIMEOUTS)

    @functools.cached_property
    def probe_client(self):
        return self._client(PROBE_TIMEOUTS)

    def describe(self) -> BucketState:
        """HeadBucket, then GetBucketEncryption: never raises, and gives up within a few
        seconds (PROBE_TIMEOUTS). The caller decides how often to ask (app.py caches it)."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        configured = self.config.region
        head_denied = False
        try:
            head = self.probe_client.head_bucket(Bucket=self.config.bucket)
        except ClientError as refused:
            problem = PROBLEMS.get(str(refused.response.get("Error", {}).get("Code")), "refused")
            region = _bucket_region(refused.response) or configured
            if problem != "access_denied":
                return BucketState(False, region, problem=problem)
            # HeadBucket is a ListBucket with no prefix, which the template's role lacks
            # (it may list only under tickets/, or not at all): the encryption read, which
            # the role always has, then says whether the bucket is there.
            head, head_denied = refused.response, True
        except NoCredentialsError:
            return BucketState(False, configured, problem="no_credentials")
        except BotoCoreError:  # no connection, timeouts, a bad answer
            return BucketState(False, configured, problem="no_connection")
        region = _bucket_region(head) or configured
        if region != configured:  # botocore followed S3's redirect; presigned URLs would not
            return BucketState(False, region, problem="wrong_region")
        try:
            rules = self.probe_client.get_bucket_encryption(Bucket=self.config.bucket)[
                "ServerSideEncryptionConfiguration"]["Rules"]
            default = rules[0]["ApplyServerSideEncryptionByDefault"]
        except ClientError as refused:
            code = str(refused.response.get("Error", {}).get("Code"))
            if code == NO_ENCRYPTION_CONFIG:
                return BucketState(True, region, "none")
            if head_denied:
                return BucketState(False, region, problem=PROBLEMS.get(code, "refused"))
            return BucketState(True, region)
        except BotoCoreError:
            return BucketState(not head_denied, region, problem="no_connection" if head_denied else "")
        except (KeyError, IndexError, TypeError):
            return BucketState(True, region)
        algorithm = str(default.get("SSEAlgorithm", ""))
        return BucketState(True, region, ENCRYPTION_NAMES.get(algorithm, "unknown"),
                           str(default.get("KMSMasterKeyID", "")) if "kms" in algorithm else "")

    def _ask(self, method: str, failure: str, **params) -> dict:
        """One S3 call on the bucket; StorageUnavailable(`failure`) if it fails in any way."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.config.bucket, **params)
        except (BotoCoreError, ClientError):
            raise StorageUnavailable(failure) from None

    def list(self, prefix: str) -> tuple[list[dict], bool]:
        page = self._ask("list_objects_v2", "the bucket could not be listed", Prefix=prefix, MaxKeys=MAX_LIST_KEYS)
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

    def versions(self, prefix: str, exact: bool) -> tuple[list[dict], bool]:
        """Every version and delete marker under `prefix` (of the key `prefix` alone when
        `exact`): in a versioned bucket a plain delete only adds a marker, so erasing
        deletes each of these by version id. At most MAX_LIST_KEYS; `truncated`: ask again."""
        page = self._ask("list_object_versions", "the bucket's versions could not be listed",
                         Prefix=prefix, MaxKeys=MAX_LIST_KEYS)
        found = [{"key": v["Key"], "version_id": v["VersionId"], "size": v.get("Size", 0),
                  "delete_marker": "Size" not in v}
                 for v in page.get("Versions", []) + page.get("DeleteMarkers", []) if not exact or v["Key"] == prefix]
        # Keys come in order, a key's versions together: a page that ends past `prefix` holds all of it.
        return found, bool(page.get("IsTruncated")) and (not exact or page.get("NextKeyMarker") == prefix)

    def delete_versions(self, versions: list[dict]) -> list[dict]:
        """DeleteObjects by version id; the versions S3 refused, with its error code."""
        if not versions:
            return []
        answer = self._ask("delete_objects", "the objects could not be deleted", Delete={"Quiet": True, "Objects": [
            {"Key": v["key"], "VersionId": v["version_id"]} for v in versions]})
        return [{"key": e.get("Key", ""), "version_id": e.get("VersionId", ""), "code": str(e.get("Code", ""))[:64]}
                for e in answer.get("Errors", [])]

    def presign_get(self, key: str, ttl: int, now: float) -> str:
        # "attachment": a URL opened directly downloads rather than renders, whatever
        # Content-Type an uploader chose (a text/html object cannot run as a page).
        # fetch() and <img> are unaffected.
        return self.presigner.presign_get(key, ttl, _utc(now), content_disposition="attachment")

    def presign_post(self, key: str, content_type: str, size: int, ttl: int, now: float):
        return self.presigner.presign_post(key, content_type, size, ttl, _utc(now))


def _bucket_region(answer: dict) -> str:
    headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return str(answer.get("BucketRegion") or headers.get("x-amz-bucket-region") or "")


def _utc(now: float) -> datetime:
    return datetime.fromtimestamp(int(now), tz=timezone.utc)
