"""Slow clients against the gatekeeper's HTTP server, and its throughput: several
servers side by side, in the same run, serving the same WSGI app
(gatekeeper.http_server.wsgi_app).

    .venv/bin/pip install -r bench/requirements-bench.txt   # granian, gunicorn
    .venv/bin/python bench/bench_slow_clients.py [--slow 1000] [--hold 10] [--seconds 3]

For each server:

(a) `--slow` connections are opened and held: a third send nothing, a third send
    a partial request (request line and one header) and stop, a third trickle a
    header one byte every half second, never ending it. Meanwhile a new client
    asks `GET /v1/health` every 100 ms for `--hold` seconds (5 s timeout each);
    printed: latency percentiles, how many answered within 1 s, and how many slow
    connections the server had closed by the end. Target: every probe within 1 s.
(b) Throughput, first, in `--rounds` rounds that alternate the servers (the
    median round counts): 2 keep-alive client processes POST /v1/sign with one
    get op for `--seconds`; requests/s per server core = requests / the server's CPU seconds
    (its whole process tree). Target: at least today's, about 1,700 per core.

The servers: waitress as the gatekeeper ran it before (connection_limit 100,
select()), waitress tuned, as `http_server.serve` runs it now
(`WAITRESS_SETTINGS`), granian (Rust I/O, WSGI
on a thread pool) and gunicorn's gthread worker. The machine is shared: figures
are noisy, so compare the servers within one run; the load average is printed.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import support  # noqa: E402

import bench_sign  # noqa: E402  (this folder is on sys.path when a bench runs)

for _k, _v in support.AWS_ENV.items():
    os.environ.setdefault(_k, _v)

HEALTH_TARGET = 1.0
PROBE_TIMEOUT = 5.0
THREADS = 8

# How waitress ran before issue 13 (gatekeeper/http_server.py's serve()), for comparison.
WAITRESS_BEFORE = {"threads": THREADS, "channel_timeout": 30}



def make_app():
    """The gatekeeper's WSGI app from its GATEKEEPER_* environment (granian and
    gunicorn import this; `--serve` uses it too)."""
    from gatekeeper import config as config_module
    from gatekeeper.app import Gatekeeper
    from gatekeeper.http_server import wsgi_app

    app = wsgi_app(Gatekeeper(config_module.load(None)))

    def with_raw_uri(environ, start_response):
        # The gatekeeper routes on waitress's REQUEST_URI (the undecoded path); granian
        # gives none and gunicorn calls it RAW_URI. The bench sends canonical paths only.
        environ.setdefault("REQUEST_URI", environ.get("RAW_URI") or environ["PATH_INFO"])
        return app(environ, start_response)

    return with_raw_uri


def serve_waitress(port: int, settings: dict) -> None:
    import waitress

    from gatekeeper.http_server import TRANSPORT_BODY_LIMIT

    waitress.serve(make_app(), host="127.0.0.1", port=port, ident="gatekeeper",
                   max_request_body_size=TRANSPORT_BODY_LIMIT, clear_untrusted_proxy_headers=False, **settings)


def serve_production(port: int) -> None:
    from gatekeeper import config as config_module
    from gatekeeper.app import Gatekeeper
    from gatekeeper.http_server import serve

    serve(Gatekeeper(config_module.load(None)), "127.0.0.1", port, THREADS)


def server_command(name: str, port: int) -> list[str]:
    me = [support.PYTHON, str(Path(__file__).resolve())]
    bench = str(ROOT / "bench")
    return {
        "waitress (before)": [*me, "--serve", "waitress-before", "--port", str(port)],
        "waitress (tuned)": [*me, "--serve", "production", "--port", str(port)],
        "granian": [str(Path(support.PYTHON).parent / "granian"), "--interface", "wsgi", "--factory",
                    "--working-dir", bench, "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                    "--blocking-threads", str(THREADS), "--no-ws", "--log-level", "warning",
                    "--http1-header-read-timeout", "30000", "bench_slow_clients:make_app"],
        "gunicorn gthread": [str(Path(support.PYTHON).parent / "gunicorn"), "--chdir", bench, "-k", "gthread",
                             "--workers", "1", "--threads", str(THREADS), "--worker-connections", "4000",
                             "--timeout", "30", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                             "bench_slow_clients:make_app()"],
    }[name]


SERVERS = ["waitress (before)", "waitress (tuned)", "granian", "gunicorn gthread"]


# --- (a) slow clients ------------------------------------------------------------------------

class SlowClients:
    """`count` connections held open from one thread: idle, partial, trickling."""

    def __init__(self, port: int, count: int):
        self.port, self.count = port, count
        self.stop = threading.Event()
        self.opened = self.closed_by_server = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        sel = selectors.DefaultSelector()
        socks = []
        for i in range(self.count):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            socks.append((i % 3, s))
        # Wait (at most 10 s) for the handshakes: the kernel completes them into
        # the listen backlog even when the server does not accept.
        pending = {s for _, s in socks}
        for s in pending:
            sel.register(s, selectors.EVENT_WRITE)
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(0.5):
                sel.unregister(key.fileobj)
                pending.discard(key.fileobj)
        for s in pending:
            sel.unregister(s)
        live = [(kind, s) for kind, s in socks if s not in pending]
        self.opened = len(live)
        for kind, s in live:
            if kind >= 1:  # partial (and the start of a trickle)
                try:
                    s.send(b"POST /v1/sign HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                except OSError:
                    pass
        closed = set()
        while not self.stop.wait(0.5):
            for kind, s in live:
                if s in closed:
                    continue
                try:
                    if kind == 2:
                        s.send(b"a")
                    else:
                        s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                        closed.add(s)  # readable: an answer or EOF, the server let go
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    closed.add(s)
        self.closed_by_server = len(closed)
        for _, s in socks:
            s.close()


def probe_health(port: int) -> float:
    """Seconds until a new client's GET /v1/health is answered 200 (inf if not within the timeout)."""
    start = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT)
        conn.request("GET", "/v1/health")
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status != 200:
            return float("inf")
    except OSError:
        return float("inf")
    return time.perf_counter() - start


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def slow_clients(port: int, count: int, hold: float) -> dict:
    holder = SlowClients(port, count)
    holder.thread.start()
    time.sleep(3)  # the connections are opened and their first bytes sent
    # One probe every 100 ms whatever the earlier ones do: a stuck server
    # costs each probe its full timeout, not the run its number of probes.
    samples, probes = [], []
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline:
        probe = threading.Thread(target=lambda: samples.append(probe_health(port)))
        probe.start()
        probes.append(probe)
        time.sleep(0.1)
    for probe in probes:
        probe.join()
    holder.stop.set()
    holder.thread.join()
    within = sum(s <= HEALTH_TARGET for s in samples)
    ms = lambda s: "timeout" if s == float("inf") else f"{s * 1e3:.1f} ms"  # noqa: E731
    print(f"  {holder.opened} slow connections opened, {holder.closed_by_server} closed by the server by the end; "
          f"{len(samples)} health probes: p50 {ms(percentile(samples, .5))}, p90 {ms(percentile(samples, .9))}, "
          f"p99 {ms(percentile(samples, .99))}, max {ms(max(samples))}; within 1 s: {within}/{len(samples)}")
    return {"within": within, "probes": len(samples), "p50": percentile(samples, .5),
            "p99": percentile(samples, .99), "max": max(samples)}


