"""POST /v1/sign throughput per core, in-process and over loopback HTTP, with the
audit log on (SQLite, WAL), and where the time goes.

    .venv/bin/python bench/bench_sign.py [--seconds 3]

Targets (2-core machine, median): one get op in-process >= 2,000 requests/s per
core; a batch of 20 get ops <= 3 ms in-process; over loopback HTTP with waitress
>= 800 requests/s per core. Baselines measured in the same run: botocore's own
presign with a reused client, and PyJWT's decode. A vendor support get carrying
the customer's approval (X-Approval, one ES256 JWS; docs/protocol.md §1a) is
measured beside the plain get, and the approval's verify cost beside the grant's;
so is a get with [identity] on (X-Identity-Token, an RS256 ID token of the
customer's IdP; docs/protocol.md §1b: target >= 2,000 requests/s per core too),
and the ID token's verify cost beside the grant's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import support  # noqa: E402  (moto and process helpers)

for _k, _v in support.AWS_ENV.items():
    os.environ.setdefault(_k, _v)

import boto3  # noqa: E402
import jwt  # noqa: E402
from botocore.config import Config as BotoConfig  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

from gatekeeper import config as config_module  # noqa: E402
from gatekeeper.app import Gatekeeper, Request  # noqa: E402
from gatekeeper.cli import approval_claims, public_jwk, sign  # noqa: E402
from gatekeeper_client.grants import SigningKey, mint_grant, private_key_from_seed  # noqa: E402

KEY = SigningKey("k1", private_key_from_seed(bytes(range(32))))
ISSUER, GK_ID = "https://portal.bench", "gk-bench"
APPROVER = ec.generate_private_key(ec.SECP256R1())
IDP_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # RS256: what most IdPs sign with
IDP, IDP_CLIENT = "https://idp.bench", "dualkey-pages"


def identity_env(workdir: str) -> dict:
    """[identity] on, its JWKS a file (no IdP to reach), and an ID token for user:1's person."""
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(IDP_KEY.public_key())), "kid": "idp-1", "use": "sig"}
    Path(f"{workdir}/jwks.json").write_text(json.dumps({"keys": [jwk]}))
    return {"GATEKEEPER_IDENTITY_ISSUER": IDP, "GATEKEEPER_IDENTITY_AUDIENCE": IDP_CLIENT,
            "GATEKEEPER_IDENTITY_JWKS_FILE": f"{workdir}/jwks.json"}


def id_token() -> str:
    now = int(time.time())
    return jwt.encode({"iss": IDP, "aud": IDP_CLIENT, "sub": "idp-1", "email": "one@bench.example",
                       "email_verified": True, "iat": now, "exp": now + 3600, "auth_time": now}, IDP_KEY,
                      algorithm="RS256", headers={"kid": "idp-1"})


def timed(fn, seconds: float) -> list[float]:
    """Run fn repeatedly for about `seconds`; return per-call durations."""
    samples = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def summary(samples: list[float]) -> str:
    med = statistics.median(samples)
    p95 = sorted(samples)[int(len(samples) * 0.95)]
    return f"median {med * 1e6:8.1f} µs  p95 {p95 * 1e6:8.1f} µs  ({1 / med:8.0f}/s, n={len(samples)})"


def env_for(moto_url: str, bucket: str, audit_path: str) -> dict:
    return {
        "GATEKEEPER_GATEKEEPER_ID": GK_ID, "GATEKEEPER_ISSUER": ISSUER,
        "GATEKEEPER_VENDOR_KEYS": f"k1:{KEY.public_b64}", "GATEKEEPER_STORAGE_BUCKET": bucket,
        "GATEKEEPER_STORAGE_REGION": "us-east-1", "GATEKEEPER_STORAGE_ENDPOINT_URL": moto_url,
        "GATEKEEPER_AUDIT_URL": f"sqlite:///{audit_path}", "GATEKEEPER_MAX_GRANT_LIFETIME": "3600",
        "GATEKEEPER_APPROVERS_KEYS": json.dumps({"alice": public_jwk(APPROVER.public_key())}),
    }


def body(n: int) -> bytes:
    return json.dumps({"ops": [{"op": "get", "key": f"tickets/42/file-{i}.png"} for i in range(n)]}).encode()


