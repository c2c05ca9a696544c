"""A move by the vendor's worker on loopback, against a plain boto3 copy of the same
objects in the same run, and the worker's peak memory for a 100 MB object.

    .venv/bin/python bench/bench_move.py [--objects 200] [--size 262144] [--concurrency 4] [--big-mb 100]

Both carry the same objects between two buckets of one moto S3 server:
- the move: portal/moves/worker.py through two real gatekeeper processes (a get
  grant and /v1/sign at the source, a single-use put grant, /v1/sign and a
  presigned POST at the destination, a read-back to verify, the switch, the
  source's erasure and its receipt), `--concurrency` objects at once;
- the baseline: boto3 get_object + put_object, `--concurrency` threads, nothing
  verified, nothing erased.

The memory figure runs in a fresh process (this script with --memory): the 100 MB
object is uploaded to the source first (streamed, one part at a time), the peak
resident size is reset (/proc/self/clear_refs), the move runs, and the growth is
the new peak (VmHWM) less the resident size just before.

It uses a throwaway SQLite database in memory.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DUALKEY_DEBUG", "1")

import django  # noqa: E402

django.setup()

import boto3  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import override_settings, setup_test_environment  # noqa: E402

from portal.moves import services, worker  # noqa: E402
from portal.tickets.models import Ticket  # noqa: E402
from portal.tickets.services import complete_ticket, create_ticket  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tenants.services import create_tenant  # noqa: E402
from tests import support  # noqa: E402
from tests.portal.move_stack import point_locations, public_keys, start_gatekeeper  # noqa: E402

for _name, _value in support.AWS_ENV.items():
    os.environ.setdefault(_name, _value)

PER_TICKET = 10


def s3_client(moto_url):
    return boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")


class Generated(io.RawIOBase):
    """`size` pseudo-random bytes, made as they are read (an upload that holds one part)."""

    def __init__(self, size: int):
        self.left, self.digest, self.block = size, hashlib.sha256(), os.urandom(1024 * 1024)

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left, len(self.block))
        buffer[:n] = self.block[:n]
        self.digest.update(self.block[:n])
        self.left -= n
        return n


def setup(moto_url: str, workdir: Path, objects: list[tuple[str, int]], *, streamed=False):
    """A tenant whose tickets hold `objects` (name, size) at a vendor-hosted location."""
    tenant = create_tenant(slug="bench", name="Bench", status=Tenant.Status.ACTIVE, region="us-east-1",
                           bucket="bench", gatekeeper_url="https://gk.bench.example", gatekeeper_id="gk-bench",
                           storage_origin="https://bench.s3.us-east-1.amazonaws.com")
    from tenants.tokens import issue_agent_token

    agent, _ = issue_agent_token(tenant, "bench")
    keys = public_keys(tenant)
    src = start_gatekeeper(moto_url, workdir / "src", "gk-bench", keys, max_upload_bytes=5 * 1024**3)
    dst = start_gatekeeper(moto_url, workdir / "dst", "gk-bench-2", keys, max_upload_bytes=5 * 1024**3)
    s3 = s3_client(moto_url)
    source, destination = point_locations(tenant, src, dst, moto_url)
    keys_written = []
    for start in range(0, len(objects), PER_TICKET):
        batch = objects[start:start + PER_TICKET]
        datas = {}
        manifest = []
        for name, size in batch:
            if streamed:
                body = Generated(size)
                datas[name] = body
                manifest.append({"name": name, "size": size, "content_type": "application/octet-stream",
                                 "sha256": "0" * 64})
            else:
                datas[name] = os.urandom(size)
                manifest.append({"name": name, "size": size, "content_type": "application/octet-stream",
                                 "sha256": hashlib.sha256(datas[name]).hexdigest()})
        ticket = create_ticket(agent, manifest)
        for name, data in datas.items():
            key = ticket.prefix + name
            if streamed:
                s3.upload_fileobj(io.BufferedReader(data, 8 * 1024 * 1024), src.bucket, key,
                                  Config=TransferConfig(use_threads=False, multipart_chunksize=8 * 1024 * 1024))
                ticket.files.filter(name=name).update(sha256=data.digest.hexdigest())
            else:
                s3.put_object(Bucket=src.bucket, Key=key, Body=data)
            keys_written.append(key)
        complete_ticket(ticket)
    Ticket.objects.filter(tenant=tenant).update(location=source)
    return tenant, source, destination, src, dst, keys_written


def receipts_settings(moto_url: str, bucket: str):
    s3_client(moto_url).create_bucket(Bucket=bucket)
    receipts = settings.STORAGES["receipts"]
    return override_settings(STORAGES={**settings.STORAGES, "receipts": {**receipts, "OPTIONS": {
        **receipts["OPTIONS"], "bucket_name": bucket, "endpoint_url": moto_url, "addressing_style": "path"}}})


def rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def memory_child(moto_url: str, big_mb: int, concurrency: int) -> int:
    with tempfile.TemporaryDirectory() as tmp, receipts_settings(moto_url, f"receipts-mem-{os.getpid()}"):
        tenant, source, destination, src, dst, keys = setup(moto_url, Path(tmp), [("big.bin", big_mb * 1024**2)],
                                                           streamed=True)
        try:
            job = services.plan(tenant, source, destination, None, concurrency=concurrency).job
            gc.collect()
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident size
            before = rss("VmRSS")
            started = time.perf_counter()
            stats = worker.run_job(job.pk)
            took = time.perf_counter() - started
            peak = rss("VmHWM")
            assert stats.verified == 1 and stats.erased == 1, stats
            print(json.dumps({"before": before, "peak": peak, "growth": peak - before, "seconds": took}))
        finally:
            src.stop()
            dst.stop()
    return 0


def throughput(moto_url: str, count: int, size: int, concurrency: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp, receipts_settings(moto_url, f"receipts-{os.getpid()}"):
        tenant, source, destination, src, dst, keys = setup(
            moto_url, Path(tmp), [(f"file-{i:04d}.bin", size) for i in range(count)])
        try:
            s3 = s3_client(moto_url)
            baseline_bucket = f"baseline-{os.getpid()}"
            s3.create_bucket(Bucket=baseline_bucket)

            local = threading.local()

            def copy(key):
                client = getattr(local, "client", None) or s3_client(moto_url)
                local.client = client
                body = client.get_object(Bucket=src.bucket, Key=key)["Body"].read()
                client.put_object(Bucket=baseline_bucket, Key=key, Body=body)

            started = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(copy, keys))
            plain = time.perf_counter() - started

            job = services.plan(tenant, source, destination, None, concurrency=concurrency).job
            started = time.perf_counter()
            stats = worker.run_job(job.pk)
            moved = time.perf_counter() - started
            assert stats.verified == count and stats.erased == count // PER_TICKET + bool(count % PER_TICKET), stats
        finally:
            src.stop()
            dst.stop()
    mb = count * size / 1e6
    return {"objects": count, "size": size, "concurrency": concurrency,
            "move": {"seconds": moved, "objects_per_s": count / moved, "mb_per_s": mb / moved},
            "boto3": {"seconds": plain, "objects_per_s": count / plain, "mb_per_s": mb / plain}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--size", type=int, default=256 * 1024, help="bytes per object")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--big-mb", type=int, default=100, help="the memory run's object, in MiB")
    parser.add_argument("--memory", metavar="MOTO_URL", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    setup_test_environment()
    test_db = connection.creation.create_test_db(verbosity=0)
    try:
        if args.memory:
            return memory_child(args.memory, args.big_mb, args.concurrency)
        moto, moto_url = support.start_moto()
        try:
            result = throughput(moto_url, args.objects, args.size, args.concurrency)
            child = subprocess.run([sys.executable, __file__, "--memory", moto_url, "--big-mb", str(args.big_mb),
                                    "--concurrency", str(args.concurrency)], capture_output=True, text=True,
                                   cwd=ROOT, env={**os.environ, **support.AWS_ENV})
            if child.returncode != 0:
                print(child.stdout + child.stderr, file=sys.stderr)
                return 1
            memory = json.loads(child.stdout.strip().splitlines()[-1])
        finally:
            support.stop_process(moto)
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
    move, plain = result["move"], result["boto3"]
    print(f"{args.objects} objects of {args.size // 1024} KiB, {args.concurrency} at once, moto S3 on loopback; "
          f"cores on this machine: {os.cpu_count()}")
    print(f"{'move (2 gatekeepers, verify, erase)':<40} {move['objects_per_s']:>8.1f} objects/s {move['mb_per_s']:>8.1f} "
          f"MB/s  ({move['seconds']:.2f}s)")
    print(f"{'boto3 get+put (no verify, no erase)':<40} {plain['objects_per_s']:>8.1f} objects/s "
          f"{plain['mb_per_s']:>8.1f} MB/s  ({plain['seconds']:.2f}s)")
    print(f"{'move / boto3':<40} {move['objects_per_s'] / plain['objects_per_s']:>8.1%}")
    print(f"worker memory, one {args.big_mb} MiB object: {memory['growth'] / 1e6:.1f} MB growth "
          f"(resident {memory['before'] / 1e6:.0f} MB before, peak {memory['peak'] / 1e6:.0f} MB; "
          f"moved in {memory['seconds']:.1f}s)")
    if args.json:
        print(json.dumps({**result, "memory": memory}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