# --- (b) throughput ------------------------------------------------------------------------

def _load(port: int, payload: bytes, headers: dict, seconds: float, out) -> None:
    """One keep-alive client, as bench_sign's."""
    bench_sign._load("127.0.0.1", port, payload, headers, seconds, out)


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process and all its descendants."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def throughput(proc, port: int, grant: str, seconds: float, clients: int = 2) -> dict:
    import json

    payload = json.dumps({"ops": [{"op": "get", "key": "tickets/42/file-0.png"}]}).encode()
    headers = {"Authorization": f"Bearer {grant}", "Content-Type": "application/json"}
    queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_load, args=(port, payload, headers, seconds, queue))
               for _ in range(clients)]
    cpu0, wall0 = tree_cpu_seconds(proc.pid), time.perf_counter()
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    cpu, wall = tree_cpu_seconds(proc.pid) - cpu0, time.perf_counter() - wall0
    total, errors = sum(r[0] for r in results), sum(r[1] for r in results)
    per_core = total / cpu if cpu else float("nan")
    print(f"  one get op: {total / wall:6.0f} requests/s wall, server CPU {cpu:5.2f} s -> "
          f"{per_core:6.0f} requests/s per server core (errors {errors})")
    return {"per_core": per_core, "wall": total / wall, "errors": errors}