def in_process(moto_url: str, bucket: str, workdir: str, seconds: float) -> dict:
    config = config_module.load(None, env=env_for(moto_url, bucket, f"{workdir}/inproc.db"))
    gk = Gatekeeper(config)
    grant = mint_grant(KEY, issuer=ISSUER, audience=GK_ID, subject="user:1", prefix="tickets/42/",
                       ops=["get", "list"], lifetime=3600)
    headers = {"authorization": f"Bearer {grant}", "user-agent": "bench", "origin": ""}
    figures = {}
    print("\n== in-process Gatekeeper.handle (one thread = one core), audit on ==")
    for n in (1, 20):
        request = Request("POST", "/v1/sign", headers, body(n), "127.0.0.1")
        assert gk.handle(request).status == 200
        samples = timed(lambda: gk.handle(request), seconds)
        figures[n] = statistics.median(samples)
        print(f"batch of {n:2d} get ops: {summary(samples)}")
    support_grant = mint_grant(KEY, issuer=ISSUER, audience=GK_ID, subject="support:9", prefix="tickets/42/",
                               ops=["get", "list"], lifetime=3600)
    approval = sign(approval_claims({"approval_id": "apr-bench", "gatekeeper_id": GK_ID, "subject": "support:9",
                                     "prefix": "tickets/42/", "ops": ["get", "list"], "duration": 86400},
                                    int(time.time()) - 60), APPROVER, "alice")
    support_request = Request("POST", "/v1/sign", {**headers, "authorization": f"Bearer {support_grant}",
                                                   "x-approval": approval}, body(1), "127.0.0.1")
    assert gk.handle(support_request).status == 200
    samples = timed(lambda: gk.handle(support_request), seconds)
    figures["support"] = statistics.median(samples)
    print(f"support get + approval: {summary(samples)}  ({figures['support'] / figures[1]:.2f}x the plain get)")

    idp_gk = Gatekeeper(config_module.load(None, env={**env_for(moto_url, bucket, f"{workdir}/identity.db"),
                                                      **identity_env(workdir)}))
    person_grant = mint_grant(KEY, issuer=ISSUER, audience=GK_ID, subject="user:1", prefix="tickets/42/",
                              ops=["get", "list"], lifetime=3600, identity="one@bench.example")
    token = id_token()
    identity_request = Request("POST", "/v1/sign", {**headers, "authorization": f"Bearer {person_grant}",
                                                    "x-identity-token": token}, body(1), "127.0.0.1")
    assert idp_gk.handle(identity_request).status == 200
    samples = timed(lambda: idp_gk.handle(identity_request), seconds)
    figures["identity"] = statistics.median(samples)
    print(f"get + ID token:       {summary(samples)}  ({figures['identity'] / figures[1]:.2f}x the plain get)")

    print("\n== where the time goes (one request of one get op) ==")
    now = time.time()
    client = gk.policy.identify("127.0.0.1", None, None)
    from gatekeeper.audit import AuditRecord
    record = AuditRecord(ts=now, request_id="r", client_ip="127.0.0.1", op="get", key="tickets/42/a",
                         outcome="allow", status=200, sub="user:1", jti="j", kid="k1")
    verified_support_grant = gk.verifier.verify(support_grant, now)
    parts = {
        "verify grant (PyJWT + checks)": lambda: gk.verifier.verify(grant, now),
        "verify approval (ES256 + checks)": lambda: gk.approvals.verify(approval, verified_support_grant, now),
        # The first request of a page verifies its token's signature; the page's next ones
        # find it remembered (identity.py's cache, emptied here to measure the first).
        "verify ID token, first (RS256)": lambda: (idp_gk.identity._verified.clear(), idp_gk.identity.verify(token, now)),
        "verify ID token, again (cached)": lambda: idp_gk.identity.verify(token, now),
        "ACL (identify + check)": lambda: gk.policy.check(gk.policy.identify("127.0.0.1", None, None), False),
        "presign GET (ours)": lambda: gk.storage.presign_get("tickets/42/a.png", 60, now),
        "audit write, 1 record": lambda: gk.audit.write([record]),
        "audit write, 20 records": lambda: gk.audit.write([record] * 20),
        "parse body, 20 ops": lambda: json.loads(body(20)),
    }
    for name, fn in parts.items():
        print(f"{name:32s} {summary(timed(fn, seconds / 3))}")
    del client

    print("\n== baselines, same run ==")
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                      config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"}))
    boto = timed(lambda: s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "tickets/42/a.png"}, ExpiresIn=60), seconds / 3)
    ours = timed(lambda: gk.storage.presign_get("tickets/42/a.png", 60, now), seconds / 3)
    print(f"{'botocore presign (reused client)':32s} {summary(boto)}")
    print(f"{'  ours / botocore':32s} {statistics.median(boto) / statistics.median(ours):.1f}x faster")
    decode = timed(lambda: jwt.decode(grant, KEY.private_key.public_key(), algorithms=["EdDSA"],
                                      audience=GK_ID, issuer=ISSUER), seconds / 3)
    print(f"{'PyJWT decode alone':32s} {summary(decode)}")
    return figures


