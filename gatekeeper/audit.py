"""The customer's audit log, and the registry of single-use grant ids (jti).

Both live in one store because both must be durable and shared by every gatekeeper
instance. Two stores: SQLite for a self-hosted gatekeeper, DynamoDB for the AWS
(Lambda) deployment. Every storage failure on a write or a claim raises
AuditUnavailable, and the caller refuses the request: fail closed.

Searching (`POST /v1/audit/search`) returns records newest first, `limit` at a
time, with an opaque `cursor` for the next page. Follow the cursor until it is
null: a page may hold fewer than `limit` records (DynamoDB stops after a bounded
amount of work per call) without being the last one.

Record `op` names: the protocol's ops (get, list, put, delete, unwrap), "audit" for
an audit search, "sign" for a /v1/sign request recorded as a whole, and "request"
for a refusal that happened before any op could be named (unknown path, bad body,
bad grant, ACL). Search accepts exactly these names.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, fields
from typing import Protocol

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from .errors import AuditUnavailable, BadRequest, ConfigError

log = logging.getLogger(__name__)

OPS = frozenset({"get", "list", "put", "delete", "unwrap", "audit", "sign", "request"})
OUTCOMES = frozenset({"allow", "deny"})
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_FILTER_CHARS = 1024  # a key is at most 1,024 bytes; nothing else needs more
MAX_CURSOR_CHARS = 1024
MAX_TIME_TEXT = 64
MAX_TS = 253402300799  # 9999-12-31T23:59:59Z
MAX_FIELD_CHARS = 2048  # stored text fields are cut here: a user agent is not a novel
DAY = 86400
PURGE_INTERVAL = 3600  # seconds between purges triggered by write(), per process
PURGE_CHUNK = 5000  # rows per purge transaction, so writers never wait long
SQLITE_BUSY_TIMEOUT = 2.0  # seconds: a locked database fails closed instead of hanging


# --- records --------------------------------------------------------------------

@dataclass(slots=True)
class AuditRecord:
    ts: float  # epoch seconds
    request_id: str = ""
    client_ip: str = ""
    country: str = ""
    user_agent: str = ""
    origin: str = ""
    op: str = ""
    key: str = ""  # the key, or the list prefix; "" if none
    outcome: str = ""  # "allow" or "deny"
    reason: str = ""  # reason code; "" when allowed
    status: int = 0
    jti: str = ""
    sub: str = ""
    kid: str = ""

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in FIELDS}


FIELDS = tuple(f.name for f in fields(AuditRecord))
TEXT_FIELDS = tuple(name for name in FIELDS if name not in ("ts", "status"))


def _clean(text: str) -> str:
    """Bounded, encodable text: header values and grant claims are attacker input,
    and a lone surrogate from a JSON claim must not make the write fail."""
    return str(text)[:MAX_FIELD_CHARS].encode("utf-8", "replace").decode("utf-8")


# --- search queries ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Filters are ANDed. `since` is inclusive, `until` exclusive (epoch seconds)."""

    since: float | None = None
    until: float | None = None
    op: str | None = None
    outcome: str | None = None
    client_ip: str | None = None
    sub: str | None = None
    key_prefix: str | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def filters(self) -> dict:
        """What a cursor is bound to: everything but the page size and position."""
        return {name: getattr(self, name) for name in SEARCH_FILTERS}


SEARCH_FILTERS = ("since", "until", "op", "outcome", "client_ip", "sub", "key_prefix")
SEARCH_FIELDS = frozenset(SEARCH_FILTERS + ("limit", "cursor"))


