"""Grants minted per second, per core, through the portal's API.

    .venv/bin/python bench/bench_grants.py [--seconds 3]

One process, so one core: "per core" is requests per second of this process's
CPU time (wall-clock rate printed too). Requests go through Django's test client
in-process: URL routing, middleware, session auth, the tenant access function,
key decryption, signing, JSON rendering; no sockets. The raw mint_grant baseline
is measured in the same run, so the ratio shows what the web stack costs.

It uses a throwaway test database: SQLite in memory by default, or a
`test_<name>` database on the server DATABASE_URL names.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from gatekeeper_client.grants import SigningKey, mint_grant  # noqa: E402
from portal.tickets.services import create_ticket  # noqa: E402
from tenants.models import Membership, Tenant  # noqa: E402
from tenants.services import create_tenant  # noqa: E402
from tenants.tokens import issue_agent_token  # noqa: E402

MANIFEST = [{"name": "screenshot.png", "size": 1000, "content_type": "image/png", "sha256": "0" * 64}]


def measure(label: str, seconds: float, call) -> dict:
    """Call repeatedly for about `seconds`; report wall and CPU rates."""
    call()  # warm-up: imports, caches, first queries
    count, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    deadline = wall0 + seconds
    while time.perf_counter() < deadline:
        call()
        count += 1
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    result = {"label": label, "count": count, "per_second": count / wall, "per_core_second": count / cpu}
    print(f"{label:<44} {result['per_second']:>9.0f}/s wall {result['per_core_second']:>9.0f}/s per core"
          f"   ({count} in {wall:.2f}s)")
    return result


def setup_story():
    tenant = create_tenant(slug="bench", name="Bench", status=Tenant.Status.ACTIVE,
                           gatekeeper_url="https://gk.bench.example", gatekeeper_id="gk-bench",
                           storage_origin="https://bench.s3.us-east-1.amazonaws.com")
    user = get_user_model().objects.create_user("bench", first_name="Bench")
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.STAFF)
    agent, token = issue_agent_token(tenant, "bench agent")
    ticket = create_ticket(agent, MANIFEST)
    return user, token, ticket


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    setup_test_environment()
    test_db = connection.creation.create_test_db(verbosity=0)
    try:
        user, token, ticket = setup_story()
        key = SigningKey.generate("bench-raw")

        def raw_mint():
            mint_grant(key, issuer="https://portal.example", audience="gk-bench", subject="user:1",
                       prefix=ticket.prefix, ops=["get", "list"], lifetime=120)

        reader = Client()
        reader.force_login(user)
        grant_url = f"/api/v1/tickets/{ticket.id}/grant"

        def read_grant():
            response = reader.post(grant_url)
            assert response.status_code == 200, response.content

        agent = Client(HTTP_AUTHORIZATION=f"Token {token}")
        body = json.dumps({"files": MANIFEST})

        def create():
            response = agent.post("/api/v1/tickets", body, content_type="application/json")
            assert response.status_code == 201, response.content

        print(f"database: {connection.vendor}; cores on this machine: {os.cpu_count()}; this run uses one")
        results = [
            measure("mint_grant (raw Ed25519 JWT)", args.seconds, raw_mint),
            measure("POST /api/v1/tickets/<id>/grant (read)", args.seconds, read_grant),
            measure("POST /api/v1/tickets (create + put grant)", args.seconds, create),
        ]
        base = results[0]["per_core_second"]
        for result in results[1:]:
            print(f"{result['label']:<44} {result['per_core_second'] / base:>8.1%} of the raw minting rate")
        if args.json:
            print(json.dumps(results, indent=2))
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
