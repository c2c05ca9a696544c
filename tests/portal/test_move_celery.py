"""A move run the production way: queued on a real Redis server, carried by a real
`celery -A portal worker` process through two real gatekeeper processes (each in
front of its own versioned moto bucket), the receipts in the vendor's bucket.

The worker is killed (SIGKILL) in the middle of a large object's transfer; a new
worker takes the redelivered task up (acks_late), the dead run's lease runs out,
and the job finishes: every object verified and erased at the source, and each
written once at the destination (one version each, checked against moto)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time

import boto3
import pytest

from tests import support
from tests.celery_stack import redis_url, start_worker, wait_until  # noqa: F401  (redis_url: a fixture)
from tests.portal.move_stack import start_gatekeeper

BIG = 12 * 1024 * 1024
RATE = 4 * 1024 * 1024  # per object: the big one takes 3 s, long enough to be killed in

SETUP = """
import json
from django.conf import settings
from django.contrib.auth import get_user_model
from portal.tickets.services import complete_ticket, create_ticket
from tenants.models import Membership, Tenant
from tenants.services import create_tenant
from tenants.signing import trusted_public_keys
from tenants.tokens import issue_agent_token
tenant = create_tenant(slug="alpha", name="Alpha Ltd", status=Tenant.Status.ACTIVE, region="eu-west-1",
    bucket="alpha-reports", gatekeeper_url="https://gk.alpha.example", gatekeeper_id="gk-alpha",
    storage_origin="https://alpha-reports.s3.eu-west-1.amazonaws.com")
alice = get_user_model().objects.create_user("alice", password="x", first_name="Alice")
Membership.objects.create(user=alice, tenant=tenant, role=Membership.Role.ADMIN)
agent, _ = issue_agent_token(tenant, "help button")
tickets = []
for manifest in json.loads('''{manifests}'''):
    ticket = create_ticket(agent, manifest)
    complete_ticket(ticket)
    tickets.append(ticket.prefix)
print(json.dumps({{"keys": {{k.kid: k.public_key for k in trusted_public_keys(tenant)}}, "tickets": tickets,
                  "issuer": settings.DUALKEY_PORTAL_ORIGIN}}))
"""

PLAN = """
from django.utils import timezone
from portal.moves import services, tasks
from portal.tickets.models import Ticket
from tenants.locations import active_location
from tenants.models import StorageLocation, Tenant
tenant = Tenant.objects.get(slug="alpha")
source = active_location(tenant)
StorageLocation.objects.filter(pk=source.pk).update(gatekeeper_url="{src}", gatekeeper_id="gk-alpha",
    storage_origin="{moto}", reported_bucket="{src_bucket}", state=StorageLocation.State.DRAINING)
source.refresh_from_db()
now = timezone.now()
destination = StorageLocation.objects.create(tenant=tenant, kind=Tenant.DataLocation.CUSTOMER,
    gatekeeper_url="{dst}", gatekeeper_id="gk-alpha-2", storage_origin="{moto}", reported_bucket="{dst_bucket}",
    state=StorageLocation.State.ACTIVE, state_changed_at=now, created_at=now)
Ticket.objects.filter(tenant=tenant).update(location=source)
job = services.plan(tenant, source, destination, None, concurrency=2).job
tasks.start(job)
print(job.id)
"""

STATE = """
import json
from portal.moves.models import MoveJob, MoveObject
job = MoveJob.objects.get()
print(json.dumps({"state": job.state, "subject": job.subject, "objects": [
    {"key": o.key, "state": o.state, "attempts": o.attempts, "leased_by": o.leased_by}
    for o in MoveObject.objects.filter(move__job=job)],
    "receipts": list(job.tickets.values_list("receipt_name", flat=True))}))
