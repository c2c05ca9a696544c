"""The audit log and the jti registry, on a real SQLite file and on moto's real
DynamoDB server. Every store test runs against both."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import random
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid

import boto3
import pytest

from gatekeeper import audit, audit_dynamodb, audit_sqlite
from gatekeeper.app import open_store
from gatekeeper.audit import AuditRecord, SearchQuery, parse_search
from gatekeeper.config import sqlite_path
from gatekeeper.audit_dynamodb import DynamoAuditStore
from gatekeeper.audit_sqlite import SqliteAuditStore
from gatekeeper.errors import AuditUnavailable, BadRequest, ConfigError

HOUR, DAY = 3600, 86400
RETENTION_DAYS = 30
NOW = time.time()


def make_records(count: int = 60) -> list[AuditRecord]:
    """A varied log: three hours apart (so DynamoDB spans several day partitions),
    keys under tickets/1/ and tickets/10/ (a prefix must not confuse them), denials."""
    ops = ["get", "list", "put", "delete", "audit", "request"]
    subs = ["user:7", "user:8", "agent:3", ""]
    ips = ["203.0.113.5", "2001:db8::1", "198.51.100.7"]
    records = []
    for i in range(count):
        op = ops[i % len(ops)]
        ticket = ["1", "10", "11", "2", "ü"][i % 5]
        key = {"list": f"tickets/{ticket}/", "audit": "", "request": ""}.get(op, f"tickets/{ticket}/f{i}.png")
        deny = i % 7 == 0
        records.append(AuditRecord(
            ts=NOW - i * 3 * HOUR - 0.123, request_id=f"req-{i}", client_ip=ips[i % len(ips)],
            country="FR", user_agent="Mozilla/5.0", origin="https://portal.test", op=op, key=key,
            outcome="deny" if deny else "allow", reason="ip_denied" if deny else "",
            status=403 if deny else 200, jti=f"jti-{i}", sub=subs[i % len(subs)], name=f"Person {i % 3}", kid="k1",
            approval=f"apr-{i}" if i % 4 == 1 else "", approvers="alice,bob" if i % 4 == 1 else "",
        ))
    return records


def expected(records: list[AuditRecord], q: SearchQuery) -> list[dict]:
    """The same search, done the slow and obvious way (`records` written in order)."""
    def keep(r: AuditRecord) -> bool:
        return (
            (q.since is None or r.ts >= q.since) and (q.until is None or r.ts < q.until)
            and all(getattr(q, f) is None or getattr(r, f) == getattr(q, f)
                    for f in ("op", "outcome", "client_ip", "sub"))
            and (q.key_prefix is None or r.key.startswith(q.key_prefix))
            and (q.client_net is None or ipaddress.ip_address(r.client_ip) in ipaddress.ip_network(q.client_net))
        )
    # Records of one time (one request's) come last written first, as written in order.
    newest_first = [r for _, r in sorted(enumerate(records), key=lambda p: (-p[1].ts, -p[0]))]
    return [r.to_dict() for r in newest_first if keep(r)]


def search_all(store, body: dict) -> tuple[list[dict], int]:
    """Follow the cursor to the end; return every entry and the number of pages."""
    entries, cursor, pages = [], None, 0
    while True:
        page, cursor = store.search(parse_search({**body, **({"cursor": cursor} if cursor else {})}))
        entries += page
        pages += 1
        assert len(page) <= body.get("limit", audit.DEFAULT_LIMIT)
        assert pages < 200, "the cursor never ends"
        if cursor is None:
            return entries, pages


def dynamodb(moto_url: str):
    """Another client (boto3's) for what the store itself never does: drop a table, scan one."""
    return boto3.client("dynamodb", endpoint_url=moto_url, region_name="us-east-1")


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request, tmp_path):
    if request.param == "sqlite":
        sqlite_store = SqliteAuditStore(str(tmp_path / "audit.db"), RETENTION_DAYS, busy_timeout=0.2)
        yield sqlite_store
        sqlite_store.close()
    else:
        moto_url = request.getfixturevalue("moto_url")
        dynamo_store = DynamoAuditStore(f"audit-{uuid.uuid4().hex[:12]}", RETENTION_DAYS,
                                        endpoint_url=moto_url, region="us-east-1")
        dynamo_store.create_table()
        yield dynamo_store


@pytest.fixture
def filled(store):
    records = make_records()
    shuffled = records[:]
    random.Random(4).shuffle(shuffled)  # written out of order: search must sort
    store.write(shuffled[:25])
    store.write(shuffled[25:])
    return store, records


# --- writing and searching --------------------------------------------------------------

def test_it_round_trips_every_field(store):
    record = make_records(1)[0]
    store.write([record])
    entries, cursor = store.search(SearchQuery())
    assert entries == [record.to_dict()]
    assert cursor is None
    assert list(entries[0]) == [
        "ts", "request_id", "client_ip", "country", "user_agent", "origin", "op", "key",
        "outcome", "reason", "status", "jti", "sub", "name", "kid", "approval", "approvers", "idp_sub", "idp_iss",
    ]
    support = next(r for r in make_records() if r.approval)
    store.write([support])
    [entry] = [e for e in store.search(SearchQuery())[0] if e["request_id"] == support.request_id]
    assert (entry["approval"], entry["approvers"]) == (support.approval, "alice,bob")


def test_it_returns_newest_first(filled):
    store, records = filled
    entries, _ = store.search(parse_search({"limit": 500}))
    assert [e["request_id"] for e in entries] == [r["request_id"] for r in expected(records, SearchQuery())]


