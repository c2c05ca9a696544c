"""The Lambda handler's cold start: a new Python process, to its first signed answer.

Each run is a fresh process that imports gatekeeper.lambda_handler and hands it a
function-URL event for POST /v1/sign with one `get` op, configured the way the
AWS deployment is (GATEKEEPER_* variables, the DynamoDB audit store, here on
moto's server): what a new Lambda container does for its first request, less
what Lambda itself adds. The parent times from starting the process to reading
the answer (interpreter start-up included); the child reports its import and
first-request times. The same runs, interleaved, on an earlier commit's code (a
temporary git worktree, as bench/compare.py does) give the baseline of the same run.

    .venv/bin/python bench/bench_cold_start.py [--runs 15] [--rev HEAD~1 | --no-baseline]

Target: median <= 200 ms on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import support  # noqa: E402  (moto and process helpers)

from gatekeeper_client.grants import SigningKey, mint_grant, private_key_from_seed  # noqa: E402

KEY = SigningKey("k1", private_key_from_seed(bytes(range(32))))
ISSUER, GK_ID, BUCKET, TABLE = "https://portal.bench", "gk-cold", "cold-start-reports", "cold-start-audit"
TARGET_MS = 200

# What runs in each fresh process: as little as possible besides the handler itself.
CHILD = """
import time
started = time.perf_counter()
import json, os
from gatekeeper.lambda_handler import handler
imported = time.perf_counter()
answer = handler(json.loads(os.environ["BENCH_EVENT"]))
answered = time.perf_counter()
results = json.loads(answer["body"]).get("results") or [{}]
print(json.dumps({"status": answer["statusCode"], "signed": results[0].get("url", "").startswith("http"),
                  "import": imported - started, "first": answered - imported}), flush=True)
os._exit(0)  # the answer is out: interpreter teardown is not part of a cold start
"""


def gatekeeper_env(moto_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEKEEPER_", "PYTHON"))}
    return {**env, **support.AWS_ENV,
            "GATEKEEPER_GATEKEEPER_ID": GK_ID, "GATEKEEPER_ISSUER": ISSUER,
            "GATEKEEPER_ALLOWED_ORIGINS": ISSUER, "GATEKEEPER_VENDOR_KEYS": f"{KEY.kid}:{KEY.public_b64}",
            "GATEKEEPER_STORAGE_BUCKET": BUCKET, "GATEKEEPER_STORAGE_REGION": "us-east-1",
            "GATEKEEPER_STORAGE_ENDPOINT_URL": moto_url, "GATEKEEPER_AUDIT_URL": f"dynamodb://{TABLE}"}


def sign_event() -> str:
    grant = mint_grant(KEY, issuer=ISSUER, audience=GK_ID, subject="user:1", prefix="tickets/1/", ops=["get"])
    return json.dumps({
        "version": "2.0", "rawPath": "/v1/sign",
        "headers": {"authorization": f"Bearer {grant}", "content-type": "application/json", "origin": ISSUER},
        "requestContext": {"http": {"method": "POST", "path": "/v1/sign", "sourceIp": "203.0.113.9"},
                           "stage": "$default"},
        "body": json.dumps({"ops": [{"op": "get", "key": "tickets/1/report.json"}]}), "isBase64Encoded": False,
    })


def cold_start(tree: Path, env: dict[str, str]) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD], cwd=tree, stdout=subprocess.PIPE,
                            env={**env, "BENCH_EVENT": sign_event()})
    line = proc.stdout.readline()
    total = time.perf_counter() - started
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    result = json.loads(line)
    if result["status"] != 200 or not result["signed"]:
        sys.exit(f"no signed answer from {tree}: {result}")
    # CPU time (user + system) too: on a shared machine the wall time also counts the
    # other processes' turns, the CPU time only this one's work.
    return {**result, "total": total, "cpu": usage.ru_utime + usage.ru_stime}


def median_ms(runs: list[dict], what: str) -> float:
    return statistics.median(run[what] for run in runs) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--rev", default="HEAD~1", help="the baseline's commit")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    moto, moto_url = support.start_moto()
    base = None
    try:
        env = gatekeeper_env(moto_url)
        import boto3  # the bench's own setup; not in the measured processes

        boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing-secret").create_bucket(Bucket=BUCKET)
        subprocess.run([sys.executable, "-m", "gatekeeper", "init-audit"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        trees = {"this tree": ROOT}
        if not args.no_baseline:
            base = Path(tempfile.mkdtemp(prefix="dualkey-cold-base-"))
            subprocess.run(["git", "worktree", "add", "--detach", str(base), args.rev], cwd=ROOT, check=True,
                           capture_output=True)
            trees = {f"at {args.rev}": base, **trees}
        for tree in trees.values():
            cold_start(tree, env)  # warm the page cache: every measured run finds the files in memory
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for _ in range(args.runs):
            for name, tree in trees.items():  # interleaved: load on the machine hits both alike
                runs[name].append(cold_start(tree, env))
        print(f"Lambda cold start, new process -> first signed answer (POST /v1/sign, one get, "
              f"DynamoDB audit on moto), median of {args.runs} fresh processes:")
        for name, samples in runs.items():
            print(f"  {name:<16} total {median_ms(samples, 'total'):6.1f} ms  "
                  f"(import {median_ms(samples, 'import'):6.1f} ms, first request {median_ms(samples, 'first'):6.1f} ms)"
                  f"  min {min(s['total'] for s in samples) * 1000:6.1f} ms  CPU {median_ms(samples, 'cpu'):6.1f} ms")
        ours = median_ms(runs["this tree"], "total")
        if len(runs) == 2:
            before = runs[f"at {args.rev}"]
            print(f"  this tree / {args.rev}: total x{ours / median_ms(before, 'total'):.2f}, "
                  f"CPU x{median_ms(runs['this tree'], 'cpu') / median_ms(before, 'cpu'):.2f}")
        print(f"  target <= {TARGET_MS} ms: {'met' if ours <= TARGET_MS else 'NOT met'}")
    finally:
        if base is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, capture_output=True)
        support.stop_process(moto)
    return 0


if __name__ == "__main__":
    sys.exit(main())