def parse_search(body: object) -> SearchQuery:
    """Validate the JSON body of an audit search. Raises only BadRequest."""
    if not isinstance(body, dict):
        raise BadRequest("the audit search body must be a JSON object", code="bad_filter")
    unknown = sorted(str(name) for name in body if name not in SEARCH_FIELDS)
    if unknown:
        raise BadRequest(f"unknown audit search field {unknown[0]!r}", code="bad_filter")
    since = _time(body, "since")
    until = _time(body, "until")
    if since is not None and until is not None and since > until:
        raise BadRequest("'since' must not be after 'until'", code="bad_filter")
    limit = body.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"'limit' must be an integer from 1 to {MAX_LIMIT}", code="bad_filter")
    query = SearchQuery(
        since=since,
        until=until,
        op=_choice(body, "op", OPS),
        outcome=_choice(body, "outcome", OUTCOMES),
        client_ip=_ip(body),
        sub=_text(body, "sub", MAX_FILTER_CHARS),
        key_prefix=_text(body, "key_prefix", MAX_FILTER_CHARS) or None,
        limit=limit,
        cursor=_text(body, "cursor", MAX_CURSOR_CHARS),
    )
    decode_cursor(query)  # a bad cursor is refused here, before the search is audited as allowed
    return query


def _text(body: dict, name: str, max_chars: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_chars:
        raise BadRequest(f"{name!r} must be a string of at most {max_chars} characters", code="bad_filter")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape from JSON
        raise BadRequest(f"{name!r} is not valid Unicode", code="bad_filter") from None
    return value


def _choice(body: dict, name: str, allowed: frozenset[str]) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or value not in allowed):
        raise BadRequest(f"{name!r} must be one of {', '.join(sorted(allowed))}", code="bad_filter")
    return value


def _ip(body: dict) -> str | None:
    value = body.get("client_ip")
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise BadRequest("'client_ip' must be an IPv4 or IPv6 address", code="bad_filter") from None


def _time(body: dict, name: str) -> float | None:
    """Epoch seconds as a number, or an ISO-8601 string (no offset means UTC)."""
    value = body.get(name)
    if value is None:
        return None
    problem = f"{name!r} must be epoch seconds or an ISO-8601 time between 1970 and 9999"
    if isinstance(value, str) and len(value) <= MAX_TIME_TEXT:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise BadRequest(problem, code="bad_filter") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        value = (moment - EPOCH).total_seconds()
    # Compared before float(): NaN fails every comparison, and huge ints stay exact.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_TS:
        raise BadRequest(problem, code="bad_filter")
    return float(value)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


# --- cursors ------------------------------------------------------------------------
# A cursor is base64url(JSON {f: filters fingerprint, p: position} + check bytes).
# The check catches garbage, hand edits and cursors from another search; it is not a
# security boundary (no key): a cursor only says where to resume, and the audit
# grant already allows reading the whole log.

CURSOR_CONTEXT = b"dualkey-audit-cursor-v1"
CURSOR_CHECK_BYTES = 8


