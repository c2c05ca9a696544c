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
from .errors import AuditUnavailable, BadRequest

log = logging.getLogger("gatekeeper.audit")


SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL, client_ip TEXT NOT NULL, country TEXT NOT NULL,
    user_agent TEXT NOT NULL, origin TEXT NOT NULL, op TEXT NOT NULL, key TEXT NOT NULL,
    outcome TEXT NOT NULL, reason TEXT NOT NULL, status INTEGER NOT NULL,
    jti TEXT NOT NULL, sub TEXT NOT NULL, name TEXT NOT NULL, kid TEXT NOT NULL
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
                # WAL is a property of the file: set once, with the schema, by one thread
                # (switching journal modes while other connections open can fail busy).
                with self._lock:
                    if not self._schema_ready:
                        conn.execute("PRAGMA journal_mode=WAL")
                        conn.executescript(SQLITE_SCHEMA)
                        self._schema_ready = True
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

    def healthy(self) -> bool:
        try:
            self._conn().execute("SELECT 1 FROM audit LIMIT 1").fetchall()
        except sqlite3.Error:
            return False
        return True


