"""How fast is an audit search on a big SQLite audit log, and what does a write cost?

Fills an SQLite audit DB with realistic records (cached under /tmp between runs;
the file name carries a fingerprint of the schema and of this generator, so a
schema change never reuses a stale file), then times SqliteAuditStore.search
(parse_search included, as the gatekeeper calls it) for every single filter and
every pair of filters, each with values drawn as a person would search: the value
of a record they saw (so busy users and addresses come up as often as they occur),
plus the worst cases (the busiest values, values that never occur together).
Target: every filtered search's median at or under 50 ms.

Last, the cost of an audit write (what every request pays), on this big file.

    .venv/bin/python bench/bench_audit_search.py [--rows 1000000] [--reps 100] [--db PATH] [--only TEXT]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gatekeeper.audit import FIELDS, AuditRecord, parse_search  # noqa: E402
from gatekeeper.audit_sqlite import SQLITE_INSERT, SQLITE_SCHEMA, SqliteAuditStore  # noqa: E402

DAY = 86400
SPAN_DAYS = 180
BATCH_ROWS = 100_000
TARGET_MS = 50
CASE_SECONDS = 4.0  # a slow case stops early (at least 10 repetitions)
GENERATOR_VERSION = "2"  # bump when realistic_rows() changes
SUBS = [f"user:{n}" for n in range(2000)] + [f"agent:{n}" for n in range(300)]
# Addresses are Zipf-like too: a few office NAT addresses carry much of the traffic.
IPS = [f"10.{n // 250}.{n % 250}.{n % 7 + 1}" for n in range(5000)] + [
    f"2001:db8::{n:x}" for n in range(500)]
TICKETS = 50_000
OPS = ["get", "list", "put", "delete", "audit", "request"]
OP_WEIGHTS = [60, 18, 12, 2, 1, 7]
FILES = ["screenshot-1.png", "screenshot-2.png", "message.txt", "diagnostics.json", "logs/app.log"]
AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0", "Mozilla/5.0 (Macintosh) Safari/17",
          "dualkey-agent/2.3 (Windows)", "python-requests/2.32"]
COUNTRIES = ["FR", "DE", "US", "GB", "ES", "IT", ""]
# Real reason codes (docs/protocol.md §5). An op is refused by policy; a request
# is refused before its ops were read (a bad grant: then there is no sub).
OP_REASONS = [("address_denied", 403), ("country_denied", 403), ("out_of_scope", 403),
              ("op_not_granted", 403), ("grant_reused", 403), ("storage_error", 502)]
REQUEST_REASONS = [("expired", 401), ("bad_signature", 401), ("missing_grant", 401),
                   ("malformed_json", 400), ("revoked", 401), ("kill_switch", 403)]


def zipf(count: int) -> list[float]:
    return [1 / (rank + 1) for rank in range(count)]


def realistic_rows(count: int, now: float, rng: random.Random):
    """Oldest first, as a real log grows. Some users, addresses and tickets are busy
    (Zipf-like: the busiest user or address has about a tenth of all records)."""
    step = SPAN_DAYS * DAY / count
    for start in range(0, count, BATCH_ROWS):
        n = min(BATCH_ROWS, count - start)
        subs = rng.choices(SUBS, zipf(len(SUBS)), k=n)
        ips = rng.choices(IPS, zipf(len(IPS)), k=n)
        ops = rng.choices(OPS, OP_WEIGHTS, k=n)
        rows = []
        for i in range(n):
            index = start + i
            ts = now - SPAN_DAYS * DAY + index * step + rng.random() * step
            op = ops[i]
            # Recent tickets are the busy ones.
            ticket = max(1, int(TICKETS * index / count) - int(rng.expovariate(1 / 300)))
            key = {"list": f"tickets/{ticket}/", "audit": "", "request": ""}.get(
                op, f"tickets/{ticket}/{rng.choice(FILES)}")
            if op == "request":
                reason, status = rng.choice(REQUEST_REASONS)
            elif rng.random() < 0.03:
                reason, status = rng.choice(OP_REASONS)
            else:
                reason, status = "", 200
            # Most refused requests carried no readable grant.
            anonymous = op == "request" and reason != "kill_switch"
            sub = "" if anonymous else subs[i]
            rows.append((
                ts, os.urandom(8).hex(), ips[i], rng.choice(COUNTRIES), rng.choice(AGENTS),
                "https://portal.example", op, key, "deny" if reason else "allow", reason, status,
                "" if anonymous else os.urandom(8).hex(), sub,
                "" if anonymous else f"Person {sub.partition(':')[2]}", "" if anonymous else "k1",
                "", "", "", "",  # approval, approvers, idp_sub, idp_iss: no filter reads them
            ))
        yield rows


def default_path(rows: int) -> str:
    """The schema (tables, indexes, planner hints), the fields and the generator
    decide what a cached file holds: all three are in its name."""
    fingerprint = hashlib.sha256(
        "\n".join([SQLITE_SCHEMA, ",".join(FIELDS), GENERATOR_VERSION]).encode()).hexdigest()[:12]
    return f"/tmp/dualkey-bench-audit-{rows}-{fingerprint}.db"


def remove_db(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def fill(path: str, count: int, cached: bool) -> None:
    if cached:  # caches of other schemas (and the unversioned name): ~0.4-0.8 GB each
        for stale in glob.glob(f"/tmp/dualkey-bench-audit-{count}-*.db") + glob.glob(
                f"/tmp/dualkey-bench-audit-{count}.db"):
            if stale != path:
                print(f"removing stale {stale}")
                remove_db(stale)
    if os.path.exists(path):
        with sqlite3.connect(path) as db:
            try:
                if db.execute("SELECT count(*) FROM audit").fetchone()[0] == count:
                    print(f"reusing {path} ({count:,} records)")
                    return
            except sqlite3.Error:
                pass
        remove_db(path)
    print(f"filling {path} with {count:,} records ...", flush=True)
    started = time.monotonic()
    store = SqliteAuditStore(path, retention_days=3650)
    store.check()  # creates the schema, with every index, as the gatekeeper would
    store.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")  # a throwaway file: durability is not the point
    for rows in realistic_rows(count, time.time(), random.Random(1)):
        db.execute("BEGIN")
        db.executemany(SQLITE_INSERT, rows)
        db.execute("COMMIT")
        print(".", end="", flush=True)
    db.close()
    print(f" {time.monotonic() - started:.0f} s")


def timed(run, reps: int) -> tuple[float, float, int]:
    samples = []
    deadline = time.perf_counter() + CASE_SECONDS
    for n in range(reps):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
        if n >= 9 and started > deadline:
            break
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)], len(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--db", default="")
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    args = parser.parse_args()
    path = args.db or default_path(args.rows)
    fill(path, args.rows, cached=not args.db)

    store = SqliteAuditStore(path, retention_days=3650)
    store.check()
    conn = store._conn()
    newest, max_id = conn.execute("SELECT max(ts), max(id) FROM audit").fetchone()
    rng = random.Random(2)
    # Values "seen in the log": drawn from random records, so as often as they occur.
    seen = [conn.execute("SELECT op, outcome, client_ip, sub, key, ts FROM audit WHERE id = ?",
                         (rng.randint(1, max_id),)).fetchone() for _ in range(3000)]
    seen = [row for row in seen if row]

    def busiest(column: str, where: str = "1") -> str:
        return conn.execute(f"SELECT {column} FROM audit WHERE {where} GROUP BY {column}"
                            f" ORDER BY count(*) DESC LIMIT 1").fetchone()[0]

    busy_sub, busy_ip = busiest("sub", "sub != ''"), busiest("client_ip")

    # One filter's value, drawn afresh for every repetition.
    def op():
        return {"op": rng.choice(seen)[0]}

    def outcome():
        return {"outcome": rng.choice(seen)[1]}

    def client_ip():
        return {"client_ip": rng.choice(seen)[2]}

    def sub():
        return {"sub": rng.choice(seen)[3]}

    def key_prefix():  # the ticket of a record seen: tickets/N/
        key = next(row[4] for row in iter(lambda: rng.choice(seen), None) if row[4])
        return {"key_prefix": key[: key.index("/", 8) + 1]}

    def one_day():
        since = newest - rng.uniform(1, SPAN_DAYS) * DAY
        return {"since": since, "until": since + DAY}

    def last_week():
        return {"since": newest - 7 * DAY}

    def search(*makers, fixed=None):
        def run():
            body = {}
            for make in makers:
                body.update(make())
            store.search(parse_search({**body, **(fixed or {})}))
        return run

    def both_seen(a: int, b: int, names: tuple[str, str]):
        """Two values of one record seen: the pair occurs."""
        def make():
            row = rng.choice(seen)
            return {names[0]: row[a], names[1]: row[b]}
        return make

    def deep_page(pages: int):
        _, cursor = store.search(parse_search({"limit": 100}))
        for _ in range(pages - 2):
            _, cursor = store.search(parse_search({"limit": 100, "cursor": cursor}))
        return lambda: store.search(parse_search({"limit": 100, "cursor": cursor}))

    baseline_sql = f"SELECT id, {', '.join(FIELDS)} FROM audit ORDER BY ts DESC LIMIT 100"
    singles = {"op": op, "outcome": outcome, "client_ip": client_ip, "sub": sub,
               "key_prefix": key_prefix, "time(1 day)": one_day}
    column = {"op": 0, "outcome": 1, "client_ip": 2, "sub": 3}
    cases = [
        ("baseline: SELECT ... ORDER BY ts DESC LIMIT 100", lambda: conn.execute(baseline_sql).fetchall()),
        ("no filter", search()),
        ("no filter, page 50 via cursor", deep_page(50)),
        # --- single filters
        ("op (seen)", search(op)),
        ("op=delete (rare)", search(fixed={"op": "delete"})),
        ("op=audit (rare)", search(fixed={"op": "audit"})),
        ("outcome=allow", search(fixed={"outcome": "allow"})),
        ("outcome=deny", search(fixed={"outcome": "deny"})),
        ("client_ip (seen)", search(client_ip)),
        ("client_ip (busiest)", search(fixed={"client_ip": busy_ip})),
        ("client_ip (never seen)", search(fixed={"client_ip": "192.0.2.1"})),
        ("client_ip (any address: mostly rare ones)", search(lambda: {"client_ip": rng.choice(IPS)})),
        ("sub (seen)", search(sub)),
        ("sub (any user: mostly rare ones)", search(lambda: {"sub": rng.choice(SUBS)})),
        ("sub (busiest)", search(fixed={"sub": busy_sub})),
        ("sub='' (no readable grant)", search(fixed={"sub": ""})),
        ("key_prefix one ticket (seen)", search(key_prefix)),
        ("key_prefix tickets/4 (broad)", search(fixed={"key_prefix": "tickets/4"})),
        ("key_prefix tickets/1 (broad, old tickets)", search(fixed={"key_prefix": "tickets/1"})),
        ("key_prefix tickets/ (everything)", search(fixed={"key_prefix": "tickets/"})),
        ("key_prefix no match", search(fixed={"key_prefix": "tickets/999999/"})),
        ("since+until (one day)", search(one_day)),
        ("since (last week)", search(last_week)),
        ("until (90 days ago)", search(fixed={"until": newest - 90 * DAY})),
    ]
    # --- every pair: values of one record (the pair occurs), and values of two
    # records (often a pair that never occurs: the index walks to the end).
    names = list(singles)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            label = f"{first} + {second}"
            if first in column and second in column:
                cases.append((f"{label} (one record)", search(both_seen(column[first], column[second],
                                                                        (first, second)))))
            cases.append((f"{label} (independent)", search(singles[first], singles[second])))
    cases += [
        # What a reviewer measured: an address drawn from the address list (mostly rare).
        ("outcome=allow + client_ip (any)", search(lambda: {"outcome": "allow", "client_ip": rng.choice(IPS)})),
        ("outcome=deny + client_ip (any)", search(lambda: {"outcome": "deny", "client_ip": rng.choice(IPS)})),
        ("op=get + client_ip (any)", search(lambda: {"op": "get", "client_ip": rng.choice(IPS)})),
        ("op=get + sub (any)", search(lambda: {"op": "get", "sub": rng.choice(SUBS)})),
        ("op=get + key_prefix one ticket (seen)", search(key_prefix, fixed={"op": "get"})),
        ("outcome=allow + key_prefix one ticket (seen)", search(key_prefix, fixed={"outcome": "allow"})),
        ("op=get + key_prefix tickets/1 (old)", search(fixed={"op": "get", "key_prefix": "tickets/1"})),
        ("since (last week) + key_prefix tickets/1 (old): no match",
         search(last_week, fixed={"key_prefix": "tickets/1"})),
        ("outcome=allow + client_ip (busiest)", search(fixed={"outcome": "allow", "client_ip": busy_ip})),
        ("op=get + client_ip (seen)", search(client_ip, fixed={"op": "get"})),
        ("op=request + sub (busiest): no match", search(fixed={"sub": busy_sub, "op": "request"})),
        ("op=request + client_ip (busiest)", search(fixed={"client_ip": busy_ip, "op": "request"})),
        ("op=audit + sub (busiest)", search(fixed={"sub": busy_sub, "op": "audit"})),
        ("sub (busiest) + client_ip (busiest)", search(fixed={"sub": busy_sub, "client_ip": busy_ip})),
        ("outcome=deny + sub (busiest)", search(fixed={"sub": busy_sub, "outcome": "deny"})),
        ("key_prefix tickets/ + op=request: no match",
         search(fixed={"key_prefix": "tickets/", "op": "request"})),
        ("key_prefix tickets/ + sub='': no match", search(fixed={"key_prefix": "tickets/", "sub": ""})),
        ("key_prefix tickets/4 + outcome=deny", search(fixed={"key_prefix": "tickets/4", "outcome": "deny"})),
        ("key_prefix tickets/ + client_ip (busiest)",
         search(fixed={"key_prefix": "tickets/", "client_ip": busy_ip})),
        ("since (last week) + sub (busiest)", search(last_week, fixed={"sub": busy_sub})),
        ("one day + op=request", search(one_day, fixed={"op": "request"})),
    ]
    if args.only:
        cases = [case for case in cases if args.only in case[0]]
    print(f"\nup to {args.reps} repetitions each (at most ~{CASE_SECONDS:.0f} s a case), limit 100, "
          f"{args.rows:,} records, SQLite {sqlite3.sqlite_version}\n")
    print(f"{'search':<56} {'median ms':>10} {'p95 ms':>9} {'reps':>5}")
    over = []
    for name, run in cases:
        run()  # warm the page cache once
        median, p95, reps = timed(run, args.reps)
        flag = ""
        if not name.startswith(("baseline", "no filter")) and median > TARGET_MS:
            flag = "  OVER TARGET"
            over.append(name)
        print(f"{name:<56} {median:>10.2f} {p95:>9.2f} {reps:>5}{flag}", flush=True)
    filtered = len([c for c in cases if not c[0].startswith(("baseline", "no filter"))])
    print(f"\n{filtered - len(over)} of {filtered} filtered searches at or under {TARGET_MS} ms median"
          + (f"; over: {', '.join(over)}" if over else ""))

    write_cost(store, conn, max_id, args.rows)


def write_cost(store: SqliteAuditStore, conn: sqlite3.Connection, max_id: int, rows: int) -> None:
    """What every request pays: one committed write (WAL, synchronous=NORMAL), into
    this big file. The records written are deleted again, so the cache stays valid."""
    now = time.time()
    record = AuditRecord(ts=now, request_id="bench", client_ip="203.0.113.5", country="FR",
                         user_agent=AGENTS[0], origin="https://portal.example", op="get",
                         key="tickets/42/screenshot-1.png", outcome="allow", status=200,
                         jti=os.urandom(8).hex(), sub="user:1", name="Person 1", kid="k1")
    print()
    try:
        for count in (1, 20):
            samples = []
            for _ in range(2000 // count):
                started = time.perf_counter()
                store.write([record] * count, now=now)
                samples.append((time.perf_counter() - started) * 1e6)
            samples.sort()
            label = f"audit write, {count} record{'s' if count > 1 else ''} ({rows:,}-record file)"
            print(f"{label:<56} median {statistics.median(samples):7.1f} µs  "
                  f"p95 {samples[int(len(samples) * 0.95) - 1]:7.1f} µs")
    finally:
        with conn:
            conn.execute("DELETE FROM audit WHERE id > ?", (max_id,))


if __name__ == "__main__":
    main()