def _fingerprint(q: SearchQuery) -> str:
    canonical = json.dumps(q.filters(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(q: SearchQuery, position: list) -> str:
    payload = json.dumps({"f": _fingerprint(q), "p": position}, separators=(",", ":")).encode()
    check = hashlib.sha256(CURSOR_CONTEXT + payload).digest()[:CURSOR_CHECK_BYTES]
    return base64.urlsafe_b64encode(payload + check).decode().rstrip("=")


def decode_cursor(q: SearchQuery) -> list | None:
    """The position stored in q.cursor, or None for the first page."""
    if q.cursor is None:
        return None
    invalid = BadRequest("'cursor' is not a cursor from this search", code="bad_filter")
    try:
        raw = base64.urlsafe_b64decode(q.cursor + "=" * (-len(q.cursor) % 4))
        payload, check = raw[:-CURSOR_CHECK_BYTES], raw[-CURSOR_CHECK_BYTES:]
        expected = hashlib.sha256(CURSOR_CONTEXT + payload).digest()[:CURSOR_CHECK_BYTES]
        if len(raw) <= CURSOR_CHECK_BYTES or not hmac.compare_digest(check, expected):
            raise invalid
        data = json.loads(payload)
    except (ValueError, binascii.Error):  # includes bad JSON and bad UTF-8
        raise invalid from None
    if not isinstance(data, dict) or data.get("f") != _fingerprint(q):
        raise invalid
    if not isinstance(data.get("p"), list):
        raise invalid
    return data["p"]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- the store interface --------------------------------------------------------------

class AuditStore(Protocol):
    def write(self, records: list[AuditRecord], now: float | None = None) -> None:
        """All records or none; any storage failure raises AuditUnavailable."""

    def search(self, q: SearchQuery, now: float | None = None) -> tuple[list[dict], str | None]:
        """A page of records (as dicts) newest first, and the next page's cursor.
        `now` only matters to DynamoDB, which hides records TTL has not deleted yet."""

    def claim_jti(self, jti: str, expires_at: float, now: float) -> bool:
        """True once per grant id until it expires; AuditUnavailable on failure."""

    def purge(self, now: float) -> int:
        """Drop records older than the retention and expired jtis; return how many."""

    def healthy(self) -> bool: ...


def _jti_id(jti: str) -> str:
    """Fixed-size and always encodable, whatever the grant's jti claim contains."""
    return hashlib.sha256(jti.encode("utf-8", "surrogatepass")).hexdigest()


def _prefix_end(prefix: str) -> str | None:
    """The smallest string above every string that starts with `prefix`, for a range
    scan on an index (code point order is UTF-8 byte order, which SQLite uses)."""
    chars = list(prefix)
    while chars:
        successor = ord(chars.pop()) + 1
        if successor == 0xD800:  # skip the surrogates: they never occur in keys
            successor = 0xE000
        if successor <= 0x10FFFF:
            return "".join(chars) + chr(successor)
    return None


# --- SQLite -------------------------------------------------------------------------------

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL, client_ip TEXT NOT NULL, country TEXT NOT NULL,
    user_agent TEXT NOT NULL, origin TEXT NOT NULL, op TEXT NOT NULL, key TEXT NOT NULL,
    outcome TEXT NOT NULL, reason TEXT NOT NULL, status INTEGER NOT NULL,
    jti TEXT NOT NULL, sub TEXT NOT NULL, kid TEXT NOT NULL
);
-- Every index ends in ts (and, implicitly, the rowid), so a filtered search walks
-- one index backwards and stops after `limit` rows: no sort, no full scan.
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts);
CREATE INDEX IF NOT EXISTS audit_sub_ts ON audit (sub, ts);
CREATE INDEX IF NOT EXISTS audit_ip_ts ON audit (client_ip, ts);
CREATE INDEX IF NOT EXISTS audit_op_ts ON audit (op, ts);
CREATE INDEX IF NOT EXISTS audit_outcome_ts ON audit (outcome, ts);
-- "denied gets" is a common search, and some op/outcome pairs never occur at all.
CREATE INDEX IF NOT EXISTS audit_op_outcome_ts ON audit (op, outcome, ts);
CREATE INDEX IF NOT EXISTS audit_key_ts ON audit (key, ts);
CREATE TABLE IF NOT EXISTS jti (id TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID;
"""
SQLITE_INSERT = (
    f"INSERT INTO audit ({', '.join(FIELDS)}) VALUES ({', '.join('?' for _ in FIELDS)})"
)
# A key prefix matching fewer rows than this is read through the key index and
# sorted; a broader one is found faster by walking the time index and filtering.
NARROW_PREFIX_ROWS = 2000


class SqliteAuditStore:
    """WAL mode, one connection per thread (the HTTP server is multi-threaded)."""

    def __init__(self, path: str, retention_days: int, busy_timeout: float = SQLITE_BUSY_TIMEOUT):
        self.path = path
        self.retention_days = retention_days
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._schema_ready = False
        self._next_purge = 0.0

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level IMMEDIATE: every write transaction takes the write lock
            # up front, so a busy database fails within busy_timeout, not mid-way.
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout,
                                   isolation_level="IMMEDIATE")
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                with self._lock:
                    if not self._schema_ready:
                        conn.executescript(SQLITE_SCHEMA)
                        self._schema_ready = True
            except sqlite3.Error:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (the next use opens a new one)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def write(self, records: list[AuditRecord], now: float | None = None) -> None:
        rows = [
            tuple(_clean(v) if isinstance(v, str) else v for v in (getattr(r, n) for n in FIELDS))
            for r in records
        ]
        try:
            conn = self._conn()
            with conn:
                conn.executemany(SQLITE_INSERT, rows)
        except sqlite3.Error as exc:
            log.error("audit write failed: %s", exc)
            raise AuditUnavailable("the audit log is unavailable") from None
        if now is None:  # the records carry the caller's clock (injectable in tests)
            now = max((record.ts for record in records), default=time.time())
        self._maybe_purge(now)

    def _maybe_purge(self, now: float) -> None:
        with self._lock:
            if now < self._next_purge:
                return
            self._next_purge = now + PURGE_INTERVAL
        try:
            self.purge(now)
        except AuditUnavailable:
            pass  # already logged; the records were written, the next purge catches up

    def search(self, q: SearchQuery, now: float | None = None) -> tuple[list[dict], str | None]:
        position = decode_cursor(q)
        if position is not None and not (
            len(position) == 2 and _is_number(position[0])
            and isinstance(position[1], int) and not isinstance(position[1], bool)
            and abs(position[1]) < 2**63  # SQLite's INTEGER range
        ):
            raise BadRequest("'cursor' is not a cursor from this search", code="bad_filter")
        where, args = [], []
        for name in ("op", "outcome", "client_ip", "sub"):
            if getattr(q, name) is not None:
                where.append(f"{name} = ?")
                args.append(getattr(q, name))
        if q.since is not None:
            where.append("ts >= ?")
            args.append(q.since)
        if q.until is not None:
            where.append("ts < ?")
            args.append(q.until)
        if position is not None:
            # Keyset pagination on (ts, id): "ts <= ?" bounds the index range, the
            # OR resolves ties without breaking that bound.
            where.append("ts <= ? AND (ts < ? OR id < ?)")
            args += [position[0], position[0], position[1]]
        try:
            conn = self._conn()
            if q.key_prefix:
                clause, prefix_args = self._prefix_clause(conn, q.key_prefix)
                where.append(clause)
                args += prefix_args
            sql = (
                f"SELECT id, {', '.join(FIELDS)} FROM audit"
                f"{' WHERE ' + ' AND '.join(where) if where else ''}"
                " ORDER BY ts DESC, id DESC LIMIT ?"
            )
            rows = conn.execute(sql, args + [q.limit + 1]).fetchall()
        except sqlite3.Error as exc:
            log.error("audit search failed: %s", exc)
            raise AuditUnavailable("the audit log is unavailable") from None
        page = rows[: q.limit]
        cursor = encode_cursor(q, [page[-1][1], page[-1][0]]) if len(rows) > q.limit else None
        return [AuditRecord(*row[1:]).to_dict() for row in page], cursor

    @staticmethod
    def _prefix_clause(conn: sqlite3.Connection, prefix: str) -> tuple[str, list]:
        end = _prefix_end(prefix)
        bounds, args = ("key >= ? AND key < ?", [prefix, end]) if end else ("key >= ?", [prefix])
        # Count at most NARROW_PREFIX_ROWS matches on the key index (cheap), then
        # pick the plan; the unary + keeps SQLite off the key index for broad prefixes.
        sample = f"SELECT count(*) FROM (SELECT 1 FROM audit WHERE {bounds} LIMIT ?)"
        if conn.execute(sample, args + [NARROW_PREFIX_ROWS]).fetchone()[0] < NARROW_PREFIX_ROWS:
            return bounds, args
        return bounds.replace("key", "+key"), args

    def claim_jti(self, jti: str, expires_at: float, now: float) -> bool:
        try:
            conn = self._conn()
            with conn:
                # One statement, so two instances racing for the same jti cannot both win.
                changed = conn.execute(
                    "INSERT INTO jti (id, expires_at) VALUES (?, ?) ON CONFLICT (id)"
                    " DO UPDATE SET expires_at = excluded.expires_at WHERE jti.expires_at <= ?",
                    (_jti_id(jti), expires_at, now),
                ).rowcount
        except sqlite3.Error as exc:
            log.error("jti claim failed: %s", exc)
            raise AuditUnavailable("the grant registry is unavailable") from None
        return changed == 1

    def purge(self, now: float) -> int:
        cutoff = now - self.retention_days * DAY
        removed = 0
        try:
            conn = self._conn()
            while True:
                with conn:
                    count = conn.execute(
                        "DELETE FROM audit WHERE id IN"
                        " (SELECT id FROM audit WHERE ts < ? ORDER BY ts LIMIT ?)",
                        (cutoff, PURGE_CHUNK),
                    ).rowcount
                removed += count
                if count < PURGE_CHUNK:
                    break
            with conn:
                removed += conn.execute("DELETE FROM jti WHERE expires_at <= ?", (now,)).rowcount
        except sqlite3.Error as exc:
            log.error("audit purge failed: %s", exc)
            raise AuditUnavailable("the audit log is unavailable") from None
        return removed

    def healthy(self) -> bool:
        try:
            self._conn().execute("SELECT 1 FROM audit LIMIT 1").fetchall()
        except sqlite3.Error:
            return False
        return True


# --- DynamoDB --------------------------------------------------------------------------------
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
SORT_KEY_RE = re.compile(r"^\d{16}#[0-9a-f]{16}#\d{4,}$")
SORT_KEY_MIN, SORT_KEY_MAX = "0", "~"  # below and above every "<digits>#..." sort key


def _day(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).date()


def _micros(ts: float) -> str:
    return f"{round(ts * 1_000_000):016d}"


class DynamoAuditStore:
    def __init__(self, table: str, retention_days: int, endpoint_url: str | None = None,
                 region: str | None = None):
        self.table = table
        self.retention_days = retention_days
        self.endpoint_url = endpoint_url or None
        self.region = region
        self._client = None
        self._lock = threading.Lock()

    @property
    def client(self):
        """One client per process, made on first use (boto3 clients are thread-safe)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = boto3.session.Session().client(
                        "dynamodb", region_name=self.region, endpoint_url=self.endpoint_url,
                        # Bounded timeouts and few retries: a request waits on its audit record.
                        config=BotoConfig(connect_timeout=2, read_timeout=10,
                                          retries={"max_attempts": 3, "mode": "standard"}),
                    )
        return self._client

    def _call(self, method: str, **kwargs) -> dict:
        """Every storage failure becomes AuditUnavailable; no AWS detail leaks to callers.
        A failed condition is not a failure: it re-raises for the caller to handle."""
        try:
            return getattr(self.client, method)(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise
            log.error("audit %s failed: %s", method, exc)
        except BotoCoreError as exc:
            log.error("audit %s failed: %s", method, exc)
        raise AuditUnavailable("the audit log is unavailable")

    def create_table(self) -> None:
        """Create the table with TTL on `expires_at`; harmless if it already exists."""
        client = self.client
        try:
            client.create_table(
                TableName=self.table, BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                           {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "sk", "AttributeType": "S"}],
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        client.get_waiter("table_exists").wait(
            TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        ttl = client.describe_time_to_live(TableName=self.table)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            client.update_time_to_live(
                TableName=self.table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})

    def write(self, records: list[AuditRecord], now: float | None = None) -> None:
        token = os.urandom(8).hex()  # sort keys unique even if request ids are not
        items = [self._item(record, token, n) for n, record in enumerate(records)]
        # Transactions hold at most 100 items; a bigger batch is several, and if a
        # later one fails the request is still refused (fail closed).
        for start in range(0, len(items), DYNAMO_TRANSACTION_ITEMS):
            self._call("transact_write_items", TransactItems=[
                # The condition makes an audit record impossible to overwrite.
                {"Put": {"TableName": self.table, "Item": item,
                         "ConditionExpression": "attribute_not_exists(pk)"}}
                for item in items[start:start + DYNAMO_TRANSACTION_ITEMS]
            ])

    def _item(self, record: AuditRecord, token: str, n: int) -> dict:
        item = {name: {"S": _clean(getattr(record, name))} for name in TEXT_FIELDS}
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
        day, below = newest, None
        position = decode_cursor(q)
        if position is not None:
            day, below = self._position(position)
        names, values = {"#exp": "expires_at"}, {":now": {"N": repr(now)}}
        conditions = ["#exp > :now"]  # TTL deletes lazily; retention holds at once
        for name in ("op", "outcome", "client_ip", "sub"):
            if getattr(q, name) is not None:
                names[f"#{name}"] = name
                values[f":{name}"] = {"S": getattr(q, name)}
                conditions.append(f"#{name} = :{name}")
        if q.key_prefix:
            names["#key"] = "key"
            values[":prefix"] = {"S": q.key_prefix}
            conditions.append("begins_with(#key, :prefix)")
        # The sort key narrows by time to the microsecond; the filter on ts is exact.
        low, top = SORT_KEY_MIN, SORT_KEY_MAX
        if q.since is not None:
            low = _micros(q.since)
            names["#ts"], values[":since"] = "ts", {"N": repr(q.since)}
            conditions.append("#ts >= :since")
        if q.until is not None:
            top = _micros(q.until + 1e-6)
            names["#ts"], values[":until"] = "ts", {"N": repr(q.until)}
            conditions.append("#ts < :until")

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
            items = [item for item in answer["Items"] if item["sk"]["S"] != below]
            if len(found) + len(items) >= q.limit:
                found += items[: q.limit - len(found)]
                below = found[-1]["sk"]["S"]  # resume below the last record returned
            elif answer.get("LastEvaluatedKey"):
                found += items
                below = answer["LastEvaluatedKey"]["sk"]["S"]
            else:
                found += items
                day, below = day - dt.timedelta(days=1), None
        cursor = encode_cursor(q, [day.isoformat(), below]) if day >= oldest else None
        return [self._record(item) for item in found], cursor

    @staticmethod
    def _position(position: list) -> tuple[dt.date, str | None]:
        invalid = BadRequest("'cursor' is not a cursor from this search", code="bad_filter")
        if len(position) != 2 or not isinstance(position[0], str) or not DAY_RE.match(position[0]):
            raise invalid
        below = position[1]
        if below is not None and not (isinstance(below, str) and SORT_KEY_RE.match(below)):
            raise invalid
        try:
            return dt.date.fromisoformat(position[0]), below
        except ValueError:
            raise invalid from None

    @staticmethod
    def _record(item: dict) -> dict:
        record = AuditRecord(ts=float(item["ts"]["N"]), status=int(item["status"]["N"]))
        for name in TEXT_FIELDS:
            setattr(record, name, item.get(name, {}).get("S", ""))
        return record.to_dict()

    def claim_jti(self, jti: str, expires_at: float, now: float) -> bool:
        try:
            self._call(
                "put_item", TableName=self.table,
                Item={"pk": {"S": f"jti#{_jti_id(jti)}"}, "sk": {"S": "jti"},
                      "expires_at": {"N": str(math.ceil(expires_at))}},
                # A conditional put is atomic: of two instances racing, one wins.
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                ExpressionAttributeValues={":now": {"N": repr(float(now))}},
            )
        except ClientError:  # only ConditionalCheckFailed gets through _call
            return False
        return True

    def purge(self, now: float) -> int:
        """TTL does this in DynamoDB, lazily (up to days late); this sweeps the days
        just behind the retention horizon for stores without TTL (moto, DynamoDB
        Local). Spent jtis need no sweep: an expired one can be claimed again."""
        cutoff = now - self.retention_days * DAY
        removed = 0
        day = _day(cutoff)
        for _ in range(DYNAMO_PURGE_LOOKBACK_DAYS + 1):
            start: dict | None = None
            while True:
                extra = {"ExclusiveStartKey": start} if start else {}
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
                if not start:
                    break
            day -= dt.timedelta(days=1)
        return removed

    def healthy(self) -> bool:
        try:
            status = self._call("describe_table", TableName=self.table)["Table"]["TableStatus"]
        except AuditUnavailable:
            return False
        return status == "ACTIVE"


# --- configuration --------------------------------------------------------------------------

DYNAMO_TABLE_RE = re.compile(r"^[A-Za-z0-9_.\-]{3,255}$")


def open_store(url: str, retention_days: int, endpoint_url: str = "",
               region: str = "us-east-1") -> SqliteAuditStore | DynamoAuditStore:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or `dynamodb://TABLE`.
    DynamoDB uses the S3 endpoint_url when one is set (moto serves both)."""
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return SqliteAuditStore(url.removeprefix("sqlite:///"), retention_days)
    if url.startswith("dynamodb://"):
        table = url.removeprefix("dynamodb://")
        if DYNAMO_TABLE_RE.match(table):
            return DynamoAuditStore(table, retention_days, endpoint_url or None, region)
    raise ConfigError("audit.url", "must be sqlite:///PATH or dynamodb://TABLE")
