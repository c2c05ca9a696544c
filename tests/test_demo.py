"""The README's run command: `make demo` runs scripts/demo.py. Its --check mode sets
everything up on free ports, logs in, verifies the demo tickets and every
gatekeeper's health, then stops."""

import os
import random
import socket
import subprocess

from tests import support


def free_run(count: int) -> int:
    """The first of `count` consecutive free ports, outside the kernel's ephemeral
    range (32768+) where every other test's free_port() picks: no race with them."""
    while True:
        base = random.randrange(20000, 30000)
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue


def test_the_demo_comes_up_with_tenants_users_and_tickets(tmp_path):
    base = free_run(4)  # the portal, storage and two gatekeepers
    env = {**os.environ, "DUALKEY_DEMO_PORT": str(base + 3),
           "DUALKEY_DEMO_SERVICE_PORT": str(base),
           "DUALKEY_DEMO_DIR": str(tmp_path / "demo")}
    env.pop("DATABASE_URL", None)
    result = subprocess.run([support.PYTHON, "scripts/demo.py", "--check"], cwd=support.ROOT, env=env,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Dualkey is running: http://127.0.0.1:" in result.stdout
    assert "alice (admin), bob (staff)" in result.stdout and "dualkey-demo" in result.stdout
    assert "check: ok" in result.stdout
    # A real Celery worker on kombu's filesystem transport: no Redis server needed.
    assert "check: the worker ran task" in result.stdout and "from the filesystem broker" in result.stdout
    # How to try an invitation, and where its mail lands (the check followed it there).
    assert "Try an invitation: log in as alice" in result.stdout
    assert f"The portal's mail lands in {(tmp_path / 'demo' / 'mail').resolve()}/" in result.stdout
    assert "its mail in" in result.stdout and ": yes" in result.stdout
    # The demo tickets went through each customer's pinned gatekeeper, from an
    # agent configuration written as a customer's IT would (docs/agent.md).
    acme = (tmp_path / "demo" / "agent-acme.toml").read_text()
    assert f'gatekeeper_url = "http://127.0.0.1:{base + 1}"' in acme and 'gatekeeper_id = "gk-acme"' in acme
    assert f"submit --config {tmp_path / 'demo' / 'agent-acme.toml'}" in result.stdout
