"""The audit store of a self-hosted gatekeeper: one SQLite file in WAL mode.

See audit.py for the records, the search queries and the store interface.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time

from .audit import (
    DAY, FIELDS, AuditRecord, SearchQuery, clean_text, decode_cursor, encode_cursor,
    in_net, invalid_cursor, is_time, jti_digest,
)
from .errors import AuditUnavailable, ConfigError
from .paths import is_int

log = logging.getLogger("gatekeeper.audit")

PURGE_INTERVAL = 3600  # seconds between purges triggered by write(), per process
PURGE_CHUNK = 5000  # rows per purge transaction, so writers never wait long
SQLITE_BUSY_TIMEOUT = 2.0  # seconds: a locked database fails closed instead of hanging

# Searching (bench/bench_audit_search.py: a million records, every one and two
# filters). Every filter has an index that starts with its column and goes on in
# time order (ts, then id, which breaks ties as ORDER BY does), so a search walks
# one index newest first and stops after `limit` matches: no sort, no full scan.
# Each index also holds every other filter column, so the walk checks the other
# filters in the index entries themselves and reads the table only for the records
# it returns (~0.1 µs an entry instead of ~1 µs a row). The price: the file is
# about twice as big, and a write costs a few µs more.
#
# Which index is walked is fixed (INDEXED BY), not left to SQLite's planner, which
# without statistics walked all 900,000 "allow" entries to find one address's
# records: the filter likeliest to be narrow wins, in the order of SEARCH_INDEXES.
# A key prefix is a range of keys, not of time: its matches are all read from the
# key index and the newest kept, which costs most (tens of ms on a million
# records) for a prefix that matches nearly everything.
SEARCH_INDEXES = (  # (name, its leading columns: the filters it serves)
    ("audit_sub_v2", ("sub",)),
    ("audit_ip_v2", ("client_ip",)),
    ("audit_key_v2", ("key",)),
    ("audit_op_outcome_v2", ("op", "outcome")),
    ("audit_op_v2", ("op",)),
    ("audit_outcome_v2", ("outcome",)),
    ("audit_ts_v2", ()),
)
FILTER_COLUMNS = ("op", "outcome", "client_ip", "sub", "key")
SQLITE_TABLES = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL, client_ip TEXT NOT NULL, country TEXT NOT NULL,
    user_agent TEXT NOT NULL, origin TEXT NOT NULL, op TEXT NOT NULL, key TEXT NOT NULL,
    outcome TEXT NOT NULL, reason TEXT NOT NULL, status INTEGER NOT NULL,
    jti TEXT NOT NULL, sub TEXT NOT NULL, name TEXT NOT NULL, kid TEXT NOT NULL,
    approval TEXT NOT NULL DEFAULT '', approvers TEXT NOT NULL DEFAULT '',
    idp_sub TEXT NOT NULL DEFAULT '', idp_iss TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS jti (id TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID;
COMMIT;
"""
# Each index: its leading columns, then ts and id, then every other filter column.
# CREATE INDEX IF NOT EXISTS audit_sub_v2 ON audit (sub, ts, id, op, outcome, client_ip, key);
SQLITE_INDEXES = "BEGIN IMMEDIATE;\n" + "".join(
    f"CREATE INDEX IF NOT EXISTS {name} ON audit"
    f" ({', '.join(leading + ('ts', 'id') + tuple(c for c in FILTER_COLUMNS if c not in leading))});\n"
    for name, leading in SEARCH_INDEXES
) + "COMMIT;\n"
SQLITE_SCHEMA = SQLITE_TABLES + SQLITE_INDEXES
SQLITE_COLUMNS = {"audit": ("id",) + FIELDS, "jti": ("id", "expires_at")}
SQLITE_INSERT = (
    f"INSERT INTO audit ({', '.join(FIELDS)}) VALUES ({', '.join('?' for _ in FIELDS)})"
)
SQLITE_MAX_INT = 2**63  # an INTEGER column's range


