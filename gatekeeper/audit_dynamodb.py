"""The audit store of the AWS deployment: one DynamoDB table.

See audit.py for the records, the search queries and the store interface.

It speaks DynamoDB's JSON API itself (a POST of JSON naming the operation in
X-Amz-Target, SigV4-signed by presign.Signer), with the standard library's
http.client: botocore is not imported on the sign path, which is most of a Lambda
cold start (bench/bench_cold_start.py). What it keeps of botocore's client as
configured here before: one keep-alive connection per thread (a new one when the
server closed it while idle), a 2 s connect and 10 s read timeout, and botocore's
"standard" retries: at most 3 attempts; throttling, 5xx answers, DynamoDB's
transient codes and failed connections are retried after random() * 1 s * 2**(n-1)
when throttled, random() * 25 ms * 2**(n-1) otherwise; the audit transaction carries
a ClientRequestToken (botocore added one), so a retried one is applied once. Not
kept: the retry quota (a token bucket that stops retrying while many fail), the
x-amz-retry-after hint. HTTPS_PROXY/HTTP_PROXY and NO_PROXY are honoured as botocore
reads them (an http:// proxy: a CONNECT tunnel to an HTTPS endpoint). Its endpoint:
storage.endpoint_url; else, where AWS settings may move it (FIPS, dual-stack,
AWS_ENDPOINT_URL*, a config file: presign.botocore_places), botocore's; else the
region's in its partition (tests/gatekeeper/test_dynamodb_wire.py,
tests/gatekeeper/test_aws_endpoints.py). AWS_CA_BUNDLE is honoured.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import logging
import math
import os
import random
import re
import select
import ssl
import threading
import time
import urllib.request
from urllib.parse import unquote, urlsplit

from .audit import (
    DAY, TEXT_FIELDS, AuditRecord, SearchQuery, clean_text, decode_cursor, encode_cursor,
    invalid_cursor, jti_digest,
)
from .errors import AuditUnavailable, ConfigError
from .presign import AwsCredentials, Signer, botocore_places, dns_suffix, split_endpoint

log = logging.getLogger("gatekeeper.audit")

# One table, two kinds of item:
#   audit record  pk = "d#<UTC day YYYY-MM-DD>", sk = "<ts in µs, 16 digits>#<batch token>#<n>"
#   used jti      pk = "jti#<sha256 of the jti>", sk = "jti"
# Both carry `expires_at` (epoch seconds), the table's TTL attribute: DynamoDB drops
# old records and spent jtis itself. A search queries day partitions newest first
# (ScanIndexForward=false) and applies the other filters as a FilterExpression; its
# cursor is the (day, last sort key) to resume below. One partition per day is far
# below DynamoDB's per-partition limits for one customer's gatekeeper.

DYNAMO_PAGE_ITEMS = 1000  # items read per Query call, before filtering
DYNAMO_MAX_CALLS = 60  # Query calls per page (~2 months of empty days): bounds latency
DYNAMO_TRANSACTION_ITEMS = 100  # TransactWriteItems' limit
DYNAMO_PURGE_LOOKBACK_DAYS = 30  # days behind the retention horizon that purge() sweeps
CLOCK_SKEW = 3600  # records from instances whose clocks run ahead are still found
DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SORT_KEY_RE = re.compile(r"^\d{16}#[0-9a-f]{16}#\d{4}$")  # n < 100 (DYNAMO_TRANSACTION_ITEMS)
SORT_KEY_MIN, SORT_KEY_MAX = "0", "~"  # below and above every "<digits>#..." sort key
API_VERSION, CONTENT_TYPE = "DynamoDB_20120810", "application/x-amz-json-1.0"
CONNECT_TIMEOUT, READ_TIMEOUT, MAX_ATTEMPTS = 2, 10, 3  # a request waits on its audit record
THROTTLED = {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
             "TooManyRequestsException", "ProvisionedThroughputExceededException",
             "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
             "LimitExceededException", "RequestThrottled", "SlowDown"}  # botocore's lists
TRANSIENT = {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
TRANSPORT_ERRORS = (OSError, http.client.HTTPException, ValueError)  # no answer, or no JSON one


def _day(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).date()


def _micros(ts: float) -> str:
    return f"{round(ts * 1_000_000):016d}"


def _jti_key(jti: str) -> dict:
    return {"pk": {"S": f"jti#{jti_digest(jti)}"}, "sk": {"S": "jti"}}


def _position(position: list) -> tuple[dt.date, str | None]:
    """A cursor's position, checked: (the day, the sort key to resume below or None)."""
    invalid = invalid_cursor()
    if len(position) != 2 or not isinstance(position[0], str) or not DAY_RE.match(position[0]):
        raise invalid
    below = position[1]
    if below is not None and not (isinstance(below, str) and SORT_KEY_RE.match(below)):
        raise invalid
    try:
        return dt.date.fromisoformat(position[0]), below
    except ValueError:
        raise invalid from None