@pytest.mark.parametrize("body", [
    {},
    {"op": "get"},
    {"op": "request"},
    {"outcome": "deny"},
    {"client_ip": "2001:DB8:0::1"},  # normalized before comparing
    {"client_ip": "198.51.100.7"},
    {"client_net": "203.0.113.0/24"},  # an address range, CIDR
    {"client_net": "198.51.100.0/29", "op": "put"},
    {"client_net": "2001:DB8::/32"},
    {"client_net": "0.0.0.0/0", "outcome": "deny"},
    {"sub": "user:7"},
    {"sub": ""},  # refusals that came without a readable grant
    {"key_prefix": "tickets/1/"},  # not tickets/10/ or tickets/11/
    {"key_prefix": "tickets/ü/"},
    {"key_prefix": "tickets/1"},
    {"since": NOW - 2 * DAY},
    {"until": NOW - 2 * DAY},
    {"since": NOW - 5 * DAY, "until": NOW - 2 * DAY},
    {"since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - 3 * DAY))},
    {"op": "get", "outcome": "deny"},
    {"op": "put", "outcome": "allow", "sub": "user:7", "client_ip": "198.51.100.7",
     "key_prefix": "tickets/", "since": NOW - 6 * DAY, "until": NOW},
    {"sub": "nobody"},
])
def test_it_filters(filled, body):
    store, records = filled
    entries, _ = search_all(store, {**body, "limit": 500})
    want = expected(records, parse_search(body))
    assert entries == want
    assert body == {"sub": "nobody"} or want  # each case means something


@pytest.mark.parametrize("body", [{"limit": 7}, {"limit": 1, "outcome": "deny"}, {"limit": 3, "op": "get"}])
def test_it_pages_without_duplicates_or_gaps(filled, body):
    store, records = filled
    entries, pages = search_all(store, body)
    want = expected(records, parse_search(body))
    assert entries == want
    assert pages >= len(want) // body["limit"]


def test_a_page_is_at_most_limit_long(filled):
    store, _ = filled
    first, cursor = store.search(parse_search({"limit": 10}))
    assert len(first) == 10 and cursor
    second, _ = store.search(parse_search({"limit": 10, "cursor": cursor}))
    assert len(second) == 10 and second[0]["ts"] < first[-1]["ts"]


def test_the_last_page_has_no_cursor(filled):
    store, _ = filled
    entries, cursor = store.search(parse_search({"sub": "agent:3", "limit": 500}))
    assert entries and cursor is None


def test_a_cursor_only_works_for_its_own_search(filled):
    store, _ = filled
    _, cursor = store.search(parse_search({"op": "get", "limit": 2}))
    with pytest.raises(BadRequest, match="cursor"):
        store.search(parse_search({"op": "list", "limit": 2, "cursor": cursor}))
    # The page size may change between pages.
    store.search(parse_search({"op": "get", "limit": 5, "cursor": cursor}))


def forged(payload: dict) -> str:
    """A well-formed cursor body without the right check bytes."""
    return base64.urlsafe_b64encode(json.dumps(payload).encode() + b"12345678").decode()


@pytest.mark.parametrize("cursor", [
    "garbage", "", "====", "é", "AAAAAAAAAAAAAAAAAAAAAAAA",
    forged({"f": "0" * 16, "p": [1.0, 1]}),
    "tamper",  # replaced below by a real cursor with one character changed
])
def test_a_garbage_cursor_is_refused(filled, cursor):
    store, _ = filled
    if cursor == "tamper":
        _, real = store.search(parse_search({"limit": 2}))
        cursor = real[:10] + ("A" if real[10] != "A" else "B") + real[11:]
    with pytest.raises(BadRequest, match="cursor"):
        store.search(parse_search({"limit": 2, "cursor": cursor}))


def unkeyed(payload: dict, key: bytes | None = None) -> str:
    """A cursor checked as the gatekeeper's once were (a plain SHA-256 anyone can
    compute), or, with `key`, an HMAC under another gatekeeper's key."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    check = (hmac.new(key, audit.CURSOR_CONTEXT + body, hashlib.sha256).digest() if key
             else hashlib.sha256(audit.CURSOR_CONTEXT + body).digest()[:8])
    return base64.urlsafe_b64encode(body + check).decode().rstrip("=")


@pytest.mark.parametrize("key", [None, b"k" * 32])
def test_a_cursor_this_gatekeeper_did_not_make_is_refused(filled, key):
    store, _ = filled
    q = parse_search({"limit": 2})
    position = [10**20, 1] if isinstance(store, SqliteAuditStore) else ["2025-01-01", None]
    with pytest.raises(BadRequest, match="cursor"):  # and not an OverflowError (a 500)
        store.search(parse_search({"limit": 2, "cursor": unkeyed({"f": audit._fingerprint(q), "p": position}, key)}))


OUT_OF_BOUNDS = {
    "sqlite": [[10**20, 1], [1e300, 1], [float("inf"), 1], [-1.0, 1], [NOW, 2**63], [NOW, 0], [NOW, True],
               [NOW, 1.5]],
    "dynamodb": [["2025-01-01", "0000000000000000#0123456789abcdef#" + "9" * 50]],
}


def test_a_position_out_of_bounds_is_refused_even_under_the_key(filled):
    store, _ = filled
    for position in OUT_OF_BOUNDS["sqlite" if isinstance(store, SqliteAuditStore) else "dynamodb"]:
        cursor = audit.encode_cursor(parse_search({"limit": 2}), position)
        with pytest.raises(BadRequest, match="cursor"):
            store.search(parse_search({"limit": 2, "cursor": cursor}))


def test_a_cursor_works_where_the_key_is_the_same(filled):
    store, _ = filled
    _, cursor = store.search(parse_search({"limit": 2}, b"s" * 32))
    assert store.search(parse_search({"limit": 2, "cursor": cursor}, b"s" * 32))[0]
    with pytest.raises(BadRequest, match="cursor"):
        parse_search({"limit": 2, "cursor": cursor})  # this process's own key


def test_a_cursor_from_the_other_kind_of_store_is_refused(filled):
    store, _ = filled
    q = parse_search({"limit": 2})
    position = ["2025-01-01", None] if isinstance(store, SqliteAuditStore) else [NOW, 1]
    with pytest.raises(BadRequest, match="cursor"):
        store.search(parse_search({"limit": 2, "cursor": audit.encode_cursor(q, position)}))


def test_limit_bounds(filled):
    store, _ = filled
    assert len(store.search(parse_search({"limit": 1}))[0]) == 1
    assert len(store.search(parse_search({}))[0]) == 60  # default 100
    assert len(search_all(store, {"limit": 500})[0]) == 60


def test_awkward_text_is_stored_not_refused(store):
    """Header values and grant claims are attacker input: a lone surrogate or a
    huge user agent must not make the audit write (and so the request) fail."""
    record = AuditRecord(ts=NOW, user_agent="x" * 100_000, sub="\ud800bad", key="tickets/1/\x00")
    store.write([record])
    [entry] = store.search(SearchQuery())[0]
    assert len(entry["user_agent"]) == audit.MAX_FIELD_CHARS
    assert entry["sub"] == "\\ud800bad"
    assert entry["key"] == "tickets/1/\\u0000"


@pytest.mark.parametrize("text, stored", [
    ("a\nb", "a\\u000ab"), ("gpj.\u202eexe", "gpj.\\u202eexe"), ("x\x85y\x9b", "x\\u0085y\\u009b"),
    ("a\u2028b\ufeff", "a\\u2028b\\ufeff"), ("\U000e0041", "\\U000e0041"),
    ("C:\\u202e", "C:\\u005cu202e"),  # a backslash is escaped too: an escape is never text
    ("r\u00e9sum\u00e9 \u753b\u00a0", "r\u00e9sum\u00e9 \u753b\u00a0"),  # other text is kept as it is
])
def test_control_and_bidi_characters_are_stored_escaped(store, text, stored):
    store.write([AuditRecord(ts=NOW, user_agent=text, origin=text, kid=text, sub=text)])
    [entry] = store.search(SearchQuery())[0]
    assert (entry["user_agent"], entry["origin"], entry["kid"], entry["sub"]) == (stored,) * 4
    assert store.search(parse_search({"sub": text}))[0] == [entry]  # found as it was sent


def test_an_empty_write_is_fine(store):
    store.write([])
    assert store.search(SearchQuery()) == ([], None)


# --- single-use grants ----------------------------------------------------------------

def test_a_jti_can_be_claimed_once(store):
    assert store.claim_jti("grant-1", expires_at=NOW + 300, now=NOW) is True
    assert store.claim_jti("grant-1", expires_at=NOW + 300, now=NOW + 1) is False
    assert store.claim_jti("grant-2", expires_at=NOW + 300, now=NOW + 1) is True


def test_a_released_jti_can_be_claimed_again(store):
    assert store.claim_jti("grant-1", expires_at=NOW + 300, now=NOW) is True
    store.release_jti("grant-1")
    store.release_jti("never-claimed")  # harmless
    assert store.claim_jti("grant-1", expires_at=NOW + 300, now=NOW + 1) is True
    assert store.claim_jti("grant-1", expires_at=NOW + 300, now=NOW + 2) is False


def test_an_expired_jti_can_be_claimed_again(store):
    assert store.claim_jti("grant-1", expires_at=NOW + 300, now=NOW)
    assert not store.claim_jti("grant-1", expires_at=NOW + 600, now=NOW + 299)
    assert store.claim_jti("grant-1", expires_at=NOW + 900, now=NOW + 301)
    assert not store.claim_jti("grant-1", expires_at=NOW + 900, now=NOW + 302)


def test_a_jti_stays_spent_through_its_last_second(store):
    # Grants are accepted while now <= exp + leeway, which is what expires_at
    # holds: at exactly that instant the grant still verifies, so its jti must
    # still be spent.
    expires_at = float(int(NOW) + 300)
    assert store.claim_jti("grant-edge", expires_at=expires_at, now=NOW)
    assert not store.claim_jti("grant-edge", expires_at=expires_at, now=expires_at)
    store.purge(expires_at)  # nor is it forgotten then
    assert not store.claim_jti("grant-edge", expires_at=expires_at, now=expires_at)


def test_any_jti_string_can_be_claimed(store):
    for jti in ["x" * 5000, "\ud800", "#", ""]:
        assert store.claim_jti(jti, expires_at=NOW + 60, now=NOW)
        assert not store.claim_jti(jti, expires_at=NOW + 60, now=NOW)


def test_two_racing_claims_have_one_winner(store):
    results = []
    barrier = threading.Barrier(8)

    def claim():
        barrier.wait()
        results.append(store.claim_jti("raced", expires_at=NOW + 60, now=NOW))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


# --- retention --------------------------------------------------------------------------

def test_purge_removes_old_records(store):
    old = [AuditRecord(ts=NOW - (RETENTION_DAYS + 2) * DAY - i, request_id=f"old-{i}", op="get")
           for i in range(3)]
    young = [AuditRecord(ts=NOW - (RETENTION_DAYS - 1) * DAY, request_id="young", op="get")]
    store.write(old + young, now=NOW - (RETENTION_DAYS + 2) * DAY)
    assert store.purge(NOW) >= 3
    assert store.purge(NOW) == 0
    entries, _ = store.search(SearchQuery(since=0))
    assert [e["request_id"] for e in entries] == ["young"]


def test_purge_forgets_expired_jtis(tmp_path):
    store = SqliteAuditStore(str(tmp_path / "audit.db"), RETENTION_DAYS)
    store.claim_jti("spent", expires_at=NOW - 1, now=NOW - 60)
    store.claim_jti("live", expires_at=NOW + 60, now=NOW)
    assert store.purge(NOW) == 1
    assert not store.claim_jti("live", expires_at=NOW + 60, now=NOW)


def test_write_purges_at_most_once_an_hour(tmp_path):
    store = SqliteAuditStore(str(tmp_path / "audit.db"), RETENTION_DAYS)
    expired = NOW - (RETENTION_DAYS + 1) * DAY
    store.write([AuditRecord(ts=expired, request_id="a")], now=NOW)  # purged at once
    store.write([AuditRecord(ts=expired, request_id="b")], now=NOW + HOUR - 1)  # too soon
    assert [e["request_id"] for e in store.search(SearchQuery())[0]] == ["b"]
    store.write([AuditRecord(ts=NOW + HOUR, request_id="c")])  # the records' time counts
    assert [e["request_id"] for e in store.search(SearchQuery())[0]] == ["c"]


# --- failing closed --------------------------------------------------------------------

def test_a_locked_sqlite_database_fails_closed(tmp_path):
    path = str(tmp_path / "audit.db")
    store = SqliteAuditStore(path, RETENTION_DAYS, busy_timeout=0.2)
    store.write([AuditRecord(ts=NOW, request_id="before")])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(AuditUnavailable):
            store.write([AuditRecord(ts=NOW, request_id="during")])
        assert time.monotonic() - started < 2  # fails, rather than hanging
        with pytest.raises(AuditUnavailable):
            store.claim_jti("grant", expires_at=NOW + 60, now=NOW)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.write([AuditRecord(ts=NOW, request_id="after")])
    assert [e["request_id"] for e in store.search(SearchQuery())[0]] == ["after", "before"]


def test_an_unopenable_sqlite_file_fails_closed(tmp_path):
    store = SqliteAuditStore(str(tmp_path / "missing-dir" / "audit.db"), RETENTION_DAYS)
    with pytest.raises(AuditUnavailable):
        store.write([AuditRecord(ts=NOW)])
    with pytest.raises(AuditUnavailable):
        store.search(SearchQuery())
    assert not store.healthy()


def test_a_missing_dynamodb_table_fails_closed(moto_url):
    store = DynamoAuditStore(f"audit-{uuid.uuid4().hex[:12]}", RETENTION_DAYS, moto_url, "us-east-1")
    store.create_table()
    assert store.healthy()
    store.write([AuditRecord(ts=NOW, request_id="before")])
    dynamodb(moto_url).delete_table(TableName=store.table)  # mid-run: writes were working
    with pytest.raises(AuditUnavailable) as refused:
        store.write([AuditRecord(ts=NOW, request_id=f"during-{i}") for i in range(3)])
    assert store.table not in refused.value.message  # nothing about the account leaks
    with pytest.raises(AuditUnavailable):
        store.claim_jti("grant", expires_at=NOW + 60, now=NOW)
    with pytest.raises(AuditUnavailable):
        store.search(SearchQuery())
    assert not store.healthy()


def test_an_unreachable_dynamodb_fails_closed():
    from tests.support import free_port

    store = DynamoAuditStore("audit", RETENTION_DAYS, f"http://127.0.0.1:{free_port()}", "us-east-1")
    with pytest.raises(AuditUnavailable):
        store.write([AuditRecord(ts=NOW)])


# --- the startup check -------------------------------------------------------------------

def test_sqlite_check_creates_the_file_and_leaves_it_empty(tmp_path):
    path = str(tmp_path / "audit.db")
    store = SqliteAuditStore(path, RETENTION_DAYS)
    store.check()
    store.check()  # and again, on the file it made
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM audit").fetchone() == (0,)  # the test write rolled back
        assert db.execute("SELECT count(*) FROM jti").fetchone() == (0,)
    store.write([AuditRecord(ts=NOW, request_id="after")])
    assert [e["request_id"] for e in store.search(SearchQuery())[0]] == ["after"]


def test_sqlite_files_are_owner_only_and_an_existing_file_keeps_its_mode(tmp_path):
    old_umask = os.umask(0o022)
    try:
        store = SqliteAuditStore(str(tmp_path / "audit.db"), RETENTION_DAYS)
        store.check()
        store.write([AuditRecord(ts=NOW)])
        for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
            assert os.stat(tmp_path / name).st_mode & 0o777 == 0o600, name
        store = SqliteAuditStore(str(tmp_path / "new-dir" / "audit.db"), RETENTION_DAYS)
        store.create_table()  # init-audit makes a missing directory
        store.check()
        assert os.stat(tmp_path / "new-dir").st_mode & 0o777 == 0o700
        assert os.stat(tmp_path / "new-dir" / "audit.db").st_mode & 0o777 == 0o600
        (tmp_path / "shared.db").touch(mode=0o640)  # the operator's choice, e.g. for a log reader group
        SqliteAuditStore(str(tmp_path / "shared.db"), RETENTION_DAYS).write([AuditRecord(ts=NOW)])
        assert os.stat(tmp_path / "shared.db").st_mode & 0o777 == 0o640
    finally:
        os.umask(old_umask)


def test_sqlite_check_refuses_a_missing_directory(tmp_path):
    store = SqliteAuditStore(str(tmp_path / "missing-dir" / "audit.db"), RETENTION_DAYS)
    with pytest.raises(ConfigError, match="audit.url") as refused:
        store.check()
    assert "missing-dir" in str(refused.value) and "directory must exist" in str(refused.value)


def test_sqlite_check_refuses_a_file_of_an_older_schema(tmp_path):
    """A file made before the `name` column: every write would fail, so the
    gatekeeper must not start, and /v1/health must not say the audit log is fine."""
    path = str(tmp_path / "audit.db")
    old_table = audit_sqlite.SQLITE_TABLES.replace(" name TEXT NOT NULL,", "")
    assert old_table != audit_sqlite.SQLITE_TABLES
    with sqlite3.connect(path) as db:
        db.executescript(old_table)
    store = SqliteAuditStore(path, RETENTION_DAYS)
    with pytest.raises(ConfigError, match="audit.url") as refused:
        store.check()
    assert "audit.name" in str(refused.value) and "older gatekeeper" in str(refused.value)
    assert not store.healthy()
    with pytest.raises(AuditUnavailable):
        store.write([AuditRecord(ts=NOW)])
    # The repair docs/operations.md gives:
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE audit ADD COLUMN name TEXT NOT NULL DEFAULT ''")
    repaired = SqliteAuditStore(path, RETENTION_DAYS)
    repaired.check()
    assert repaired.healthy()


def test_sqlite_check_refuses_a_file_without_the_approval_columns_until_they_are_added(tmp_path):
    path = str(tmp_path / "audit.db")
    old_table = audit_sqlite.SQLITE_TABLES.replace(
        ",\n    approval TEXT NOT NULL DEFAULT '', approvers TEXT NOT NULL DEFAULT ''", "")
    assert old_table != audit_sqlite.SQLITE_TABLES
    with sqlite3.connect(path) as db:
        db.executescript(old_table)
    with pytest.raises(ConfigError, match="audit.approval, audit.approvers"):
        SqliteAuditStore(path, RETENTION_DAYS).check()
    with sqlite3.connect(path) as db:  # the repair docs/operations.md gives
        db.execute("ALTER TABLE audit ADD COLUMN approval TEXT NOT NULL DEFAULT ''")
        db.execute("ALTER TABLE audit ADD COLUMN approvers TEXT NOT NULL DEFAULT ''")
    repaired = SqliteAuditStore(path, RETENTION_DAYS)
    repaired.check()
    repaired.write([AuditRecord(ts=NOW, approval="apr-1", approvers="alice")])
    assert repaired.search(SearchQuery())[0][0]["approval"] == "apr-1"


def test_sqlite_check_refuses_a_file_it_may_not_write(tmp_path):
    workdir = tempfile.mkdtemp(prefix="gk-audit-ro-")  # not under tmp_path: others may not enter that
    try:
        path = os.path.join(workdir, "audit.db")
        store = SqliteAuditStore(path, RETENTION_DAYS)
        store.write([AuditRecord(ts=NOW)])
        store.close()
        os.chmod(path, 0o444)
        os.chmod(workdir, 0o555)
        message = check_as_unprivileged(SqliteAuditStore(path, RETENTION_DAYS))
    finally:
        os.chmod(workdir, 0o755)
        shutil.rmtree(workdir)
    assert message.startswith("config key 'audit.url'") and path in message, message


def check_as_unprivileged(store) -> str:
    """The message of the ConfigError that store.check() raises for a user who may not
    write the file. Root may write anything: as root, check in a child process that
    has become nobody."""
    if os.geteuid() != 0:
        with pytest.raises(ConfigError) as refused:
            store.check()
        return str(refused.value)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            try:
                store.check()
                message = "no ConfigError"
            except ConfigError as exc:
                message = str(exc)
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                message = f"unexpected {exc!r}"
            os.write(write_end, message.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        message = answer.read().decode()
    os.waitpid(pid, 0)
    return message


def test_dynamodb_check_describes_the_table_and_writes_nothing(moto_url):
    store = DynamoAuditStore(f"audit-{uuid.uuid4().hex[:12]}", RETENTION_DAYS, moto_url, "us-east-1")
    store.create_table()
    store.check()
    assert dynamodb(moto_url).scan(TableName=store.table)["Items"] == []


def test_dynamodb_check_refuses_a_missing_table(moto_url):
    store = DynamoAuditStore(f"audit-{uuid.uuid4().hex[:12]}", RETENTION_DAYS, moto_url, "us-east-1")
    with pytest.raises(ConfigError, match="audit.url") as refused:
        store.check()
    assert "does not exist" in str(refused.value) and "init-audit" in str(refused.value)


def test_dynamodb_check_refuses_a_table_with_other_keys(moto_url):
    store = DynamoAuditStore(f"audit-{uuid.uuid4().hex[:12]}", RETENTION_DAYS, moto_url, "us-east-1")
    dynamodb(moto_url).create_table(
        TableName=store.table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    with pytest.raises(ConfigError, match="pk \\(HASH\\) \\+ sk \\(RANGE\\)"):
        store.check()


def test_dynamodb_check_refuses_an_unreachable_endpoint():
    from tests.support import free_port

    store = DynamoAuditStore("audit", RETENTION_DAYS, f"http://127.0.0.1:{free_port()}", "us-east-1")
    with pytest.raises(ConfigError, match="cannot reach DynamoDB") as refused:
        store.check()
    assert "127.0.0.1" not in str(refused.value)  # endpoints and accounts stay out of it


# --- the stores' own mechanics ------------------------------------------------------------

def test_sqlite_writes_from_many_threads(tmp_path):
    store = SqliteAuditStore(str(tmp_path / "audit.db"), RETENTION_DAYS)

    def work(n):
        for i in range(20):
            store.write([AuditRecord(ts=NOW + i, request_id=f"{n}-{i}"), AuditRecord(ts=NOW + i)])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(search_all(store, {"limit": 500})[0]) == 6 * 20 * 2


def search_plans(store, body: dict) -> list[str]:
    """The query plan of every SELECT of a search's second page (each plan one string)."""
    _, cursor = store.search(parse_search({**body, "limit": 1}))
    conn = store._conn()
    statements = []
    conn.set_trace_callback(statements.append)
    store.search(parse_search({**body, "limit": 1, **({"cursor": cursor} if cursor else {})}))
    conn.set_trace_callback(None)
    return [" | ".join(f"{row[1]}:{row[-1]}" for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
            for sql in statements if sql.startswith("SELECT id, ts")]


@pytest.mark.parametrize("body", [
    {}, {"sub": "u"}, {"client_ip": "192.0.2.1"}, {"op": "get", "outcome": "deny"},
    {"outcome": "deny"}, {"since": 1, "until": 2}, {"key_prefix": "tickets/1/"},
    {"sub": "user:7", "op": "request"}, {"key_prefix": "tickets/", "outcome": "allow"},
])
def test_sqlite_searches_walk_one_index_alone(tmp_path, body):
    """The walk reads index entries only (every index holds every filter column) and,
    but for a key prefix (a range of keys, not of time), never sorts: only the page's
    own rows are read from the table, and sorted."""
    store = SqliteAuditStore(str(tmp_path / "audit.db"), RETENTION_DAYS)
    store.write(make_records())
    [plan] = search_plans(store, body)
    walk = [step for step in plan.split(" | ") if not step.startswith("0:")]
    assert any("USING COVERING INDEX audit_" in step for step in walk), plan
    if not body.get("key_prefix"):
        assert not any("TEMP B-TREE" in step for step in walk), plan


SKEWED_COMMON = dict(op="get", outcome="allow", client_ip="203.0.113.5", sub="user:1", key="tickets/1/a.png")


def skewed_records() -> list[AuditRecord]:
    """Filters whose values are common alone and rare together, and the reverse:
    whichever index a search walks, it must find exactly these records."""
    common = SKEWED_COMMON
    return ([AuditRecord(ts=NOW - i, request_id=f"a{i}", **common) for i in range(300)]
            + [AuditRecord(ts=NOW - 400 - i, request_id=f"b{i}", **{**common, "client_ip": "198.51.100.7"})
               for i in range(3)]
            + [AuditRecord(ts=NOW - 500 - i, request_id=f"c{i}", **{**common, "sub": "user:2", "op": "delete"})
               for i in range(20)]
            + [AuditRecord(ts=NOW - 600, request_id="d", **{**common, "key": "tickets/2/b.png"})]
            + [AuditRecord(ts=NOW - 20 * DAY - i * HOUR, request_id=f"old-{i}", op="get", key=f"tickets/old/{i}",
                           outcome="deny", sub="user:7", client_ip="192.0.2.9") for i in range(12)])


@pytest.mark.parametrize("body", [
    {"outcome": "allow", "client_ip": "198.51.100.7"}, {"op": "get", "client_ip": "198.51.100.7"},
    {"sub": "user:1", "op": "delete"},  # common values that never occur together
    {"sub": "user:2", "op": "get"}, {"sub": "user:2", "op": "delete"},
    {"op": "delete", "outcome": "allow"}, {"outcome": "allow"}, {"outcome": "deny"}, {"since": NOW - 10},
    {"key_prefix": "tickets/1/", "client_ip": "203.0.113.5"}, {"key_prefix": "tickets/2/", "client_ip": "203.0.113.5"},
    {"key_prefix": "tickets/"}, {"key_prefix": "tickets/old/", "outcome": "deny", "until": NOW - 20 * DAY},
    {"key_prefix": "tickets/", "op": "delete", "outcome": "allow", "since": NOW - 510},
    {"sub": "user:7", "client_ip": "192.0.2.9", "key_prefix": "tickets/old/1"},
])
@pytest.mark.parametrize("limit", [2, 7, 500])
def test_sqlite_finds_exactly_the_matches_whichever_index_it_walks(tmp_path, body, limit):
    store = SqliteAuditStore(str(tmp_path / "audit.db"), RETENTION_DAYS)
    records = skewed_records()
    store.write(records)
    entries, _ = search_all(store, {**body, "limit": limit})
    assert entries == expected(records, parse_search(body))


@pytest.mark.parametrize("body", [
    {"key_prefix": "tickets/1"}, {"key_prefix": "tickets/"}, {"key_prefix": "tickets/", "op": "get"},
    {"key_prefix": "tickets/1", "outcome": "allow", "since": NOW - 5 * DAY},
    {"key_prefix": "tickets/old/"}, {"key_prefix": "tickets/", "sub": ""},
])
@pytest.mark.parametrize("limit", [1, 3, 500])
def test_sqlite_a_broad_prefix_with_old_records_is_found_without_gaps(tmp_path, body, limit):
    """A key prefix reads its matches from the key index, newest first: a page may
    hold new and old records, and ties of one request's records, without gaps."""
    store = SqliteAuditStore(str(tmp_path / "audit.db"), RETENTION_DAYS)
    records = make_records() + [
        AuditRecord(ts=NOW - 20 * DAY - i * HOUR, request_id=f"old-{i}", op="get", key=f"tickets/old/{i}",
                    outcome="allow", sub="user:7") for i in range(12)]
    records += [AuditRecord(ts=NOW - DAY, request_id=f"tie-{i}", op="get", key=f"tickets/1/t{i}")
                for i in range(10)]  # one request's records share a time
    store.write(records)
    entries, _ = search_all(store, {**body, "limit": limit})
    assert entries == expected(records, parse_search(body))


def test_dynamodb_pages_may_be_short_but_the_cursor_finds_everything(moto_url, monkeypatch):
    """Little work per call: a few items per Query, a few Queries per page."""
    monkeypatch.setattr(audit_dynamodb, "DYNAMO_PAGE_ITEMS", 4)
    monkeypatch.setattr(audit_dynamodb, "DYNAMO_MAX_CALLS", 3)
    store = DynamoAuditStore(f"audit-{uuid.uuid4().hex[:12]}", RETENTION_DAYS, moto_url, "us-east-1")
    store.create_table()
    records = [AuditRecord(ts=NOW - i * 10 * HOUR, request_id=f"r{i}", op="get" if i % 9 else "put")
               for i in range(60)]
    store.write(records)
    for body in [{"op": "put", "limit": 2}, {"limit": 5}]:
        entries, pages = search_all(store, body)
        assert entries == expected(records, parse_search(body))
        assert pages > len(entries) / body["limit"]  # some pages came back short


def test_dynamodb_writes_a_full_batch_in_one_transaction(moto_url, monkeypatch):
    from gatekeeper.app import MAX_BATCH_OPS

    store = DynamoAuditStore(f"audit-{uuid.uuid4().hex[:12]}", RETENTION_DAYS, moto_url, "us-east-1")
    store.create_table()
    store.create_table()  # idempotent
    # What is tested is one transaction per request, not speed: on a loaded machine moto's
    # 100-item transaction can outlast the production client's 10 s read timeout.
    monkeypatch.setattr(audit_dynamodb, "READ_TIMEOUT", 120)
    monkeypatch.setattr(audit_dynamodb, "MAX_ATTEMPTS", 1)
    calls = []
    real_call = store._call
    monkeypatch.setattr(store, "_call", lambda name, **kw: (calls.append(name), real_call(name, **kw))[1])
    same_time = [AuditRecord(ts=NOW, request_id="batch", key=f"k{i}") for i in range(MAX_BATCH_OPS)]
    store.write(same_time)
    store.write(same_time)  # the same request id again is a new record, not an overwrite
    assert calls == ["transact_write_items", "transact_write_items"]  # all or nothing, per request
    assert len(search_all(store, {"limit": 500})[0]) == 2 * MAX_BATCH_OPS
    with pytest.raises(ValueError, match="at most 100 audit records"):
        store.write(same_time + same_time[:1])


def test_dynamodb_hides_records_past_retention_before_ttl_runs(moto_url):
    store = DynamoAuditStore(f"audit-{uuid.uuid4().hex[:12]}", RETENTION_DAYS, moto_url, "us-east-1")
    store.create_table()
    store.write([AuditRecord(ts=NOW - (RETENTION_DAYS + 1) * DAY, request_id="old"),
                 AuditRecord(ts=NOW, request_id="new")])
    assert [e["request_id"] for e in store.search(SearchQuery(since=0))[0]] == ["new"]


# --- parsing search requests ----------------------------------------------------------------

def test_parse_search_reads_every_field():
    q = parse_search({
        "since": "2025-01-02T03:04:05Z", "until": 1735790000.5, "op": "get", "outcome": "deny",
        "client_ip": "2001:DB8::0:1", "sub": "user:7", "key_prefix": "tickets/42/",
        "limit": 500,
    })
    assert q == SearchQuery(since=1735787045.0, until=1735790000.5, op="get", outcome="deny",
                            client_ip="2001:db8::1", sub="user:7", key_prefix="tickets/42/",
                            limit=500)


@pytest.mark.parametrize("text,recorded", [
    ("::ffff:203.0.113.9", "203.0.113.9"), ("2001:db8::1%eth0", "2001:db8::1"),
])
def test_parse_search_names_an_address_as_the_log_records_it(text, recorded):
    # The gatekeeper records IPv4-mapped clients as IPv4 and drops zone ids
    # (acl.parse_ip): a search for the same client in another spelling finds it.
    assert parse_search({"client_ip": text}).client_ip == recorded


def test_parse_search_refuses_a_garbage_cursor_before_anything_is_searched():
    with pytest.raises(BadRequest):
        parse_search({"cursor": "abc"})


def test_parse_search_defaults():
    assert parse_search({}) == SearchQuery(limit=100)
    assert parse_search({"key_prefix": ""}).key_prefix is None  # "" matches everything


@pytest.mark.parametrize("text, seconds", [
    ("2025-01-02T03:04:05Z", 1735787045.0),
    ("2025-01-02T03:04:05", 1735787045.0),  # no offset: UTC
    ("2025-01-02T05:04:05+02:00", 1735787045.0),
    ("2025-01-02", 1735776000.0),
    ("1970-01-01T00:00:00Z", 0.0),
])
def test_parse_search_reads_iso_times(text, seconds):
    assert parse_search({"since": text}).since == seconds


@pytest.mark.parametrize("body, field", [
    ({"subject": "x"}, "subject"),
    ({"since": "yesterday"}, "since"),
    ({"since": -1}, "since"),
    ({"since": True}, "since"),
    ({"until": 1e400}, "until"),
    ({"until": float("nan")}, "until"),
    ({"until": 10**400}, "until"),
    ({"until": "1969-12-31T23:59:59Z"}, "until"),
    ({"until": "2025-01-02T03:04:05" + " " * 100}, "until"),
    ({"since": 10, "until": 5}, "since"),
    ({"op": "sudo"}, "op"),
    ({"op": ["get"]}, "op"),
    ({"outcome": "maybe"}, "outcome"),
    ({"client_ip": "10.0.0.0/8"}, "client_ip"),
    ({"client_ip": 167772161}, "client_ip"),
    ({"client_net": "10.0.0.1/8"}, "client_net"),  # host bits set: strict
    ({"client_net": "10.0.0.0/33"}, "client_net"),
    ({"client_net": "10.0.0.0"}, "client_net"),  # an address is client_ip's
    ({"client_net": "10.0.0.0/8/8"}, "client_net"),
    ({"client_net": "example.com/8"}, "client_net"),
    ({"client_net": 8}, "client_net"),
    ({"sub": 7}, "sub"),
    ({"sub": "\ud800"}, "sub"),
    ({"key_prefix": "k" * 1025}, "key_prefix"),
    ({"key_prefix": {"$gt": ""}}, "key_prefix"),
    ({"limit": 0}, "limit"),
    ({"limit": 501}, "limit"),
    ({"limit": True}, "limit"),
    ({"limit": 1.0}, "limit"),
    ({"limit": "10"}, "limit"),
    ({"cursor": 5}, "cursor"),
    ({"cursor": "c" * 2000}, "cursor"),
])
def test_parse_search_refuses_bad_fields_by_name(body, field):
    with pytest.raises(BadRequest) as refused:
        parse_search(body)
    assert repr(field) in refused.value.message


@pytest.mark.parametrize("body", [None, [], "since", 5, True, [{"op": "get"}]])
def test_parse_search_wants_an_object(body):
    with pytest.raises(BadRequest, match="JSON object"):
        parse_search(body)


def test_parse_search_raises_only_bad_request_for_any_json():
    rng = random.Random(7)
    names = sorted(audit.SEARCH_FIELDS) + ["x", ""]
    samples = [None, True, False, 0, -1, 1, 500, 501, 2**70, 1.5, -0.0, 1e308, float("inf"),
               float("nan"), "", "get", "deny", "::1", "2025-01-01", "\ud800", "\x00", [], {}, [1], {"a": 1}]
    for _ in range(3000):
        body = {rng.choice(names): rng.choice(samples) for _ in range(rng.randint(0, 4))}
        try:
            parse_search(json.loads(json.dumps(body)))
        except BadRequest:
            pass


# --- configuration ---------------------------------------------------------------------------

def test_open_store_reads_the_url(tmp_path):
    sqlite_store = open_store(f"sqlite:///{tmp_path}/audit.db", 7)
    assert isinstance(sqlite_store, SqliteAuditStore)
    assert sqlite_store.path == f"{tmp_path}/audit.db" and sqlite_store.retention_days == 7
    dynamo_store = open_store("dynamodb://gk-audit", 7, endpoint_url="http://127.0.0.1:1", region="eu-west-3")
    assert isinstance(dynamo_store, DynamoAuditStore)
    assert (dynamo_store.table, dynamo_store.endpoint_url, dynamo_store.region) == (
        "gk-audit", "http://127.0.0.1:1", "eu-west-3")
    assert open_store("dynamodb://gk-audit", 7).endpoint_url is None


@pytest.mark.parametrize("url, path", [
    # What a customer reads: the contract's example is an absolute path.
    ("sqlite:///var/lib/gatekeeper/audit.db", "/var/lib/gatekeeper/audit.db"),
    ("sqlite:////var/lib/gatekeeper/audit.db", "/var/lib/gatekeeper/audit.db"),  # the old spelling
    ("sqlite:///audit.db", "/audit.db"),
    ("sqlite:audit.db", "audit.db"),  # relative to the working directory
    ("sqlite:var/audit.db", "var/audit.db"),
])
def test_open_store_reads_sqlite_paths(url, path):
    assert sqlite_path(url) == path
    assert open_store(url, 7).path == path


def test_a_relative_sqlite_url_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:logs/audit.db", 7)
    (tmp_path / "logs").mkdir()
    store.check()
    assert (tmp_path / "logs" / "audit.db").is_file()


@pytest.mark.parametrize("url", [
    "sqlite:///", "sqlite:////", "sqlite:", "sqlite://host/audit.db", "sqlite:/audit.db",
    "postgres://db", "dynamodb://", "dynamodb://a b", "audit.db",
])
def test_open_store_refuses_other_urls(url):
    with pytest.raises(ConfigError, match="audit.url"):
        open_store(url, 7)


def test_a_malformed_range_says_why():
    with pytest.raises(BadRequest) as refused:
        parse_search({"client_net": "10.0.0.1/8"})
    assert refused.value.status == 400 and "host bits set" in refused.value.message


def test_a_range_is_part_of_the_cursor():
    cursor = audit.encode_cursor(parse_search({"client_net": "203.0.113.0/24", "limit": 1}), [NOW, 1])
    assert parse_search({"client_net": "203.0.113.0/24", "limit": 1, "cursor": cursor}).cursor == cursor
    with pytest.raises(BadRequest, match="cursor"):
        parse_search({"client_net": "198.51.100.0/24", "limit": 1, "cursor": cursor})
