"""The audit store of a self-hosted gatekeeper: one SQLite file in WAL mode.

See audit.py for the records, the search queries and the store interface.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from .audit import (
    DAY,
    FIELDS,
    PURGE_CHUNK,
    PURGE_INTERVAL,
    SQLITE_BUSY_TIMEOUT,
    AuditRecord,
    SearchQuery,
    _clean,
    _is_number,
    _jti_id,
    _prefix_end,
    decode_cursor,
    encode_cursor,
)
from .errors import AuditUnavailable, BadRequest, ConfigError

log = logging.getLogger("gatekeeper.audit")


# Searching (target: ≤ 50 ms median on a million records, for any one or two
# filters; bench/bench_audit_search.py shows it). Every filter has an index that
# starts with its column and goes on in time order (ts, then id, which breaks ties
# as ORDER BY does), so a search walks one index newest first and stops after
# `limit` matches: no sort, no full scan. Each index also holds every other filter
# column, so the walk checks the other filters in the index entries themselves and
# reads the table only for the records it returns: ~0.1 µs an entry instead of ~1 µs
# a row. That keeps fast a search whose filters rarely occur together (a busy user
# who never made a refused request), which walks all of one value's entries. The
# price: the file is twice as big, and a write costs ~3 µs more (~39 µs, 1M records).
#
# Which index to walk is chosen here, not by SQLite's planner: without statistics
# it treats every `column = ?` alike (it walked all 900,000 "allow" entries to find
# one address's records), and ANALYZE's statistics are averages that skewed columns
# (one user or office address with a tenth of the log) make wrong. So the store
# counts each filter's matches in its index, at most ESTIMATE_ROWS of them (index
# entries only, ~30 ns each), and walks the index with the fewest (INDEXED BY); on
# a tie, the likelier to be narrow: sub, client_ip, op+outcome, op, outcome, key.
# A key prefix is a range of keys, not of time: reading its matches from the key
# index means reading all of them (and keeping the newest), worth it when they are
# few. A broad prefix is walked in time order for WALK_ROWS entries; if its page is
# not full by then (its records are old), the rest comes from the key index, unless
# fewer than REST_ROWS entries are left to walk.
SQLITE_TABLES = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL, client_ip TEXT NOT NULL, country TEXT NOT NULL,
    user_agent TEXT NOT NULL, origin TEXT NOT NULL, op TEXT NOT NULL, key TEXT NOT NULL,
    outcome TEXT NOT NULL, reason TEXT NOT NULL, status INTEGER NOT NULL,
    jti TEXT NOT NULL, sub TEXT NOT NULL, name TEXT NOT NULL, kid TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jti (id TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID;
COMMIT;
"""
SQLITE_INDEXES = """
BEGIN IMMEDIATE;
-- The indexes of files made before the v2 indexes (rebuilt once, at the first start).
DROP INDEX IF EXISTS audit_ts;
DROP INDEX IF EXISTS audit_sub_ts;
DROP INDEX IF EXISTS audit_ip_ts;
DROP INDEX IF EXISTS audit_op_ts;
DROP INDEX IF EXISTS audit_outcome_ts;
DROP INDEX IF EXISTS audit_op_outcome_ts;
DROP INDEX IF EXISTS audit_key_ts;
CREATE INDEX IF NOT EXISTS audit_ts_v2 ON audit (ts, id, op, outcome, client_ip, sub, key);
CREATE INDEX IF NOT EXISTS audit_sub_v2 ON audit (sub, ts, id, op, outcome, client_ip, key);
CREATE INDEX IF NOT EXISTS audit_ip_v2 ON audit (client_ip, ts, id, op, outcome, sub, key);
CREATE INDEX IF NOT EXISTS audit_op_v2 ON audit (op, ts, id, outcome, client_ip, sub, key);
CREATE INDEX IF NOT EXISTS audit_outcome_v2 ON audit (outcome, ts, id, op, client_ip, sub, key);
CREATE INDEX IF NOT EXISTS audit_op_outcome_v2 ON audit (op, outcome, ts, id, client_ip, sub, key);
CREATE INDEX IF NOT EXISTS audit_key_v2 ON audit (key, ts, id, op, outcome, client_ip, sub);
COMMIT;
"""
SQLITE_SCHEMA = SQLITE_TABLES + SQLITE_INDEXES
SQLITE_COLUMNS = {"audit": ("id",) + FIELDS, "jti": ("id", "expires_at")}
SQLITE_INSERT = (
    f"INSERT INTO audit ({', '.join(FIELDS)}) VALUES ({', '.join('?' for _ in FIELDS)})"
)
ESTIMATE_ROWS = 20_000  # matches counted per filter to choose the index (≤ ~3 ms each)
WALK_ROWS = 30_000  # index entries walked for a broad key prefix before the key index
REST_ROWS = 100_000  # ... unless fewer than this are left to walk
BELOW = "ts <= ? AND (ts < ? OR id < ?)"  # below (ts, id): ts bounds the walk, OR breaks ties
NOT_BELOW = "ts >= ? AND (ts > ? OR id >= ?)"  # at or above (ts, id)


