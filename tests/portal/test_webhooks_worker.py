"""Webhooks delivered the production way: a ticket created and completed by a
portal process, queued on a real Redis server, delivered by a real
`celery -A portal worker` process to a real receiver process that verifies the
signature (tests/webhook_receiver.py) and fails each delivery's first two
attempts; the worker retries with backoff and the admin's delivery log shows
every attempt."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests import support
from tests.celery_stack import redis_url, start_worker, wait_until  # noqa: F401  (redis_url: a fixture)

SETUP = """
from tenants.models import Membership, Tenant
from tenants.services import create_tenant
from tenants.tokens import issue_agent_token
from django.contrib.auth import get_user_model
from portal.webhooks.services import add_endpoint
tenant = create_tenant(slug="acme", name="Acme", status=Tenant.Status.ACTIVE, region="eu-west-1",
    bucket="acme-reports", gatekeeper_url="https://gk.acme.example", gatekeeper_id="gk-acme",
    storage_origin="https://acme-reports.s3.eu-west-1.amazonaws.com")
alice = get_user_model().objects.create_user("alice", password="x")
Membership.objects.create(user=alice, tenant=tenant, role=Membership.Role.ADMIN)
endpoint, secret = add_endpoint(tenant, "{url}", "PSA", alice)
print(secret)
"""

SUBMIT = """
from portal.tickets.services import complete_ticket, create_ticket
from tenants.models import Tenant
from tenants.tokens import issue_agent_token
agent, _ = issue_agent_token(Tenant.objects.get(slug="acme"), "help button")
ticket = create_ticket(agent, [{"name": "crash.dmp", "size": 9, "content_type": "application/octet-stream",
                                 "sha256": "0" * 64}])
complete_ticket(ticket)
print(ticket.id)
"""

LOG_PAGE = """
from django.contrib.auth import get_user_model
from django.test import Client
client = Client(HTTP_HOST="127.0.0.1")
client.force_login(get_user_model().objects.get(username="alice"))
print(client.get("/settings/webhooks/").content.decode())
"""


@pytest.fixture
def portal_env(tmp_path, redis_url):  # noqa: F811
    env = {"DUALKEY_DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
           "DUALKEY_CELERY_BROKER_URL": redis_url, "DUALKEY_CELERY_EAGER": "0",
           "DUALKEY_WEBHOOK_RETRY_SECONDS": "1", "DUALKEY_WEBHOOK_MAX_ATTEMPTS": "4",
           "DUALKEY_EMAIL_URL": "console:"}
    manage(env, "migrate", "--noinput", "-v", "0")
    return env


def manage(env, *args) -> str:
    result = subprocess.run([support.PYTHON, "manage.py", *args], cwd=support.ROOT, capture_output=True, text=True,
                            env={**support.os.environ, **env}, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_worker_delivers_signed_events_and_retries_a_failing_receiver(tmp_path, portal_env):
    port = support.free_port()
    secret = manage(portal_env, "shell", "-c", SETUP.format(url=f"http://127.0.0.1:{port}/dualkey")).split()[-1]
    received = tmp_path / "received.jsonl"
    receiver = support.start_process([support.PYTHON, "tests/webhook_receiver.py", str(port), secret, str(received),
                                      "2"], f"http://127.0.0.1:{port}/")
    worker = start_worker(portal_env, tmp_path / "worker.log")
    try:
        ticket_id = manage(portal_env, "shell", "-c", SUBMIT).split()[-1]

        def delivered():
            lines = [json.loads(line) for line in received.read_text().splitlines()] if received.exists() else []
            return lines if sum(line["answered"] == 204 for line in lines) == 2 else None

        lines = wait_until(delivered, timeout=60, what="both events delivered")
    finally:
        worker.stop()
        support.stop_process(receiver)
    assert all(line["verified"] for line in lines), lines
    by_event = {}
    for line in lines:
        by_event.setdefault(line["event"], []).append(line["answered"])
    assert by_event == {"ticket.created": [500, 500, 204], "ticket.completed": [500, 500, 204]}
    created = next(line["body"] for line in lines if line["event"] == "ticket.created")
    assert created["ticket"]["id"] == ticket_id and created["ticket"]["url"].endswith(f"/tickets/{ticket_id}/")
    assert "crash.dmp" not in json.dumps(lines)  # the manifest's names are not sent either
    assert "retry: Retry in 1s" in worker.log() and "retry: Retry in 2s" in worker.log()
    # The admin's delivery log: three attempts each, two HTTP 500s then the 204, and no secret.
    page = manage(portal_env, "shell", "-c", LOG_PAGE)
    assert page.count("HTTP 500") == 4 and page.count("HTTP 204") == 2
    assert page.count('data-outcome="delivered"') == 2
    assert secret not in page and secret not in worker.log()