@contextlib.contextmanager
def _fail_closed(what: str, message: str = "the audit log is unavailable"):
    """Every SQLite failure of a read or write becomes AuditUnavailable (logged here,
    never shown to the caller): the request it serves is refused."""
    try:
        yield
    except sqlite3.Error as exc:
        log.error("audit %s failed: %s", what, exc)
        raise AuditUnavailable(message) from None


class SchemaMismatch(sqlite3.DatabaseError):
    """The file's tables lack columns this gatekeeper writes (an older file).
    A sqlite3 error, so that every use of the store fails closed on it."""


def _row(record: AuditRecord) -> tuple:
    """A record's values for SQLITE_INSERT, in FIELDS order, its text made inert."""
    values = (getattr(record, name) for name in FIELDS)  # not to_dict(): no dict built per row
    return tuple(clean_text(value) if isinstance(value, str) else value for value in values)


def _missing_columns(conn: sqlite3.Connection) -> list[str]:
    missing = []
    for table, columns in SQLITE_COLUMNS.items():
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        missing += [f"{table}.{column}" for column in columns if column not in present]
    return missing


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
            # Owner-only: SQLite would make the file 0644 (less the umask), and it gives
            # the -wal and -shm files the file's mode. An existing file keeps its mode.
            with contextlib.suppress(OSError):  # exists, or cannot be made: connect() says
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            # isolation_level IMMEDIATE: every write transaction takes the write lock
            # up front, so a busy database fails within busy_timeout, not mid-way.
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout,
                                   isolation_level="IMMEDIATE")
            try:
                # WAL is a property of the file: set once, with the schema, by one thread
                # (switching journal modes while other connections open can fail busy).
                with self._lock:
                    if not self._schema_ready:
                        conn.execute("PRAGMA journal_mode=WAL")
                        conn.executescript(SQLITE_TABLES)
                        missing = _missing_columns(conn)
                        if missing:
                            raise SchemaMismatch(", ".join(missing))
                        conn.executescript(SQLITE_INDEXES)
                        self._schema_ready = True  # checked once, not on every connection
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.create_function("in_net", 2, in_net, deterministic=True)  # client_net
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

    def create_table(self) -> None:
        """For init-audit: make the file's directory, owner-only, if it is missing
        (check() then makes the file). serve refuses a missing directory instead: a
        mistyped path must not start an empty log."""
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)

    def write(self, records: list[AuditRecord], now: float | None = None) -> None:
        rows = [_row(record) for record in records]
        with _fail_closed("write"):
            conn = self._conn()
            with conn:
                conn.executemany(SQLITE_INSERT, rows)
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
        if position is not None and not (  # (ts, id), bounded as SQLite stores them
            len(position) == 2 and is_time(position[0])
            and is_int(position[1]) and 0 < position[1] < SQLITE_MAX_INT
        ):
            raise invalid_cursor()
        index, terms, args = _search_terms(q, position)
        # The inner query reads only the index (it holds every filter column); the
        # outer one reads the rows it found.
        sql = (
            f"SELECT id, {', '.join(FIELDS)} FROM audit WHERE id IN"
            f" (SELECT id FROM audit INDEXED BY {index} WHERE {' AND '.join(terms) or '1'}"
            " ORDER BY ts DESC, id DESC LIMIT ?)"
            " ORDER BY ts DESC, id DESC"
        )
        with _fail_closed("search"):
            rows = self._conn().execute(sql, args + [q.limit + 1]).fetchall()
        page = rows[: q.limit]
        cursor = encode_cursor(q, [page[-1][1], page[-1][0]]) if len(rows) > q.limit else None
        return [AuditRecord(*row[1:]).to_dict() for row in page], cursor

    def claim_jti(self, jti: str, expires_at: float, now: float) -> bool:
        with _fail_closed("jti claim", "the grant registry is unavailable"):
            conn = self._conn()
            with conn:
                # One statement, so two instances racing for the same jti cannot both win.
                changed = conn.execute(
                    "INSERT INTO jti (id, expires_at) VALUES (?, ?) ON CONFLICT (id)"
                    " DO UPDATE SET expires_at = excluded.expires_at WHERE jti.expires_at < ?",
                    (jti_digest(jti), expires_at, now),
                ).rowcount
        return changed == 1

    def release_jti(self, jti: str) -> None:
        with _fail_closed("jti release", "the grant registry is unavailable"):
            conn = self._conn()
            with conn:
                conn.execute("DELETE FROM jti WHERE id = ?", (jti_digest(jti),))

    def purge(self, now: float) -> int:
        cutoff = now - self.retention_days * DAY
        removed = 0
        with _fail_closed("purge"):
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
                removed += conn.execute("DELETE FROM jti WHERE expires_at < ?", (now,)).rowcount
        return removed

    def check(self) -> None:
        """For startup: open (or create) the file and its schema, check that the tables
        have every column a record needs, and write a record and a jti in a
        transaction that is rolled back. Raises ConfigError saying what is wrong."""
        try:
            conn = self._conn()
        except SchemaMismatch as exc:
            raise ConfigError("audit.url", (
                f"the SQLite audit log {self.path} lacks the column(s) {exc} (a file made by an"
                " older gatekeeper): move it aside, or add them (docs/operations.md)")) from None
        except sqlite3.Error as exc:
            raise ConfigError("audit.url", (
                f"cannot open or set up the SQLite audit log {self.path}: {exc} (its directory"
                " must exist and the file and directory be writable by the gatekeeper)")) from None
        probe = AuditRecord(ts=time.time(), request_id="startup-check")
        try:
            conn.execute(SQLITE_INSERT, _row(probe))
            conn.execute("INSERT OR REPLACE INTO jti (id, expires_at) VALUES (?, ?)",
                         ("startup-check", 0.0))  # never a sha256 hex digest: no clash
        except sqlite3.Error as exc:
            raise ConfigError("audit.url", f"cannot write to the SQLite audit log {self.path}: {exc}") from None
        finally:
            try:
                conn.rollback()
            except sqlite3.Error:
                self.close()

    def healthy(self) -> bool:
        try:
            conn = self._conn()
            with conn:  # a grant id that is never a sha256 digest, expired (purge drops it)
                conn.execute("INSERT OR REPLACE INTO jti (id, expires_at) VALUES ('health-probe', 0)")
        except sqlite3.Error:  # includes SchemaMismatch
            return False
        return True