def _load(url_host: str, port: int, payload: bytes, headers: dict, seconds: float, out) -> None:
    conn = http.client.HTTPConnection(url_host, port)
    count = errors = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        conn.request("POST", "/v1/sign", payload, headers)
        response = conn.getresponse()
        response.read()
        count += 1
        errors += response.status != 200
    out.put((count, errors))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def over_http(moto_url: str, bucket: str, workdir: str, seconds: float, clients: int) -> dict:
    port = support.free_port()
    env = env_for(moto_url, bucket, f"{workdir}/http.db")
    proc = support.start_process(
        [support.PYTHON, "-m", "gatekeeper", "serve", "--port", str(port), "--threads", "4"],
        f"http://127.0.0.1:{port}/v1/health", env=env, log_path=Path(workdir) / "gk.log")
    grant = mint_grant(KEY, issuer=ISSUER, audience=GK_ID, subject="user:1", prefix="tickets/42/",
                       ops=["get"], lifetime=3600)
    headers = {"Authorization": f"Bearer {grant}", "Content-Type": "application/json"}
    figures = {}
    print(f"\n== over loopback HTTP (waitress, {clients} keep-alive client processes) ==")
    try:
        for n in (1, 20):
            payload = body(n)
            queue = multiprocessing.Queue()
            workers = [multiprocessing.Process(target=_load, args=("127.0.0.1", port, payload, headers, seconds, queue))
                       for _ in range(clients)]
            cpu0, wall0 = cpu_seconds(proc.pid), time.perf_counter()
            for w in workers:
                w.start()
            results = [queue.get() for _ in workers]
            for w in workers:
                w.join()
            cpu, wall = cpu_seconds(proc.pid) - cpu0, time.perf_counter() - wall0
            total, errors = sum(r[0] for r in results), sum(r[1] for r in results)
            per_core = total / cpu if cpu else float("nan")
            figures[n] = per_core
            print(f"batch of {n:2d}: {total / wall:7.0f} requests/s wall, server CPU {cpu:5.2f} s "
                  f"-> {per_core:7.0f} requests/s per server core  (errors {errors})")
    finally:
        support.stop_process(proc)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        moto, moto_url = support.start_moto()
        try:
            bucket = "bench-reports"
            boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").create_bucket(Bucket=bucket)
            inproc = in_process(moto_url, bucket, workdir, args.seconds)
            http_figures = over_http(moto_url, bucket, workdir, args.seconds, args.clients)
        finally:
            support.stop_process(moto)
    print("\n== against the targets ==")
    print(f"one get op in-process:   {1 / inproc[1]:7.0f} requests/s per core  (target >= 2000)")
    print(f"support get + approval:  {1 / inproc['support']:7.0f} requests/s per core  (no target of its own)")
    print(f"get with [identity] on:  {1 / inproc['identity']:7.0f} requests/s per core  (target >= 2000)")
    print(f"20 get ops in-process:   {inproc[20] * 1e3:7.2f} ms median          (target <= 3 ms)")
    print(f"one get op over HTTP:    {http_figures[1]:7.0f} requests/s per core  (target >= 800)")


if __name__ == "__main__":
    main()
