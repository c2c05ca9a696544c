"""How fast is an audit search on a big SQLite audit log?

Fills an SQLite audit DB with realistic records (cached under /tmp between runs),
then times SqliteAuditStore.search (parse_search included, as the gatekeeper calls
it) for each kind of filter, and a plain `ORDER BY ts DESC LIMIT 100` as the
baseline. Target: a filtered search's median at or under 50 ms.

    .venv/bin/python bench/bench_audit_search.py [--rows 1000000] [--reps 200] [--db PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gatekeeper.audit import FIELDS, parse_search  # noqa: E402
from gatekeeper.audit_sqlite import SQLITE_INSERT, SqliteAuditStore  # noqa: E402

DAY = 86400
SPAN_DAYS = 180
BATCH_ROWS = 100_000
TARGET_MS = 50
SUBS = [f"user:{n}" for n in range(2000)] + [f"agent:{n}" for n in range(300)]
IPS = [f"10.{n // 250}.{n % 250}.{n % 7 + 1}" for n in range(5000)] + [
    f"2001:db8::{n:x}" for n in range(500)]
TICKETS = 50_000
OPS = ["get", "list", "put", "delete", "audit", "request"]
OP_WEIGHTS = [60, 18, 12, 2, 1, 7]
FILES = ["screenshot-1.png", "screenshot-2.png", "message.txt", "diagnostics.json", "logs/app.log"]
AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0", "Mozilla/5.0 (Macintosh) Safari/17",
          "dualkey-agent/2.3 (Windows)", "python-requests/2.32"]
COUNTRIES = ["FR", "DE", "US", "GB", "ES", "IT", ""]
REASONS = ["ip_denied", "country_denied", "op_not_granted", "expired", "key_outside_prefix"]


def realistic_rows(count: int, now: float, rng: random.Random):
    """Oldest first, as a real log grows. Some users, IPs and tickets are busy."""
    sub_weights = [1 / (rank + 1) for rank in range(len(SUBS))]  # Zipf-like
    step = SPAN_DAYS * DAY / count
    for start in range(0, count, BATCH_ROWS):
        n = min(BATCH_ROWS, count - start)
        subs = rng.choices(SUBS, sub_weights, k=n)
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
            deny = op == "request" or rng.random() < 0.03
            sub = "" if op == "request" else subs[i]
            rows.append((
                ts, os.urandom(8).hex(), rng.choice(IPS), rng.choice(COUNTRIES), rng.choice(AGENTS),
                "https://portal.example", op, key, "deny" if deny else "allow",
                rng.choice(REASONS) if deny else "", 403 if deny else 200,
                "" if op == "request" else os.urandom(8).hex(), sub, "" if op == "request" else "k1",
            ))
        yield rows


def fill(path: str, count: int) -> None:
    if os.path.exists(path):
        with sqlite3.connect(path) as db:
            try:
                if db.execute("SELECT count(*) FROM audit").fetchone()[0] == count:
                    print(f"reusing {path} ({count:,} records)")
                    return
            except sqlite3.Error:
                pass
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
    print(f"filling {path} with {count:,} records ...", flush=True)
    started = time.monotonic()
    store = SqliteAuditStore(path, retention_days=3650)
    store.healthy()  # creates the schema, with every index, as the gatekeeper would
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


def timed(run, reps: int) -> tuple[float, float]:
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--db", default="")
    args = parser.parse_args()
    path = args.db or f"/tmp/dualkey-bench-audit-{args.rows}.db"
    fill(path, args.rows)

    store = SqliteAuditStore(path, retention_days=3650)
    conn = store._conn()
    newest = conn.execute("SELECT max(ts) FROM audit").fetchone()[0]
    busy_sub = conn.execute(
        "SELECT sub FROM audit WHERE sub != '' GROUP BY sub ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    rng = random.Random(2)

    def search(body_factory):
        return lambda: store.search(parse_search(body_factory()))

    def deep_page(pages: int):
        _, cursor = store.search(parse_search({"limit": 100}))
        for _ in range(pages - 2):
            _, cursor = store.search(parse_search({"limit": 100, "cursor": cursor}))
        return lambda: store.search(parse_search({"limit": 100, "cursor": cursor}))

    def recent_ticket():
        return rng.randint(TICKETS - 2000, TICKETS)

    def one_day():
        since = newest - rng.uniform(0, SPAN_DAYS - 1) * DAY
        return {"since": since, "until": since + DAY}

    baseline_sql = f"SELECT id, {', '.join(FIELDS)} FROM audit ORDER BY ts DESC LIMIT 100"
    cases = [
        ("baseline: SELECT ... ORDER BY ts DESC LIMIT 100", lambda: conn.execute(baseline_sql).fetchall()),
        ("no filter", search(lambda: {})),
        ("no filter, page 50 via cursor", deep_page(50)),
        ("sub (random user)", search(lambda: {"sub": rng.choice(SUBS)})),
        ("sub (busiest user)", search(lambda: {"sub": busy_sub})),
        ("client_ip", search(lambda: {"client_ip": rng.choice(IPS)})),
        ("op + outcome", search(lambda: {"op": rng.choice(OPS), "outcome": rng.choice(["allow", "deny"])})),
        ("op=delete + outcome=deny (rare)", search(lambda: {"op": "delete", "outcome": "deny"})),
        ("key_prefix one ticket", search(lambda: {"key_prefix": f"tickets/{recent_ticket()}/"})),
        ("key_prefix tickets/4 (broad)", search(lambda: {"key_prefix": "tickets/4"})),
        ("key_prefix tickets/ (everything)", search(lambda: {"key_prefix": "tickets/"})),
        ("time range (one day)", search(one_day)),
        ("time range + sub", search(lambda: {**one_day(), "sub": rng.choice(SUBS[:50])})),
        # Two common values that never occur together: the index walks to the end.
        ("sub + op, no match (worst case)", search(lambda: {"sub": busy_sub, "op": "request"})),
    ]
    print(f"\n{args.reps} repetitions each, limit 100, {args.rows:,} records, SQLite "
          f"{sqlite3.sqlite_version}\n")
    print(f"{'search':<50} {'median ms':>10} {'p95 ms':>10} {'x baseline':>11}")
    base = None
    for name, run in cases:
        run()  # warm the page cache once
        median, p95 = timed(run, args.reps)
        base = base or median
        flag = "" if name.startswith(("baseline", "no filter")) or median <= TARGET_MS else "  over target"
        print(f"{name:<50} {median:>10.2f} {p95:>10.2f} {median / base:>10.1f}x{flag}")


if __name__ == "__main__":
    main()