def _search_terms(q: SearchQuery, position: list | None) -> tuple[str, list[str], list]:
    """The index to walk (the first of SEARCH_INDEXES whose filters are all set) and
    the WHERE terms, with their arguments, of every filter and of the cursor."""
    comparisons = q.comparisons()
    filtered = {name for name, _, _ in comparisons} | ({"key"} if q.key_prefix else set())
    index = next(name for name, leading in SEARCH_INDEXES if filtered.issuperset(leading))
    terms = [f"{name} {operator} ?" for name, operator, _ in comparisons]
    args = [value for _, _, value in comparisons]
    if position is not None:
        # Keyset pagination, below (ts, id): "ts <= ?" bounds the index range, the
        # OR resolves ties without breaking that bound.
        terms.append("ts <= ? AND (ts < ? OR id < ?)")
        args += [position[0], position[0], position[1]]
    if q.client_net:  # checked in the index entries, which hold client_ip
        terms.append("in_net(client_ip, ?)")
        args.append(q.client_net)
    if q.key_prefix:
        terms.append("key >= ?")
        args.append(q.key_prefix)
        end = prefix_end(q.key_prefix)
        if end is not None:
            terms.append("key < ?")
            args.append(end)
    return index, terms, args


def prefix_end(prefix: str) -> str | None:
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
