"""The agent pin, end to end: a real agent process, the real portal, real gatekeepers.

Globex's IT deployed its agent with a configuration pinning Globex's own
gatekeeper (tests/stack.py writes it: agent-globex.toml). Then the portal turns
against Globex — as a compromised vendor, or support that made itself an admin
and edited the settings, could make it — and names an impostor: a small HTTP
server in this test that answers like a gatekeeper (the same id, a storage
origin of its own) and records every request it gets. The agent must refuse,
say why, and send the impostor nothing; nothing may reach Globex's storage.
Pointed back at the pinned gatekeeper, the same agent uploads, completes, and
Globex's audit log has a put record for every file.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests import support
from tests.stack import PYTHON, ROOT, dualkey_stack  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e
SLUG = "globex"


class Impostor:
    """A fake gatekeeper that would take the uploads if it were asked."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        impostor = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                impostor.requests.append(("GET", self.path))
                self.answer({"status": "ok", "gatekeeper_id": "gk-globex", "protocol": 1,
                             "storage_origin": impostor.url})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                impostor.requests.append(("POST", self.path))
                if self.path == "/v1/sign":
                    ops = json.loads(body)["ops"]
                    return self.answer({"results": [
                        {"op": "put", "key": op["key"], "method": "POST", "url": impostor.url + "/upload",
                         "fields": {"key": op["key"]}, "expires_at": 0} for op in ops]})
                self.send_response(204)
                self.end_headers()

            def answer(self, payload):
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def impostor():
    fake = Impostor()
    yield fake
    fake.close()


def set_portal_gatekeeper(stack, **fields) -> dict:
    """Change what the portal's database says about Globex's gatekeeper (its
    active storage location, through the tenant's mirror); returns the old values."""
    code = (f"import json; from tenants.models import StorageLocation, Tenant; "
            "from tenants.locations import MIRROR, active_location, mirror_from_active; "
            f"t = Tenant.objects.get(slug={SLUG!r}); "
            f"old = {{k: getattr(t, k) for k in {sorted(fields)!r}}}; "
            # The location itself (Tenant.save never writes one), then the tenant's mirror of it:
            # what an edited database would say, past the storage form's refusal.
            f"StorageLocation.objects.filter(pk=active_location(t).pk).update(**{{MIRROR[k]: v for k, v in "
            f"json.loads({json.dumps(json.dumps(fields))}).items()}}); "
            "mirror_from_active(t); "
            "print(json.dumps(old))")
    return json.loads(stack.manage("shell", "-c", code).stdout.strip().splitlines()[-1])


@pytest.fixture
def portal_gatekeeper(dualkey_stack):  # noqa: F811
    """Set the portal's idea of Globex's gatekeeper for one test, then put it back."""
    saved = {}

    def change(**fields):
        saved.update({k: v for k, v in set_portal_gatekeeper(dualkey_stack, **fields).items() if k not in saved})

    yield change
    if saved:
        set_portal_gatekeeper(dualkey_stack, **saved)


def run_agent(stack, tmp_path) -> tuple[subprocess.CompletedProcess, dict[str, bytes]]:
    """The real agent, as Globex deployed it: its configuration file, its token in
    the environment, two files."""
    report = {"schema_version": 1, "submitted_at": "2026-01-01T10:00:00Z", "subject": "pin test",
              "user": {"name": "Pat"}, "message": "pinned", "machine": {"hostname": "h", "os": "o", "os_version": "1"}}
    files = {"report.json": json.dumps(report).encode(), "agent.log": b"pinned\n"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    env = {**os.environ, **support.AWS_ENV, "DUALKEY_AGENT_TOKEN": stack.tenants[SLUG].seeded["agent_token"]}
    env.pop("DUALKEY_AGENT_CONFIG", None)
    result = subprocess.run(
        [PYTHON, "-m", "gatekeeper_client.agent", "submit", "--config", str(stack.tenants[SLUG].agent_config),
         *(str(tmp_path / name) for name in files)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return result, files


def bucket_keys(stack) -> set[str]:
    s3, bucket = stack.s3(), stack.tenants[SLUG].bucket
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


@pytest.mark.parametrize("turned", ["url", "id"])
def test_an_agent_refuses_the_gatekeeper_a_portal_names_instead_of_its_pin(
        dualkey_stack, portal_gatekeeper, impostor, tmp_path, turned):  # noqa: F811
    before_keys, before_audit = bucket_keys(dualkey_stack), len(dualkey_stack.audit_rows(SLUG))
    if turned == "url":
        portal_gatekeeper(gatekeeper_url=impostor.url)       # the same id, another server
    else:
        portal_gatekeeper(gatekeeper_id="gk-globex-shadow")  # the real URL, grants for another gatekeeper

    result, _ = run_agent(dualkey_stack, tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: pin: wrong_gatekeeper: the portal names gatekeeper" in result.stderr
    assert f"not the pinned {dualkey_stack.tenants[SLUG].gatekeeper_url} (id gk-globex)" in result.stderr
    assert "refusing to upload" in result.stderr and "complete" not in result.stdout
    assert dualkey_stack.tenants[SLUG].seeded["agent_token"] not in result.stdout + result.stderr
    assert impostor.requests == []
    assert bucket_keys(dualkey_stack) == before_keys
    assert len(dualkey_stack.audit_rows(SLUG)) == before_audit  # not even the pinned gatekeeper was asked to sign
    # The impostor would have recorded a request, had it been sent one.
    requests.get(impostor.url + "/v1/health", timeout=5)
    assert impostor.requests == [("GET", "/v1/health")]


def test_an_agent_uploads_through_its_pinned_gatekeeper_and_the_customer_audits_it(
        dualkey_stack, impostor, tmp_path):  # noqa: F811
    result, files = run_agent(dualkey_stack, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("ticket ")]
    assert " complete: 3 files under tickets/" in line  # and the summary.json made from report.json
    prefix = line.rsplit(" ", 1)[1]
    ticket_id = line.split("(")[1].split(")")[0]
    assert f"  {dualkey_stack.portal_url}/tickets/{ticket_id}/" in result.stdout.splitlines()
    stored = dualkey_stack.stored_objects(SLUG, prefix)
    summary = json.loads(stored.pop(prefix + "summary.json"))
    assert summary["subject"] == "pin test"
    assert stored == {prefix + name: data for name, data in files.items()}
    puts = [r for r in dualkey_stack.audit_rows(SLUG) if r["op"] == "put" and r["key"].startswith(prefix)]
    assert sorted((r["key"], r["outcome"]) for r in puts) == sorted(
        (prefix + n, "allow") for n in [*files, "summary.json"])
    assert all(r["sub"].startswith("agent:") for r in puts)
    assert impostor.requests == []