def _record(item: dict) -> dict:
    """A stored item as search returns it (a record's dict)."""
    texts = {name: item.get(name, {}).get("S", "") for name in TEXT_FIELDS}
    return AuditRecord(ts=float(item["ts"]["N"]), status=int(item["status"]["N"]), **texts).to_dict()


class DynamoError(Exception):
    """DynamoDB refused: `code` is its error type (ConditionalCheckFailedException ...)."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


def environment_proxy(url) -> tuple[tuple[str, int] | None, dict[str, str]]:
    """The HTTP proxy the environment names for `url`, as botocore reads it (HTTPS_PROXY or
    HTTP_PROXY by the endpoint's scheme, NO_PROXY honoured; user:password@ as Basic
    Proxy-Authorization): ((host, port), headers), or (None, {}) to connect directly."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme)
    if not proxy or urllib.request.proxy_bypass_environment(url.hostname or "", proxies):
        return None, {}
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(f"{url.scheme.upper()}_PROXY", "must be an http:// proxy URL (the tunnel carries TLS)")
    headers = {}
    if parts.username:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(pair).decode()
    return (parts.hostname, parts.port or 80), headers


class DynamoAuditStore:
    def __init__(self, table: str, retention_days: int, endpoint_url: str | None = None,
                 region: str = "us-east-1", aws: AwsCredentials | None = None):
        self.table = table
        self.retention_days = retention_days
        self.endpoint_url = endpoint_url or None
        self.region = region
        self._credentials = aws or AwsCredentials()  # app.py shares the bucket's
        self._signer = Signer(region, "dynamodb")
        if not endpoint_url:  # AWS settings may place it (FIPS, dual-stack, ...): botocore says where
            endpoint_url = self._credentials.endpoint_of("dynamodb", region) if botocore_places() else \
                f"https://dynamodb.{region}.{dns_suffix(region)}"
        url, self._host = split_endpoint(endpoint_url)
        self._url = urlsplit(url)
        self._proxy, self._proxy_headers = environment_proxy(self._url)
        # Through an HTTP proxy to a plain-HTTP endpoint the request names its target whole;
        # to HTTPS the proxy only tunnels (CONNECT), and the request is as sent directly.
        self._target = f"http://{self._host}/" if self._proxy and self._url.scheme == "http" else "/"
        self._request_headers = {"Host": self._host, **(self._proxy_headers if self._target != "/" else {})}
        self._local = threading.local()  # http.client connections are one thread's each

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's keep-alive connection, connected. Readable while idle means the
        server closed it (or sent what nobody asked for): then a new one, as urllib3 does
        (with poll(), as urllib3 too: select() fails past 1,024 descriptors)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            host, port = self._proxy or (self._url.hostname, self._url.port)
            if self._url.scheme == "https":
                context = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)
                connection = http.client.HTTPSConnection(host, port, context=context)
                if self._proxy:  # TLS end to end with DynamoDB, the certificate checked as ever
                    connection.set_tunnel(self._url.hostname, self._url.port or 443, headers=self._proxy_headers)
            else:
                connection = http.client.HTTPConnection(host, port)
            self._local.connection = connection
        if connection.sock is not None:
            idle = select.poll()
            idle.register(connection.sock, select.POLLIN)
            if idle.poll(0):
                connection.close()
        if connection.sock is None:
            connection.timeout = CONNECT_TIMEOUT
            connection.connect()
        connection.sock.settimeout(READ_TIMEOUT)
        return connection

    def _post(self, operation: str, body: bytes) -> tuple[int, bytes]:
        """One attempt: (HTTP status, body)."""
        credentials = self._credentials()
        if credentials is None:
            raise DynamoError("NoCredentialsError", "no AWS credentials are available")
        headers = self._signer.sign_headers(
            credentials, self._host, {"Content-Type": CONTENT_TYPE, "X-Amz-Target": f"{API_VERSION}.{operation}"},
            body, dt.datetime.now(dt.timezone.utc))
        connection = self._connection()
        try:
            connection.request("POST", self._target, body, {**self._request_headers, **headers})
            response = connection.getresponse()
            answer = response.read()
        except BaseException:
            connection.close()  # half a request or an answer: never reused
            raise
        if response.will_close:
            connection.close()
        return response.status, answer

    def _send(self, operation: str, params: dict) -> dict:
        """DynamoDB's answer to `operation`, retried as the module says. Raises DynamoError
        when DynamoDB refuses, TRANSPORT_ERRORS when there is no (JSON) answer."""
        body = json.dumps(params).encode("utf-8")  # as botocore encodes it
        for attempt in range(1, MAX_ATTEMPTS + 1):
            scale = 0.025  # seconds: the backoff's base, 1 s when throttled
            try:
                status, answer = self._post(operation, body)
            except (OSError, http.client.HTTPException) as exc:
                failure: Exception = exc
            else:
                if status == 200:
                    return json.loads(answer)
                try:
                    error = json.loads(answer)
                except ValueError:
                    error = {}
                code = str(error.get("__type", "")).rpartition("#")[2] or f"HTTP {status}"
                failure = DynamoError(code, str(error.get("message") or error.get("Message") or ""))
                if code in THROTTLED:
                    scale = 1
                elif status < 500 and code not in TRANSIENT:
                    raise failure
            if attempt < MAX_ATTEMPTS:
                time.sleep(random.random() * scale * 2 ** (attempt - 1))
        raise failure

    def _call(self, method: str, **params) -> dict:
        """`method` as botocore names it (put_item: PutItem). Every storage failure becomes
        AuditUnavailable; no AWS detail leaks to callers. A failed condition is not a
        failure: it re-raises for the caller to handle."""
        try:
            return self._send(method.title().replace("_", ""), params)
        except DynamoError as exc:
            if exc.code == "ConditionalCheckFailedException":
                raise
            log.error("audit %s failed: %s", method, exc)
        except TRANSPORT_ERRORS as exc:
            log.error("audit %s failed: %s: %s", method, type(exc).__name__, exc)
        raise AuditUnavailable("the audit log is unavailable")

    def create_table(self) -> None:
        """Create the table with TTL on `expires_at`; harmless if it already exists."""
        try:
            self._send("CreateTable", {
                "TableName": self.table, "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                              {"AttributeName": "sk", "KeyType": "RANGE"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                         {"AttributeName": "sk", "AttributeType": "S"}],
            })
        except DynamoError as exc:
            if exc.code != "ResourceInUseException":
                raise
        for _ in range(60):  # as botocore's table_exists waiter: every second, for a minute
            try:
                if self._send("DescribeTable", {"TableName": self.table})["Table"]["TableStatus"] == "ACTIVE":
                    break
            except DynamoError as exc:
                if exc.code != "ResourceNotFoundException":
                    raise
            time.sleep(1)
        else:
            raise DynamoError("TableNotActive", f"{self.table} is not ACTIVE after a minute")
        ttl = self._send("DescribeTimeToLive", {"TableName": self.table})["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            self._send("UpdateTimeToLive", {
                "TableName": self.table,
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "expires_at"}})

    def write(self, records: list[AuditRecord], now: float | None = None) -> None:
        # One request's records are one transaction: all are stored or none is.
        # A batch holds at most 100 ops (app.MAX_BATCH_OPS), TransactWriteItems' limit.
        if not records:
            return
        if len(records) > DYNAMO_TRANSACTION_ITEMS:
            raise ValueError(f"at most {DYNAMO_TRANSACTION_ITEMS} audit records per request")
        token = os.urandom(8).hex()  # sort keys unique even if request ids are not
        self._call("transact_write_items", TransactItems=[
            # The condition makes an audit record impossible to overwrite.
            {"Put": {"TableName": self.table, "Item": self._item(record, token, n),
                     "ConditionExpression": "attribute_not_exists(pk)"}}
            for n, record in enumerate(records)
        ], ClientRequestToken=token)  # a retried transaction is applied once (as botocore sends one)

    def _item(self, record: AuditRecord, token: str, n: int) -> dict:
        item = {name: {"S": clean_text(getattr(record, name))} for name in TEXT_FIELDS}
        item.update(
            pk={"S": f"d#{_day(record.ts).isoformat()}"},
            sk={"S": f"{_micros(record.ts)}#{token}#{n:04d}"},
            ts={"N": repr(float(record.ts))},
            status={"N": str(int(record.status))},
            expires_at={"N": str(math.ceil(record.ts) + self.retention_days * DAY)},
        )
        return item

    def search(self, q: SearchQuery, now: float | None = None) -> tuple[list[dict], str | None]:
        now = time.time() if now is None else now
        newest = _day(min(q.until, now + CLOCK_SKEW) if q.until is not None else now + CLOCK_SKEW)
        oldest = _day(max(q.since or 0.0, now - self.retention_days * DAY))
        position = decode_cursor(q)
        day, below = (newest, None) if position is None else _position(position)
        # The filters, as a FilterExpression: "#exp > :now AND #op = :v0 AND #ts >= :v1 ..."
        comparisons = q.comparisons()
        names = {"#exp": "expires_at", **{f"#{name}": name for name, _, _ in comparisons}}
        values = {":now": {"N": repr(now)}}  # TTL deletes lazily; retention holds at once
        conditions = ["#exp > :now"]
        for n, (name, operator, value) in enumerate(comparisons):
            values[f":v{n}"] = {"N": repr(value)} if name == "ts" else {"S": value}
            conditions.append(f"#{name} {operator} :v{n}")
        if q.key_prefix:
            names["#key"], values[":prefix"] = "key", {"S": q.key_prefix}
            conditions.append("begins_with(#key, :prefix)")
        # The sort key narrows by time to the microsecond; the filter on ts is exact.
        low = SORT_KEY_MIN if q.since is None else _micros(q.since)
        top = SORT_KEY_MAX if q.until is None else _micros(q.until + 1e-6)

        found: list[dict] = []
        calls = 0
        while day >= oldest and len(found) < q.limit and calls < DYNAMO_MAX_CALLS:
            high = below or top
            if high < low:  # nothing left in this day's time window
                day, below = day - dt.timedelta(days=1), None
                continue
            calls += 1
            answer = self._call(
                "query", TableName=self.table, ScanIndexForward=False, Limit=DYNAMO_PAGE_ITEMS,
                KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
                FilterExpression=" AND ".join(conditions), ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":pk": {"S": f"d#{day.isoformat()}"},
                                           ":low": {"S": low}, ":high": {"S": high}},
            )
            # BETWEEN is inclusive, the cursor's sort key is not: skip that one item.
            # A CIDR range is no DynamoDB condition: checked here, on the page read.
            items = [item for item in answer["Items"] if item["sk"]["S"] != below
                     and q.in_net(item.get("client_ip", {}).get("S", ""))]
            found += items[: q.limit - len(found)]
            if len(found) == q.limit:
                below = found[-1]["sk"]["S"]  # resume below the last record returned
            elif answer.get("LastEvaluatedKey"):
                below = answer["LastEvaluatedKey"]["sk"]["S"]
            else:
                day, below = day - dt.timedelta(days=1), None
        cursor = encode_cursor(q, [day.isoformat(), below]) if day >= oldest else None
        return [_record(item) for item in found], cursor

    def claim_jti(self, jti: str, expires_at: float, now: float) -> bool:
        try:
            self._call(
                "put_item", TableName=self.table,
                Item={**_jti_key(jti), "expires_at": {"N": str(math.ceil(expires_at))}},
                # A conditional put is atomic: of two instances racing, one wins.
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": repr(float(now))}},
            )
        except DynamoError:  # only ConditionalCheckFailed gets through _call
            return False
        return True

    def release_jti(self, jti: str) -> None:
        self._call("delete_item", TableName=self.table, Key=_jti_key(jti))

    def purge(self, now: float) -> int:
        """TTL does this in DynamoDB, lazily (up to days late); this sweeps the days
        just behind the retention horizon for stores without TTL (moto, DynamoDB
        Local). Spent jtis need no sweep: an expired one can be claimed again."""
        cutoff = now - self.retention_days * DAY
        removed = 0
        day = _day(cutoff)
        for _ in range(DYNAMO_PURGE_LOOKBACK_DAYS + 1):
            extra: dict | None = {}  # then where the last page stopped, None after the last one
            while extra is not None:
                answer = self._call(
                    "query", TableName=self.table, KeyConditionExpression="pk = :pk",
                    FilterExpression="#ts < :cutoff",
                    ProjectionExpression="pk, sk", ExpressionAttributeNames={"#ts": "ts"},
                    ExpressionAttributeValues={":pk": {"S": f"d#{day.isoformat()}"},
                                               ":cutoff": {"N": repr(float(cutoff))}},
                    **extra,
                )
                for item in answer["Items"]:
                    self._call("delete_item", TableName=self.table, Key=item)  # item = its key
                    removed += 1
                start = answer.get("LastEvaluatedKey")
                extra = {"ExclusiveStartKey": start} if start else None
            day -= dt.timedelta(days=1)
        return removed

    def check(self) -> None:
        """For startup: the table exists, is usable (ACTIVE, or UPDATING) and is keyed
        pk (HASH) + sk (RANGE), both strings. Only DescribeTable: nothing is written."""
        where = f"the DynamoDB audit table {self.table!r}"
        try:
            table = self._send("DescribeTable", {"TableName": self.table})["Table"]
        except DynamoError as exc:
            if exc.code == "ResourceNotFoundException":
                raise ConfigError("audit.url", (
                    f"{where} does not exist in this account and region:"
                    " create it (gatekeeper init-audit) or fix the name")) from None
            raise ConfigError("audit.url", f"cannot describe {where}: {exc.code}") from None
        except TRANSPORT_ERRORS as exc:
            # Class name only: messages can carry endpoints and account details.
            raise ConfigError("audit.url", f"cannot reach DynamoDB for {where}: {type(exc).__name__}") from None
        keys = {key.get("AttributeName"): key.get("KeyType") for key in table.get("KeySchema", [])}
        if keys != {"pk": "HASH", "sk": "RANGE"}:
            raise ConfigError("audit.url", f"{where} must have the key pk (HASH) + sk (RANGE), not {keys}")
        types = {a.get("AttributeName"): a.get("AttributeType") for a in table.get("AttributeDefinitions", [])}
        if types.get("pk") != "S" or types.get("sk") != "S":
            raise ConfigError("audit.url", f"{where} must have string (S) keys pk and sk")
        if table.get("TableStatus") not in ("ACTIVE", "UPDATING"):
            raise ConfigError("audit.url", f"{where} is {table.get('TableStatus')}, not ACTIVE")

    def healthy(self) -> bool:
        try:  # outside every day partition, so no search sees it; TTL drops it
            self._call("put_item", TableName=self.table, Item={
                "pk": {"S": "health"}, "sk": {"S": "probe"}, "expires_at": {"N": str(int(time.time()))}})
        except AuditUnavailable:
            return False
        return True
