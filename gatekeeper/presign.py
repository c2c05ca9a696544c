"""S3 presigned GET URLs and POST policies, and the signed headers of the DynamoDB
audit store's requests: AWS Signature Version 4 by hand.

Why not botocore's presigner: it costs well over 100 µs a URL (endpoint rules,
event hooks, request objects; this takes ~12 µs), and a report page asks for
dozens. SigV4 itself is a few HMACs over a canonical string, so this module does
exactly that with the standard library, and tests/gatekeeper/test_presign.py
proves it byte-identical to botocore (client config: signature_version="s3v4",
addressing_style "virtual", or "path" with an endpoint_url).

What we reproduce from botocore, because it is what S3 (and every other SDK)
expects:
- a custom endpoint_url means path style: {endpoint}/{bucket}/{key};
- otherwise virtual-hosted https://{bucket}.s3.{region}.{dns suffix}/{key}, except
  that a bucket name that is not a single DNS label (dots: the wildcard TLS
  certificate would not match; under 3 characters; upper case) falls back to path
  style on the regional host;
- us-east-1 uses the legacy global host s3.amazonaws.com (botocore's default; we
  do not read AWS_S3_US_EAST_1_REGIONAL_ENDPOINT);
- the key is percent-encoded once as UTF-8, keeping only "/" and "~" (and
  letters, digits, "-", "_", "."); it is not normalised: "a/./b" stays as is,
  and a browser would then fetch "a/b" (one more reason the protocol refuses
  "." and ".." segments before anything is signed);
- the POST URL ends in "/" with the bucket in the host name, and not otherwise.

Where AWS settings move botocore's endpoints (ENDPOINT_SETTINGS: FIPS, dual-stack,
AWS_ENDPOINT_URL*, or an AWS config or credentials file, whose profile may say the same), the
rules above are not ours to guess: storage.py asks botocore once, at start, where
the bucket's objects are (`object_base`), and signs for that; the DynamoDB store
asks it for its endpoint too (`AwsCredentials.endpoint_of`).

Reference: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
and https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html

For DynamoDB, `sign_headers` signs a request's headers as botocore's SigV4Auth does
(tests/gatekeeper/test_dynamodb_wire.py proves the Authorization header identical), so that
a Lambda's cold start need not import botocore at all (bench/bench_cold_start.py);
`AwsCredentials` finds the credentials without it when the environment has them.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import hmac
import importlib.util
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import quote, urlsplit

from .config import StorageConfig
from .paths import is_int

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
# Presigned URLs never know the body they will fetch.
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
SIGNED_HEADERS = "host"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
POLICY_EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# SigV4 presigned requests are valid for at most seven days (S3 refuses more).
MAX_EXPIRES_IN = 7 * 24 * 3600
# A single POST upload is at most 5 GiB.
MAX_POST_BYTES = 5 * 1024**3
# Signing keys change daily and per secret; a few cover a date change and a
# credential rotation happening at once, without growing with time.
SIGNING_KEY_CACHE_SIZE = 4

# Characters left as they are: in the key path (botocore's greedy-label
# encoding) and in query values (RFC 3986 unreserved).
KEY_SAFE = "/~"
QUERY_SAFE = "-_.~"

SSE_FIELDS = {
    "sse-s3": {"x-amz-server-side-encryption": "AES256"},
    "sse-kms": {"x-amz-server-side-encryption": "aws:kms"},
}
KMS_KEY_FIELD = "x-amz-server-side-encryption-aws-kms-key-id"

# Any region no partition names or matches is in the "aws" partition, as botocore assumes.
DEFAULT_DNS_SUFFIX = "amazonaws.com"
LEGACY_GLOBAL_REGION = "us-east-1"
LEGACY_GLOBAL_HOST = "s3.amazonaws.com"
# One DNS label of 3-63 lower-case letters, digits and inner hyphens: the
# bucket names that botocore puts in the host name.
VIRTUAL_HOSTABLE_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
# Names that need no escaping in a URL path (botocore refuses anything else).
PLAIN_BUCKET = re.compile(r"^[A-Za-z0-9._-]{1,255}$")
DEFAULT_PORTS = {"http": 80, "https": 443}
# AWS settings that move botocore's S3 and DynamoDB endpoints (botocore_places).
ENDPOINT_SETTINGS = ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT", "AWS_ENDPOINT_URL",
                     "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB")


@dataclass(frozen=True)
class Credentials:
    access_key: str
    # Kept out of repr() so that logging a Credentials never leaks a secret.
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


class Presigner:
    """Signs GET URLs and POST uploads for one bucket.

    `credentials` is called for every signature, so temporary credentials that
    something else refreshes (e.g. a boto3 session's) are always current; it
    must be cheap.
    """

    def __init__(self, storage: StorageConfig, credentials: Callable[[], Credentials], object_base: str = ""):
        """`object_base`: where botocore puts the bucket's objects (the URL before a key:
        https://BUCKET.HOST/ or https://HOST/BUCKET/), when AWS settings place the
        endpoint (botocore_places); "" for the rules above."""
        if not PLAIN_BUCKET.match(storage.bucket):
            raise ValueError(f"bucket name {storage.bucket!r} is not valid")
        if storage.encryption not in SSE_FIELDS:
            raise ValueError(f"unknown encryption mode {storage.encryption!r}")
        self._storage = storage
        self._credentials = credentials
        self._signer = Signer(storage.region, SERVICE)
        self._sse_fields = dict(SSE_FIELDS[storage.encryption])
        if storage.encryption == "sse-kms":
            self._sse_fields[KMS_KEY_FIELD] = storage.kms_key_id
        # Everything that depends only on the bucket is worked out once:
        # the signed host header, the URL before the key, and its path part.
        bucket = storage.bucket
        if object_base:
            parts = urlsplit(object_base)
            if parts.path not in ("/", f"/{bucket}/") or parts.query or parts.fragment:
                raise ValueError(f"object base {object_base!r} is not BUCKET.HOST/ or HOST/BUCKET/")
            base, self._host = split_endpoint(f"{parts.scheme}://{parts.netloc}")
            bucket_in_host = parts.path == "/"
        elif storage.endpoint_url:
            base, self._host = split_endpoint(storage.endpoint_url)
            bucket_in_host = False
        else:
            s3_host = _s3_host(storage.region)
            bucket_in_host = VIRTUAL_HOSTABLE_BUCKET.match(bucket) is not None
            self._host = f"{bucket}.{s3_host}" if bucket_in_host else s3_host
            base = f"https://{self._host}"
        self._path_prefix = "/" if bucket_in_host else f"/{bucket}/"
        # Where every URL it signs points: what health reports, so that an agent
        # can refuse upload URLs to anywhere else (docs/agent.md).
        self.origin = f"{urlsplit(base).scheme}://{self._host}"
        self._object_prefix = base + self._path_prefix
        # botocore's POST URL ends in "/" only when the bucket is in the host.
        self._post_url = f"{base}/" if bucket_in_host else f"{base}/{bucket}"

    def presign_get(self, key: str, expires_in: int, now: datetime.datetime,
                    content_disposition: str | None = None) -> str:
        """A URL that lets its holder GET `key` for `expires_in` seconds from `now`.
        With `content_disposition`, S3 answers with that Content-Disposition header
        (the signed `response-content-disposition` parameter)."""
        creds, amz_date, scope = self._begin(key, expires_in, now)
        # botocore's order in the URL; the canonical form sorts them below.
        params = [("response-content-disposition", content_disposition)] if content_disposition else []
        params += [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", f"{creds.access_key}/{scope}"),
            ("X-Amz-Date", amz_date),
            ("X-Amz-Expires", str(expires_in)),
            ("X-Amz-SignedHeaders", SIGNED_HEADERS),
        ]
        if creds.token is not None:
            params.append(("X-Amz-Security-Token", creds.token))
        encoded = [(name, quote(value, safe=QUERY_SAFE)) for name, value in params]
        query = "&".join(f"{name}={value}" for name, value in encoded)
        canonical_query = "&".join(f"{name}={value}" for name, value in sorted(encoded))

        quoted_key = quote(key.encode("utf-8"), safe=KEY_SAFE)
        canonical_request = "\n".join((
            "GET",
            self._path_prefix + quoted_key,
            canonical_query,
            f"host:{self._host}\n",  # the canonical headers end with a newline
            SIGNED_HEADERS,
            UNSIGNED_PAYLOAD,
        ))
        signature = self._signer.sign_request(creds.secret_key, amz_date, canonical_request)
        return f"{self._object_prefix}{quoted_key}?{query}&X-Amz-Signature={signature}"

    def presign_post(
        self, key: str, content_type: str, size: int, expires_in: int, now: datetime.datetime
    ) -> tuple[str, dict[str, str]]:
        """A browser-style POST upload of exactly `key`, `content_type` and `size` bytes.

        Returns (url, form fields); the file goes in a last form field "file".
        Every field the uploader sends is fixed by an exact condition in the
        signed policy, so S3 itself refuses any other key, type, size or
        encryption.
        """
        if not _is_int_in(size, 0, MAX_POST_BYTES):
            raise ValueError(f"size must be an integer from 0 to {MAX_POST_BYTES}")
        creds, amz_date, scope = self._begin(key, expires_in, now)
        auth_fields = {
            "x-amz-algorithm": ALGORITHM,
            "x-amz-credential": f"{creds.access_key}/{scope}",
            "x-amz-date": amz_date,
        }
        if creds.token is not None:
            auth_fields["x-amz-security-token"] = creds.token
        expiration = _utc(now) + datetime.timedelta(seconds=expires_in)
        policy = {
            "expiration": expiration.strftime(POLICY_EXPIRATION_FORMAT),
            "conditions": [
                {"bucket": self._storage.bucket},
                ["eq", "$key", key],
                ["eq", "$Content-Type", content_type],
                ["content-length-range", size, size],
                *({name: value} for name, value in self._sse_fields.items()),
                *({name: value} for name, value in auth_fields.items()),
            ],
        }
        # json.dumps' defaults, as botocore encodes its policies.
        encoded_policy = base64.b64encode(json.dumps(policy).encode("utf-8")).decode("ascii")
        fields = {"key": key, "Content-Type": content_type, **self._sse_fields, **auth_fields}
        fields["policy"] = encoded_policy
        # For POST, the string to sign is the base64 policy itself.
        fields["x-amz-signature"] = self._signer.sign(creds.secret_key, amz_date, encoded_policy)
        return self._post_url, fields

    def _begin(self, key: str, expires_in: int, now: datetime.datetime) -> tuple[Credentials, str, str]:
        """What every signature starts with: the last checks of its key and lifetime,
        the credentials, the date and the credential scope."""
        # Callers validate keys against the grant; this is the last line: an empty
        # key would sign a GET of the bucket itself, which S3 answers with a listing.
        if not key:
            raise ValueError("key must not be empty")
        if not _is_int_in(expires_in, 1, MAX_EXPIRES_IN):
            raise ValueError(f"expires_in must be an integer from 1 to {MAX_EXPIRES_IN}")
        creds = self._credentials()
        amz_date = _utc(now).strftime(AMZ_DATE_FORMAT)
        return creds, amz_date, self._signer.scope(amz_date)


class Signer:
    """SigV4 signatures for one region and service."""

    def __init__(self, region: str, service: str):
        self.region, self.service = region, service
        self.keys: dict[tuple[str, str], bytes] = {}
        self._keys_lock = threading.Lock()

    def scope(self, amz_date: str) -> str:
        return f"{amz_date[:8]}/{self.region}/{self.service}/aws4_request"

    def sign(self, secret_key: str, amz_date: str, string_to_sign: str) -> str:
        signing_key = self._signing_key(secret_key, amz_date[:8])
        return hmac.new(signing_key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()

    def sign_request(self, secret_key: str, amz_date: str, canonical_request: str) -> str:
        """The signature of a canonical request: of the string to sign that hashes it."""
        request_hash = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
        return self.sign(secret_key, amz_date, "\n".join((ALGORITHM, amz_date, self.scope(amz_date), request_hash)))

    def sign_headers(self, creds: Credentials, host: str, headers: dict[str, str], body: bytes,
                     now: datetime.datetime) -> dict[str, str]:
        """`headers` of a POST to "/" and the SigV4 ones (X-Amz-Date, X-Amz-Security-Token,
        Authorization), signed as botocore's SigV4Auth signs them: host, every header given,
        the date and the token; the body's SHA-256. Values are signed as given (botocore
        would fold runs of spaces: the callers' values have none)."""
        amz_date = _utc(now).strftime(AMZ_DATE_FORMAT)
        headers = {**headers, "X-Amz-Date": amz_date}
        if creds.token is not None:
            headers["X-Amz-Security-Token"] = creds.token
        signed = sorted([("host", host), *((name.lower(), value) for name, value in headers.items())])
        names = ";".join(name for name, _ in signed)
        canonical_request = "\n".join((
            "POST", "/", "", *(f"{name}:{value}" for name, value in signed), "", names,
            hashlib.sha256(body).hexdigest()))
        headers["Authorization"] = (
            f"{ALGORITHM} Credential={creds.access_key}/{self.scope(amz_date)}, SignedHeaders={names}, "
            f"Signature={self.sign_request(creds.secret_key, amz_date, canonical_request)}")
        return headers

    def _signing_key(self, secret_key: str, datestamp: str) -> bytes:
        """The derived key for this secret and day: four HMACs, cached."""
        signing_key = self.keys.get((secret_key, datestamp))
        if signing_key is None:
            signing_key = f"AWS4{secret_key}".encode("utf-8")
            for part in (datestamp, self.region, self.service, "aws4_request"):
                signing_key = hmac.new(signing_key, part.encode("utf-8"), hashlib.sha256).digest()
            # The server is threaded: evicting the oldest entry while another
            # thread does the same must not fail, hence the lock (misses only).
            with self._keys_lock:
                while len(self.keys) >= SIGNING_KEY_CACHE_SIZE:
                    del self.keys[next(iter(self.keys))]
                self.keys[(secret_key, datestamp)] = signing_key
        return signing_key


class AwsCredentials:
    """This process's AWS credentials: the environment's (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN; Lambda always sets them), read once and
    without botocore, as first in botocore's own chain (which reads them once too); else
    the rest of that chain (an instance profile, a shared file ...), botocore imported
    only then, which refreshes temporary credentials before they expire. None if there
    are none."""

    def __init__(self, environ: Mapping[str, str] = os.environ):
        key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
        self._from_env = Credentials(key, secret, environ.get("AWS_SESSION_TOKEN") or None) \
            if key and secret else None

    @functools.cached_property
    def session(self):
        """A botocore session, made on first use: the chain's, and storage.py's clients'."""
        import botocore.session
        return botocore.session.get_session()

    def endpoint_of(self, service: str, region: str) -> str:
        """Where botocore sends `service` in `region`, as AWS settings place it (FIPS,
        dual-stack, AWS_ENDPOINT_URL*, the config file's profile)."""
        return self.session.create_client(service, region_name=region).meta.endpoint_url

    def __call__(self) -> Credentials | None:
        if self._from_env is not None:
            return self._from_env
        from botocore.exceptions import BotoCoreError
        try:  # role credentials come from a metadata endpoint, which can fail
            found = self.session.get_credentials()
            frozen = found.get_frozen_credentials() if found is not None else None
        except BotoCoreError:
            return None
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token) if frozen else None