"""


def manage(env, *args) -> str:
    result = subprocess.run([support.PYTHON, "manage.py", *args], cwd=support.ROOT, capture_output=True, text=True,
                            env={**os.environ, **support.AWS_ENV, **env}, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def state(env) -> dict:
    return json.loads(manage(env, "shell", "-c", STATE).strip().splitlines()[-1])


@pytest.fixture
def portal_env(tmp_path, redis_url, moto_url):  # noqa: F811
    receipts = f"receipts-{os.getpid()}-{int(time.time() * 1000) % 10**8}"
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").create_bucket(Bucket=receipts)
    env = {"DUALKEY_DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
           "DUALKEY_CELERY_BROKER_URL": redis_url, "DUALKEY_CELERY_EAGER": "0", "DUALKEY_EMAIL_URL": "console:",
           "DUALKEY_CELERY_VISIBILITY_TIMEOUT": "3", "DUALKEY_MOVE_LEASE_SECONDS": "3",
           "DUALKEY_MOVE_MAX_BYTES_PER_SECOND": str(RATE), "DUALKEY_MOVE_RETRY_SECONDS": "0.2",
           "DUALKEY_ARTIFACTS_ENDPOINT_URL": moto_url, "DUALKEY_RECEIPTS_BUCKET": receipts}
    manage(env, "migrate", "--noinput", "-v", "0")
    env["_receipts"] = receipts
    return env


def test_a_worker_killed_mid_object_is_redelivered_and_the_move_finishes_copying_nothing_twice(
        tmp_path, portal_env, moto_url):
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    big, small = os.urandom(BIG), [os.urandom(1000 + i) for i in range(3)]
    manifests = [[{"name": "dump.bin", "size": BIG, "content_type": "application/octet-stream",
                   "sha256": hashlib.sha256(big).hexdigest()}],
                 [{"name": f"log{i}.txt", "size": len(d), "content_type": "text/plain",
                   "sha256": hashlib.sha256(d).hexdigest()} for i, d in enumerate(small)]]
    env = {k: v for k, v in portal_env.items() if not k.startswith("_")}
    seeded = json.loads(manage(env, "shell", "-c", SETUP.format(manifests=json.dumps(manifests))).splitlines()[-1])
    src = start_gatekeeper(moto_url, tmp_path / "src", "gk-alpha", seeded["keys"], issuer=seeded["issuer"])
    dst = start_gatekeeper(moto_url, tmp_path / "dst", "gk-alpha-2", seeded["keys"], issuer=seeded["issuer"])
    first_prefix, second_prefix = seeded["tickets"]
    s3.put_object(Bucket=src.bucket, Key=first_prefix + "dump.bin", Body=big)
    for i, data in enumerate(small):
        s3.put_object(Bucket=src.bucket, Key=second_prefix + f"log{i}.txt", Body=data)
    workers = []
    try:
        workers.append(start_worker(env, tmp_path / "worker-1.log"))
        manage(env, "shell", "-c", PLAN.format(src=src.url, dst=dst.url, moto=moto_url,
                                                  src_bucket=src.bucket, dst_bucket=dst.bucket))
        wait_until(lambda: "copying " + first_prefix + "dump.bin" in workers[0].log(), timeout=60,
                   what="the worker starts on the big object")
        time.sleep(1.0)  # a third of the way through it
        workers[0].proc.send_signal(signal.SIGKILL)
        workers[0].proc.wait(timeout=10)
        killed = time.monotonic()
        halfway = state(env)
        dump = next(o for o in halfway["objects"] if o["key"].endswith("dump.bin"))
        assert dump["state"] == "pending" and dump["attempts"] == 1 and dump["leased_by"], halfway
        assert halfway["state"] == "running"
        assert s3.list_object_versions(Bucket=dst.bucket, Prefix=first_prefix).get("Versions", []) == []

        # kombu hands an unacknowledged task out again when a worker starts polling (and
        # every 100 s after), once it is older than the visibility timeout (3 s here).
        time.sleep(max(0.0, killed + 3.5 - time.monotonic()))
        workers.append(start_worker(env, tmp_path / "worker-2.log"))
        try:  # (kombu's next check, should the first miss it, is 100 s later)
            final = wait_until(lambda: (lambda s: s if s["state"] == "finished" else None)(state(env)),
                               timeout=240, interval=1.0, what="the move finishes on the second worker")
        except AssertionError as late:
            raise AssertionError(f"{late}: {state(env)}\n--- worker 1:\n{workers[0].log()[-3000:]}"
                                 f"\n--- worker 2:\n{workers[1].log()[-3000:]}") from None
    finally:
        for worker in workers:
            worker.stop()
        src.stop()
        dst.stop()
    assert {o["state"] for o in final["objects"]} == {"source_erased"}, final
    dump = next(o for o in final["objects"] if o["key"].endswith("dump.bin"))
    assert dump["attempts"] == 2  # taken again after the kill, once
    assert "copying " + first_prefix + "dump.bin" in workers[1].log()
    # Each object written once at the destination, with its bytes; nothing left at the source.
    versions = s3.list_object_versions(Bucket=dst.bucket, Prefix="tickets/").get("Versions", [])
    assert sorted(v["Key"] for v in versions) == sorted(o["key"] for o in final["objects"])
    assert s3.get_object(Bucket=dst.bucket, Key=first_prefix + "dump.bin")["Body"].read() == big
    page = s3.list_object_versions(Bucket=src.bucket, Prefix="tickets/")
    assert page.get("Versions", []) == [] and page.get("DeleteMarkers", []) == []
    # Every write at the destination in its audit log under the job's subject.
    puts = [r for r in dst.audit_rows() if r["op"] == "put" and r["outcome"] == "allow"]
    assert {r["sub"] for r in dst.audit_rows()} == {final["subject"]}
    # Each small object's put signed once; the big one's once or twice (the killed run may
    # have died before or after its put was signed): written once all the same (above).
    signed = [r["key"] for r in puts]
    assert {key: signed.count(key) for key in signed if not key.endswith("dump.bin")} == {
        o["key"]: 1 for o in final["objects"] if not o["key"].endswith("dump.bin")}
    assert signed.count(first_prefix + "dump.bin") in (1, 2), signed
    # The receipts, one per ticket, in the vendor's bucket.
    for name in final["receipts"]:
        receipt = json.loads(s3.get_object(Bucket=portal_env["_receipts"], Key=name)["Body"].read())
        assert receipt["erased_by"]["subject"] == final["subject"]
        # Every moved key is accounted for: erased by this answer (its versions listed), or by
        # the killed run before it could record so (`erased_earlier`).
        listed = {o["key"] for o in receipt["objects"] if o["versions"]}
        moved = {o["key"] for o in final["objects"] if o["key"].startswith(receipt["ticket"]["prefix"])}
        assert moved and listed | set(receipt["erased_earlier"]) == moved, receipt
        assert receipt["versions"] == sum(len(o["versions"]) for o in receipt["objects"])