# --- the run -------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated, from: " + ", ".join(SERVERS))
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "waitress-before":
        return serve_waitress(args.port, WAITRESS_BEFORE)
    if args.serve == "production":
        return serve_production(args.port)

    import boto3

    from bench.bench_sign import GK_ID, ISSUER, KEY, env_for
    from gatekeeper_client.grants import mint_grant

    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    if set(names) - set(SERVERS):
        parser.error(f"unknown server(s): {', '.join(sorted(set(names) - set(SERVERS)))}")
    missing = [n for n in names if not Path(server_command(n, 0)[0]).exists()]
    if missing:
        print(f"not installed, skipped: {', '.join(missing)} (pip install -r bench/requirements-bench.txt)")
        names = [n for n in names if n not in missing]
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    grant = mint_grant(KEY, issuer=ISSUER, audience=GK_ID, subject="user:1", prefix="tickets/42/",
                       ops=["get"], lifetime=3600)
    figures = {name: {"per_core_rounds": []} for name in names}
    with tempfile.TemporaryDirectory() as workdir:
        moto, moto_url = support.start_moto()
        servers = {}
        try:
            bucket = "bench-reports"
            boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").create_bucket(Bucket=bucket)
            for i, name in enumerate(names):
                port = support.free_port()
                env = {**env_for(moto_url, bucket, f"{workdir}/audit-{i}.db"), "PYTHONPATH": str(ROOT)}
                servers[name] = port, support.start_process(
                    server_command(name, port), f"http://127.0.0.1:{port}/v1/health",
                    env=env, log_path=Path(workdir) / f"server-{i}.log")
            # (b) first, in rounds that alternate the servers, so the machine's
            # other load falls on all of them alike; the median round counts.
            for round_ in range(args.rounds):
                print(f"\n== throughput, round {round_ + 1} of {args.rounds} ==", flush=True)
                for name in names:
                    port, proc = servers[name]
                    print(f"{name}:", end="")
                    figures[name]["per_core_rounds"].append(throughput(proc, port, grant, args.seconds)["per_core"])
            # (a) then each server alone with its slow clients (the others idle).
            for name in names:
                port, _ = servers[name]
                print(f"\n== {args.slow} slow clients: {name} ==", flush=True)
                figures[name].update(slow_clients(port, args.slow, args.hold))
        finally:
            for _, proc in servers.values():
                support.stop_process(proc)
            support.stop_process(moto)
    for f in figures.values():
        f["per_core"] = statistics.median(f["per_core_rounds"])

    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print(f"\n== side by side ({args.slow} slow connections; median round's throughput relative to the first server) ==")
    base = figures[names[0]]["per_core"]
    print(f"{'server':20s} {'health ≤1 s':>12s} {'p50':>9s} {'p99':>9s} {'req/s/core':>11s} {'ratio':>6s}")
    for name in names:
        f = figures[name]
        ms = lambda s: "timeout" if s == float("inf") else f"{s * 1e3:.1f}ms"  # noqa: E731
        print(f"{name:20s} {f['within']:>5d}/{f['probes']:<6d} {ms(f['p50']):>9s} {ms(f['p99']):>9s} "
              f"{f['per_core']:11.0f} {f['per_core'] / base:6.2f}")


if __name__ == "__main__":
    main()
