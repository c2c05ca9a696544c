"""gatekeeper.presign: hand-written SigV4, proven against botocore.

moto does not check signatures, so the proof that S3 will accept what we sign is
the differential tests here: byte-identical presigned GET URLs, and POST
signatures recomputed with botocore's own key derivation. The moto round trip
only proves that the URLs and form fields are well formed end to end.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import random
import string
import uuid
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.session
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials

from gatekeeper.config import StorageConfig
from gatekeeper.presign import (
    MAX_EXPIRES_IN,
    SIGNING_KEY_CACHE_SIZE,
    Credentials,
    Presigner,
)

UTC = datetime.timezone.utc


def decode_policy(fields: dict[str, str]) -> dict:
    """The POST policy in `fields`, as the JSON object S3 will check."""
    return json.loads(base64.b64decode(fields["policy"]))

# One region of every partition botocore knows, and several of the main one.
REGIONS = [
    "us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "sa-east-1",
    "cn-north-1", "us-gov-west-1", "us-iso-east-1", "us-isob-east-1", "eu-isoe-west-1",
    "us-isof-south-1", "eusc-de-east-1",
]
# "" is real AWS (virtual-hosted); the others are S3-compatible stores (path style).
ENDPOINTS = [
    "", "http://127.0.0.1:9000", "https://minio.example.com", "https://S3.Example.com:443",
    "http://[::1]:9000",
]
# A DNS label, dotted (botocore falls back to path style), the shortest, the longest.
BUCKETS = ["dualkey-reports", "dualkey.reports.example", "a1b", "x" * 63]
TRICKY_KEYS = [
    "tickets/42/report.json",
    "tickets/42/screen shot 1.png",
    "tickets/42/ünïcödé/日本語/😀.txt",
    "tickets/42/a+b=c&d?e#f%20g~h",
    "tickets/42/!$'()*,;:@[]{}|^`\"<>\\",
    "tickets/42/trailing/",
    "tickets/42//double//slash",
    "tickets/42/./dot/../segments",
    "tickets/42/%2F%25already-encoded",
    "tickets/42/tab\tand\nnewline\x7f",
    "tickets/42/" + "long-" * 200,
    "/leading-slash",
]
CONTENT_TYPES = ["image/png", "application/json", "text/plain; charset=utf-8"]
KEY_ALPHABET = string.printable + "éüßøåçñ日本語中文한국어Ωπ😀🎉\u200b\u0301\u202e"


def random_key(rng: random.Random) -> str:
    return "tickets/%d/" % rng.randrange(10**6) + "".join(
        rng.choice(KEY_ALPHABET) for _ in range(rng.randrange(1, 120))
    )


def random_credentials(rng: random.Random, with_token: bool) -> Credentials:
    secret_alphabet = string.ascii_letters + string.digits + "+/"
    return Credentials(
        access_key="AKIA" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=16)),
        secret_key="".join(rng.choice(secret_alphabet) for _ in range(40)),
        token="".join(rng.choice(secret_alphabet + "=") for _ in range(rng.randrange(100, 400)))
        if with_token else None,
    )


@pytest.fixture
def botocore_session(monkeypatch, tmp_path):
    """A botocore session that nothing on this machine can steer.

    These would change botocore's endpoint or addressing choices (and so the
    reference URL) behind the test's back.
    """
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT",
                 "AWS_USE_DUALSTACK_ENDPOINT", "AWS_USE_FIPS_ENDPOINT", "AWS_PROFILE",
                 "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    return botocore.session.Session()


def botocore_client(session, region: str, endpoint_url: str, creds: Credentials):
    """The reference: the client configuration the brief names."""
    return session.create_client(
        "s3",
        region_name=region,
        endpoint_url=endpoint_url or None,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
        config=Config(signature_version="s3v4",
                      s3={"addressing_style": "path" if endpoint_url else "virtual"}),
    )


def amz_date_of(url: str) -> datetime.datetime:
    """The instant botocore signed at, read back from its URL."""
    (amz_date,) = parse_qs(urlsplit(url).query)["X-Amz-Date"]
    return datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def post_date_of(fields: dict[str, str]) -> datetime.datetime:
    return datetime.datetime.strptime(fields["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def botocore_signature(creds: Credentials, region: str, amz_date: str, string_to_sign: str) -> str:
    """SigV4 over `string_to_sign` computed by botocore's own key derivation."""
    boto_creds = BotoCredentials(creds.access_key, creds.secret_key, creds.token)
    signer = SigV4Auth(boto_creds, "s3", region)
    request = AWSRequest(method="POST", url="https://unused.example/")
    request.context["timestamp"] = amz_date
    return signer.signature(string_to_sign, request)