def _utc(now: datetime.datetime) -> datetime.datetime:
    # A naive datetime could be local time: a signature dated hours off would
    # fail (or live too long) far from where the mistake was made.
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(datetime.timezone.utc)


def _is_int_in(value: object, low: int, high: int) -> bool:
    return is_int(value) and low <= value <= high


def _s3_host(region: str) -> str:
    if region == LEGACY_GLOBAL_REGION:
        return LEGACY_GLOBAL_HOST
    return f"s3.{region}.{dns_suffix(region)}"


def botocore_places(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether AWS settings may move the S3 and DynamoDB endpoints from the partition's
    defaults: one of ENDPOINT_SETTINGS, or an AWS config or shared credentials file
    (botocore reads use_fips_endpoint and the like from either). Then botocore, imported
    for it, says where they are (a Lambda has neither: its cold start is not slowed)."""
    files = (environ.get("AWS_CONFIG_FILE") or "~/.aws/config",  # botocore merges both into the profile
             environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials")
    return any(environ.get(name) for name in ENDPOINT_SETTINGS) or any(
        os.path.isfile(os.path.expanduser(path)) for path in files)


@functools.cache
def dns_suffix(region: str) -> str:
    """The region's partition DNS suffix, from botocore's own partition data (as
    botocore decides: a partition listing the region, else one whose regex matches),
    read from its file: importing botocore is most of a Lambda cold start."""
    botocore_dir = Path(importlib.util.find_spec("botocore").origin).parent  # found, not imported
    partitions = json.loads((botocore_dir / "data" / "partitions.json").read_bytes())["partitions"]
    match = next((p for p in partitions if region in p["regions"]), None) or next(
        (p for p in partitions if re.match(p["regionRegex"], region)), None)
    return match["outputs"]["dnsSuffix"] if match else DEFAULT_DNS_SUFFIX


def split_endpoint(endpoint_url: str) -> tuple[str, str]:
    """(URL base, host header) for a custom endpoint such as http://127.0.0.1:9000.

    The URL keeps the endpoint as written (minus a trailing "/"); the signed host
    header is lower case, without user info and without a default port, as
    HTTP clients send it.
    """
    parts = urlsplit(endpoint_url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment:
        raise ValueError(f"endpoint_url {endpoint_url!r} must be like https://s3.example:9000")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if parts.port is not None and parts.port != DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{parts.netloc}", host