class SchemaMismatch(sqlite3.DatabaseError):
    """The file's tables lack columns this gatekeeper writes (an older file).
    A sqlite3 error, so that every use of the store fails closed on it."""


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
                        self._schema_ready = True  # checked once: healthy() stays cheap
                conn.execute("PRAGMA synchronous=NORMAL")
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
        # Every filter as SQL terms, in three groups: columns, time, key prefix.
        eqs, eq_args = [], []
        for name in ("op", "outcome", "client_ip", "sub"):
            if getattr(q, name) is not None:
                eqs.append(f"{name} = ?")
                eq_args.append(getattr(q, name))
        times, time_args = [], []
        if q.since is not None:
            times.append("ts >= ?")
            time_args.append(q.since)
        if q.until is not None:
            times.append("ts < ?")
            time_args.append(q.until)
        if position is not None:
            # Keyset pagination on (ts, id): "ts <= ?" bounds the index range, the
            # OR resolves ties without breaking that bound.
            times.append(BELOW)
            time_args += [position[0], position[0], position[1]]
        keys, key_args = [], []
        if q.key_prefix:
            end = _prefix_end(q.key_prefix)
            keys, key_args = ["key >= ?"], [q.key_prefix]
            if end is not None:
                keys.append("key < ?")
                key_args.append(end)
        terms, args = eqs + times + keys, eq_args + time_args + key_args
        want = q.limit + 1
        try:
            conn = self._conn()
            index, walk, walk_args, broad_prefix = self._plan(conn, q, times, time_args, keys, key_args)
            edge = None
            if broad_prefix:
                # A broad prefix whose records are all old would have the walk read most
                # of the log: walk the newest WALK_ROWS entries only, then take the rest
                # from the key index (all of the prefix's entries, the newest kept).
                edge = conn.execute(
                    f"SELECT ts, id FROM audit INDEXED BY {index} WHERE {' AND '.join(walk) or '1'}"
                    " ORDER BY ts DESC, id DESC LIMIT 1 OFFSET ?", walk_args + [WALK_ROWS - 1],
                ).fetchone()
            if edge is None:
                rows = self._page(conn, index, terms, args, want)
            else:
                edge_args = [edge[0], edge[0], edge[1]]
                rows = self._page(conn, index, terms + [NOT_BELOW], args + edge_args, want)
                if len(rows) < want:  # the rest: go on walking if little is left
                    rest = conn.execute(
                        f"SELECT count(*) FROM (SELECT 1 FROM audit INDEXED BY {index}"
                        f" WHERE {' AND '.join(walk + [BELOW])} LIMIT ?)",
                        walk_args + edge_args + [REST_ROWS],
                    ).fetchone()[0]
                    rows += self._page(conn, index if rest < REST_ROWS else "audit_key_v2",
                                       terms + [BELOW], args + edge_args, want - len(rows))
        except sqlite3.Error as exc:
            log.error("audit search failed: %s", exc)
            raise AuditUnavailable("the audit log is unavailable") from None
        page = rows[: q.limit]
        cursor = encode_cursor(q, [page[-1][1], page[-1][0]]) if len(rows) > q.limit else None
        return [AuditRecord(*row[1:]).to_dict() for row in page], cursor

    @staticmethod
    def _page(conn: sqlite3.Connection, index: str, terms: list[str], args: list, want: int) -> list:
        """Up to `want` records, newest first. The inner query reads only the index
        (it holds every filter column); the outer one reads the rows it found."""
        sql = (
            f"SELECT id, {', '.join(FIELDS)} FROM audit WHERE id IN"
            f" (SELECT id FROM audit INDEXED BY {index} WHERE {' AND '.join(terms) or '1'}"
            " ORDER BY ts DESC, id DESC LIMIT ?)"
            " ORDER BY ts DESC, id DESC"
        )
        return conn.execute(sql, args + [want]).fetchall()

    @staticmethod
    def _plan(conn: sqlite3.Connection, q: SearchQuery, times: list[str], time_args: list,
              keys: list[str], key_args: list) -> tuple[str, list[str], list, bool]:
        """The index to walk: the one whose filter matches fewest records, counted up
        to ESTIMATE_ROWS (see the comment on SQLITE_TABLES). Returns it, the terms
        that bound its walk, and whether the search has a broad key prefix."""
        candidates = []  # (index, the terms that bound its walk, their arguments)
        for index, names in (("audit_sub_v2", ("sub",)), ("audit_ip_v2", ("client_ip",)),
                             ("audit_op_outcome_v2", ("op", "outcome")),
                             ("audit_op_v2", ("op",)), ("audit_outcome_v2", ("outcome",))):
            values = [getattr(q, name) for name in names]
            if None not in values:
                # Time bounds narrow these indexes too (they follow the column).
                candidates.append((index, [f"{name} = ?" for name in names] + times,
                                   values + time_args))
                if names == ("op", "outcome"):
                    break  # the pair beats op alone and outcome alone
        if keys:  # time bounds do not narrow the key index: they are not counted
            candidates.append(("audit_key_v2", keys, key_args))
        if not candidates or (len(candidates) == 1 and not keys):
            return (*(candidates[0] if candidates else ("audit_ts_v2", times, time_args)), False)
        counts = []
        for index, walk, walk_args in candidates:
            sample = (f"SELECT count(*) FROM (SELECT 1 FROM audit INDEXED BY {index}"
                      f" WHERE {' AND '.join(walk)} LIMIT ?)")
            counts.append(conn.execute(sample, walk_args + [ESTIMATE_ROWS]).fetchone()[0])
        best = min(range(len(candidates)), key=counts.__getitem__)  # the first, on a tie
        if candidates[best][0] != "audit_key_v2":
            return (*candidates[best], bool(keys) and counts[-1] >= ESTIMATE_ROWS)
        if counts[best] < ESTIMATE_ROWS:
            return (*candidates[best], False)  # few: read them all, keep the newest
        return "audit_ts_v2", times, time_args, True  # walk time, checking keys on the way

    def claim_jti(self, jti: str, expires_at: float, now: float) -> bool:
        try:
            conn = self._conn()
            with conn:
                # One statement, so two instances racing for the same jti cannot both win.
                changed = conn.execute(
                    "INSERT INTO jti (id, expires_at) VALUES (?, ?) ON CONFLICT (id)"
                    " DO UPDATE SET expires_at = excluded.expires_at WHERE jti.expires_at < ?",
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
                removed += conn.execute("DELETE FROM jti WHERE expires_at < ?", (now,)).rowcount
        except sqlite3.Error as exc:
            log.error("audit purge failed: %s", exc)
            raise AuditUnavailable("the audit log is unavailable") from None
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
            conn.execute(SQLITE_INSERT, tuple(getattr(probe, name) for name in FIELDS))
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
            self._conn().execute("SELECT 1 FROM audit LIMIT 1").fetchall()
        except sqlite3.Error:  # includes SchemaMismatch
            return False
        return True