class Rotating:
    """A credentials provider whose answer the test changes, like a refresh."""

    def __init__(self, creds: Credentials):
        self.current = creds
        self.calls = 0

    def __call__(self) -> Credentials:
        self.calls += 1
        return self.current


# --- presign_get: byte for byte against botocore ------------------------------

def test_get_urls_are_byte_identical_to_botocore(botocore_session):
    rng = random.Random(20240531)
    credential_sets = [random_credentials(rng, with_token=t) for t in (False, True, True)]
    clients: dict[tuple, object] = {}
    compared = 0
    for region in REGIONS:
        for endpoint_url in ENDPOINTS:
            for bucket in BUCKETS:
                # One presigner across credential rotations: its signing-key
                # cache must follow the secret, not just the day.
                provider = Rotating(credential_sets[0])
                presigner = Presigner(StorageConfig(bucket, region, endpoint_url), provider)
                keys = [TRICKY_KEYS[compared // 3 % len(TRICKY_KEYS)], random_key(rng), random_key(rng)]
                for key in keys:
                    creds_index = rng.randrange(len(credential_sets))
                    provider.current = credential_sets[creds_index]
                    expires_in = rng.choice(
                        [1, 60, 3600, MAX_EXPIRES_IN, rng.randrange(1, MAX_EXPIRES_IN)])
                    client_key = (region, endpoint_url, creds_index)
                    if client_key not in clients:
                        clients[client_key] = botocore_client(
                            botocore_session, region, endpoint_url, credential_sets[creds_index])
                    # Every other URL also asks S3 for a Content-Disposition, as the gatekeeper does.
                    disposition = "attachment" if compared % 2 else None
                    params = {"Bucket": bucket, "Key": key}
                    if disposition:
                        params["ResponseContentDisposition"] = disposition
                    expected = clients[client_key].generate_presigned_url(
                        "get_object", Params=params, ExpiresIn=expires_in)
                    ours = presigner.presign_get(key, expires_in, amz_date_of(expected), disposition)
                    assert ours == expected, (region, endpoint_url, bucket, key, expires_in)
                    compared += 1
    assert compared == len(REGIONS) * len(ENDPOINTS) * len(BUCKETS) * 3  # 780


def same_origin(url: str, origin: str) -> bool:
    """Whether `url` is on `origin` as browsers and HTTP clients see it (host case
    and a default port do not matter)."""
    def parts(u):
        s = urlsplit(u)
        return s.scheme, s.hostname, s.port or {"http": 80, "https": 443}[s.scheme]
    return parts(url) == parts(origin)


def test_its_origin_is_the_origin_of_every_url_it_signs(botocore_session):
    # Health reports it as storage_origin; agents refuse upload URLs elsewhere.
    creds = Credentials("AKIAEXAMPLE", "secret")
    for region in REGIONS:
        for endpoint_url in ENDPOINTS:
            for bucket in BUCKETS:
                presigner = Presigner(StorageConfig(bucket, region, endpoint_url), lambda: creds)
                now = datetime.datetime(2026, 1, 1, tzinfo=UTC)
                get_url = presigner.presign_get("tickets/1/a.txt", 60, now)
                post_url, _ = presigner.presign_post("tickets/1/a.txt", "text/plain", 1, 60, now)
                case = (region, endpoint_url, bucket)
                assert same_origin(get_url, presigner.origin) and same_origin(post_url, presigner.origin), case
                assert urlsplit(presigner.origin).path == "" and presigner.origin == presigner.origin.lower(), case
    virtual = Presigner(StorageConfig("dualkey-reports", "eu-west-1"), lambda: creds)
    assert virtual.origin == "https://dualkey-reports.s3.eu-west-1.amazonaws.com"
    custom = Presigner(StorageConfig("dualkey-reports", "eu-west-1", "https://S3.Example.com:443"), lambda: creds)
    assert custom.origin == "https://s3.example.com"


def test_every_tricky_key_in_both_addressing_styles_matches_botocore(botocore_session):
    creds = random_credentials(random.Random(7), with_token=True)
    for endpoint_url in ("", "http://127.0.0.1:9000"):
        client = botocore_client(botocore_session, "eu-west-1", endpoint_url, creds)
        storage = StorageConfig("dualkey-reports", "eu-west-1", endpoint_url)
        presigner = Presigner(storage, lambda: creds)
        for key in TRICKY_KEYS:
            expected = client.generate_presigned_url(
                "get_object", Params={"Bucket": "dualkey-reports", "Key": key}, ExpiresIn=60)
            assert presigner.presign_get(key, 60, amz_date_of(expected)) == expected, key


def test_get_matches_the_aws_documentation_example():
    # docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html: an
    # independent vector, on a date botocore's clock cannot produce.
    creds = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    presigner = Presigner(StorageConfig("examplebucket", "us-east-1"), lambda: creds)
    url = presigner.presign_get("test.txt", 86400, datetime.datetime(2013, 5, 24, tzinfo=UTC))
    assert url == (
        "https://examplebucket.s3.amazonaws.com/test.txt"
        "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )


def test_it_asks_for_credentials_at_every_signature():
    provider = Rotating(Credentials("AKIAOLD", "old-secret"))
    presigner = Presigner(StorageConfig("dualkey-reports", "eu-west-1"), provider)
    now = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    before = presigner.presign_get("tickets/1/a", 60, now)
    provider.current = Credentials("AKIANEW", "new-secret", "new-token")
    after = presigner.presign_get("tickets/1/a", 60, now)
    assert provider.calls == 2
    assert "AKIAOLD" in before and "AKIANEW" in after and "X-Amz-Security-Token=new-token" in after
    fresh = Presigner(StorageConfig("dualkey-reports", "eu-west-1"), lambda: provider.current)
    assert after == fresh.presign_get("tickets/1/a", 60, now)


def test_signing_key_cache_stays_small_and_follows_the_date():
    creds = Credentials("AKIAEXAMPLE", "secret")
    presigner = Presigner(StorageConfig("dualkey-reports", "eu-west-1"), lambda: creds)
    start = datetime.datetime(2030, 12, 30, 23, 59, 59, tzinfo=UTC)
    for day in range(10):
        now = start + datetime.timedelta(days=day)
        fresh = Presigner(StorageConfig("dualkey-reports", "eu-west-1"), lambda: creds)
        assert presigner.presign_get("k", 60, now) == fresh.presign_get("k", 60, now)
        assert len(presigner._signer.keys) <= SIGNING_KEY_CACHE_SIZE


def test_any_timezone_signs_the_same_instant():
    creds = Credentials("AKIAEXAMPLE", "secret")
    presigner = Presigner(StorageConfig("dualkey-reports", "eu-west-1"), lambda: creds)
    utc = datetime.datetime(2030, 1, 1, 0, 30, tzinfo=UTC)
    tokyo = utc.astimezone(datetime.timezone(datetime.timedelta(hours=9)))
    assert presigner.presign_get("k", 60, tokyo) == presigner.presign_get("k", 60, utc)
    assert "X-Amz-Date=20300101T003000Z" in presigner.presign_get("k", 60, tokyo)


def test_it_refuses_naive_datetimes_and_out_of_range_expiries():
    presigner = Presigner(StorageConfig("dualkey-reports", "eu-west-1"),
                          lambda: Credentials("AKIAEXAMPLE", "secret"))
    now = datetime.datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone"):
        presigner.presign_get("k", 60, datetime.datetime(2030, 1, 1))
    for expires_in in (0, -1, MAX_EXPIRES_IN + 1, True, 1.5):
        with pytest.raises(ValueError, match="expires_in"):
            presigner.presign_get("k", expires_in, now)
        with pytest.raises(ValueError, match="expires_in"):
            presigner.presign_post("k", "text/plain", 1, expires_in, now)


def test_it_refuses_an_empty_key_which_would_sign_a_bucket_listing():
    presigner = Presigner(StorageConfig("dualkey-reports", "eu-west-1"),
                          lambda: Credentials("AKIAEXAMPLE", "secret"))
    now = datetime.datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="key"):
        presigner.presign_get("", 60, now)
    with pytest.raises(ValueError, match="key"):
        presigner.presign_post("", "text/plain", 1, 60, now)


def test_it_refuses_an_unknown_encryption_mode_and_a_bad_endpoint():
    creds = lambda: Credentials("AKIAEXAMPLE", "secret")  # noqa: E731
    with pytest.raises(ValueError, match="encryption"):
        Presigner(StorageConfig("dualkey-reports", "eu-west-1", encryption="cse"), creds)
    with pytest.raises(ValueError, match="endpoint_url"):
        Presigner(StorageConfig("dualkey-reports", "eu-west-1", "ftp://s3.example"), creds)
    with pytest.raises(ValueError, match="bucket"):
        Presigner(StorageConfig("bad bucket/", "eu-west-1"), creds)


def test_credentials_keep_secrets_out_of_repr():
    text = repr(Credentials("AKIAEXAMPLE", "very-secret", "very-token"))
    assert "AKIAEXAMPLE" in text and "very-secret" not in text and "very-token" not in text


# --- presign_post ------------------------------------------------------------

def sse_for(storage: StorageConfig) -> dict[str, str]:
    if storage.encryption == "sse-kms":
        return {"x-amz-server-side-encryption": "aws:kms",
                "x-amz-server-side-encryption-aws-kms-key-id": storage.kms_key_id}
    return {"x-amz-server-side-encryption": "AES256"}


def unsigned(fields: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k not in ("policy", "x-amz-signature")}


def canonical(conditions: list) -> list[str]:
    return sorted(json.dumps(c, sort_keys=True) for c in conditions)


def test_post_agrees_with_botocore_and_its_signing_key(botocore_session):
    rng = random.Random(1234)
    kms_key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    compared = 0
    for region in REGIONS:
        for endpoint_url in ENDPOINTS[:3]:
            for bucket in BUCKETS[:2]:
                encryption = ("sse-s3", "sse-kms")[compared % 2]
                storage = StorageConfig(bucket, region, endpoint_url, encryption,
                                        kms_key if encryption == "sse-kms" else "")
                creds = random_credentials(rng, with_token=compared % 3 != 0)
                key = rng.choice([random_key(rng), TRICKY_KEYS[compared % len(TRICKY_KEYS)]])
                content_type = rng.choice(CONTENT_TYPES)
                size = rng.randrange(0, 5 * 1024**3)
                expires_in = rng.randrange(1, 3601)
                sse = sse_for(storage)
                # botocore's post, given the same fields and non-auth conditions;
                # it adds {"bucket": ...} and {"key": ...} itself.
                client = botocore_client(botocore_session, region, endpoint_url, creds)
                reference = client.generate_presigned_post(
                    bucket, key, Fields={"Content-Type": content_type, **sse}, ExpiresIn=expires_in,
                    Conditions=[["eq", "$key", key], ["eq", "$Content-Type", content_type],
                                ["content-length-range", size, size],
                                *({name: value} for name, value in sse.items())])
                now = post_date_of(reference["fields"])

                url, fields = Presigner(storage, lambda: creds).presign_post(
                    key, content_type, size, expires_in, now)

                case = (region, endpoint_url, bucket, key)
                assert url == reference["url"], case
                assert unsigned(fields) == unsigned(reference["fields"]), case
                ours, theirs = decode_policy(fields), decode_policy(reference["fields"])
                assert ours["expiration"] == theirs["expiration"], case
                # Same conditions, except that we say ["eq", "$key", key] once
                # where botocore also adds the equivalent {"key": key}.
                assert canonical(ours["conditions"]) == canonical(
                    [c for c in theirs["conditions"] if c != {"key": key}]), case
                assert fields["x-amz-signature"] == botocore_signature(
                    creds, region, fields["x-amz-date"], fields["policy"]), case
                compared += 1
    assert compared == len(REGIONS) * 3 * 2  # 78


def test_post_policy_fixes_key_type_size_encryption_and_lifetime():
    creds = Credentials("AKIAEXAMPLE", "secret", "session-token")
    storage = StorageConfig("dualkey-reports", "eu-west-1",
                            encryption="sse-kms", kms_key_id="alias/reports")
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    now = datetime.datetime(2030, 6, 30, 23, 59, 30, 999_999, tzinfo=plus_two)

    url, fields = Presigner(storage, lambda: creds).presign_post(
        "tickets/42/log ü.txt", "text/plain", 1234, 90, now)

    assert url == "https://dualkey-reports.s3.eu-west-1.amazonaws.com/"
    credential = "AKIAEXAMPLE/20300630/eu-west-1/s3/aws4_request"
    assert list(fields) == [
        "key", "Content-Type", "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id", "x-amz-algorithm", "x-amz-credential",
        "x-amz-date", "x-amz-security-token", "policy", "x-amz-signature",
    ]
    assert fields["key"] == "tickets/42/log ü.txt"
    assert fields["x-amz-server-side-encryption"] == "aws:kms"
    assert fields["x-amz-server-side-encryption-aws-kms-key-id"] == "alias/reports"
    assert fields["x-amz-credential"] == credential
    assert fields["x-amz-date"] == "20300630T215930Z"
    assert decode_policy(fields) == {
        "expiration": "2030-06-30T22:01:00Z",  # now (in UTC, to the second) + 90 s
        "conditions": [
            {"bucket": "dualkey-reports"},
            ["eq", "$key", "tickets/42/log ü.txt"],
            ["eq", "$Content-Type", "text/plain"],
            ["content-length-range", 1234, 1234],
            {"x-amz-server-side-encryption": "aws:kms"},
            {"x-amz-server-side-encryption-aws-kms-key-id": "alias/reports"},
            {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
            {"x-amz-credential": credential},
            {"x-amz-date": "20300630T215930Z"},
            {"x-amz-security-token": "session-token"},
        ],
    }
    signing_key = b"AWS4secret"
    for part in ("20300630", "eu-west-1", "s3", "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    assert fields["x-amz-signature"] == hmac.new(
        signing_key, fields["policy"].encode(), hashlib.sha256).hexdigest()


def test_post_with_sse_s3_and_no_token_has_no_kms_or_token_fields():
    storage = StorageConfig("dualkey.reports", "us-east-1")
    url, fields = Presigner(storage, lambda: Credentials("AKIAEXAMPLE", "secret")).presign_post(
        "tickets/1/a.png", "image/png", 0, 60, datetime.datetime(2030, 1, 1, tzinfo=UTC))
    assert url == "https://s3.amazonaws.com/dualkey.reports"
    assert fields["x-amz-server-side-encryption"] == "AES256"
    assert "x-amz-server-side-encryption-aws-kms-key-id" not in fields
    assert "x-amz-security-token" not in fields
    conditions = decode_policy(fields)["conditions"]
    assert {"x-amz-server-side-encryption": "AES256"} in conditions
    assert ["content-length-range", 0, 0] in conditions
    assert not any("x-amz-security-token" in c for c in conditions if isinstance(c, dict))


def test_post_refuses_impossible_sizes():
    presigner = Presigner(StorageConfig("dualkey-reports", "eu-west-1"),
                          lambda: Credentials("AKIAEXAMPLE", "secret"))
    now = datetime.datetime(2030, 1, 1, tzinfo=UTC)
    for size in (-1, 5 * 1024**3 + 1, 1.0, "10", True):
        with pytest.raises(ValueError, match="size"):
            presigner.presign_post("k", "text/plain", size, 60, now)


# --- end to end through moto's S3 server ---------------------------------------

@pytest.mark.parametrize("key", ["tickets/42/report.json", "tickets/42/screen shot ü+~=%.png"])
def test_upload_with_our_post_then_download_with_our_url(moto_url, key):
    bucket = f"dualkey-presign-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    s3.create_bucket(Bucket=bucket)
    presigner = Presigner(StorageConfig(bucket, "us-east-1", moto_url),
                          lambda: Credentials("testing", "testing-secret"))
    body = "report data ✓ ".encode() * 100
    now = datetime.datetime.now(UTC)

    url, fields = presigner.presign_post(key, "application/octet-stream", len(body), 60, now)
    upload = requests.post(url, data=fields, files={"file": ("blob", body)}, timeout=10)
    assert upload.status_code in (200, 201, 204), upload.text

    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == "application/octet-stream"
    # (moto ignores the encryption form fields: the policy tests above cover them.)

    download = requests.get(presigner.presign_get(key, 60, now), timeout=10)
    assert download.status_code == 200
    assert download.content == body
