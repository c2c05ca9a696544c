"""`make demo`: the whole system on loopback, on its embedded defaults.

moto's S3 server (the storage of both demo customers), the portal, and two
gatekeepers — one per demo tenant: "acme" (vendor-hosted) and "globex"
(customer-owned, whose ACL denies the address DENIED_ADDRESS) — then demo users
and tickets submitted the real way (agent API, gatekeeper, presigned POSTs).
Prints the URL and the logins, and runs until Ctrl-C.

    python scripts/demo.py [--check]     # --check: set up, verify, stop (used by the tests)

Ports: DUALKEY_DEMO_PORT (portal, default 8000); storage, and the gatekeepers on
the three ports after 9100 (DUALKEY_DEMO_SERVICE_PORT).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import celery_stack, support  # noqa: E402  (process helpers shared with the tests)

DENIED_ADDRESS = "198.51.100.23"
TICKETS_PER_TENANT = {"acme": 4, "globex": 2}


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


def gatekeeper_toml(tenant: dict, issuer: str, portal_origin: str, storage_url: str, audit_path: Path) -> str:
    acl = {"allow": ["0.0.0.0/0", "::/0"], "deny": []}
    if tenant["data_location"] == "customer":
        # The customer's own policy: refuse one named address, believe the local proxy
        # (so the demo can show the refusal with an X-Forwarded-For hop).
        acl = {"allow": ["0.0.0.0/0", "::/0"], "deny": [f"{DENIED_ADDRESS}/32"],
               "trusted_proxies": ["127.0.0.1/32"]}
    sections = {
        "vendor_keys": tenant["vendor_keys"],
        "storage": {"bucket": tenant["bucket"], "region": tenant["region"], "endpoint_url": storage_url,
                    "encryption": "sse-s3"},
        "acl": acl,
        "audit": {"url": f"sqlite:///{Path(audit_path).resolve()}", "retention_days": 180},
    }
    lines = [
        f"gatekeeper_id = {toml_value(tenant['gatekeeper_id'])}",
        f"issuer = {toml_value(issuer)}",
        f"allowed_origins = {toml_value([portal_origin])}",
        "presign_ttl = 60", "max_grant_lifetime = 300", "clock_leeway = 30",
    ]
    for name, body in sections.items():
        lines.append(f"\n[{name}]")
        lines += [f"{json.dumps(k) if name == 'vendor_keys' else k} = {toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def agent_toml(portal_url: str, gatekeeper_url: str, gatekeeper_id: str) -> str:
    """An agent configuration as a customer's IT deploys it (docs/agent.md); the
    token comes from elsewhere (a token file, or DUALKEY_AGENT_TOKEN)."""
    return (f"portal_url = {toml_value(portal_url)}\n"
            "# The customer's own gatekeeper: the agent uploads through it and nowhere else.\n"
            f"gatekeeper_url = {toml_value(gatekeeper_url)}\n"
            f"gatekeeper_id = {toml_value(gatekeeper_id)}\n")


def run(args: list[str], env: dict, capture: bool = False) -> str:
    result = subprocess.run(args, cwd=ROOT, env=env, text=True, capture_output=capture)
    if result.returncode != 0:
        sys.exit(f"demo: {' '.join(args[1:3])} failed:\n{result.stderr if capture else ''}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="set up, verify, then stop")
    args = parser.parse_args()

    portal_port = int(os.environ.get("DUALKEY_DEMO_PORT", "8000"))
    service_port = int(os.environ.get("DUALKEY_DEMO_SERVICE_PORT", "9100"))
    storage_url = f"http://127.0.0.1:{service_port}"
    portal_url = f"http://127.0.0.1:{portal_port}"
    workdir = Path(os.environ.get("DUALKEY_DEMO_DIR", ROOT / "var" / "demo"))
    # Storage lives in moto's memory, so the demo starts from a clean slate every time.
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    os.environ.update(support.AWS_ENV)  # moto's storage accepts any credentials
    # Each demo customer's gatekeeper, as that customer knows it: the portal is told
    # (DUALKEY_DEMO_TENANTS), and so is each customer's agent, in its own configuration.
    gatekeepers = {"acme": ("gk-acme", f"http://127.0.0.1:{service_port + 1}"),
                   "globex": ("gk-globex", f"http://127.0.0.1:{service_port + 2}")}
    agent_configs = {slug: workdir / f"agent-{slug}.toml" for slug in gatekeepers}
    for slug, (gatekeeper_id, gatekeeper_url) in gatekeepers.items():
        agent_configs[slug].write_text(agent_toml(portal_url, gatekeeper_url, gatekeeper_id))
    env = {
        **os.environ, **support.AWS_ENV,
        "DUALKEY_DEBUG": "1",
        "DUALKEY_PORTAL_ORIGIN": portal_url,
        # The vendor's artifact bucket (templates, Lambda zips) in moto, as STORAGES["artifacts"].
        "DUALKEY_ARTIFACTS_ENDPOINT_URL": storage_url,
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{workdir / 'portal.sqlite3'}"),
        # The portal's mail (invitations, password resets, security notices): one file a
        # message in the demo's directory, unless the environment names a server.
        "DUALKEY_EMAIL_URL": os.environ.get("DUALKEY_EMAIL_URL", mail_url(workdir)),
        # Background tasks (webhook deliveries, key purges) go to a real Celery worker
        # through kombu's filesystem transport: a directory of message files, so the
        # demo needs no Redis server. Production uses redis:// (docs/operations.md).
        "DUALKEY_CELERY_BROKER_URL": os.environ.get("DUALKEY_CELERY_BROKER_URL",
                                                    f"filesystem://{(workdir / 'broker').resolve()}"),
        "DUALKEY_DEMO_TENANTS": ";".join(
            f"{slug},{gatekeeper_id},{gatekeeper_url},{slug}-reports,{storage_url}"
            for slug, (gatekeeper_id, gatekeeper_url) in gatekeepers.items()),
    }
    processes: list[subprocess.Popen] = []

    def stop(*_):
        for proc in reversed(processes):
            support.stop_process(proc)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        print(f"starting storage (moto's S3 server) on {storage_url}", flush=True)
        processes.append(support.start_process(
            [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(service_port)],
            storage_url + "/moto-api/", env=env, log_path=workdir / "storage.log"))

        print("preparing the portal database and the demo tenants", flush=True)
        run([python, "manage.py", "migrate", "--noinput", "-v", "0"], env)
        seeded = json.loads(run([python, "manage.py", "seed_demo", "--json"], env, capture=True))
        print(f"starting the task worker (Celery, broker {env['DUALKEY_CELERY_BROKER_URL'].split('://')[0]})",
              flush=True)
        processes.append(celery_stack.start_worker(env, workdir / "worker.log").proc)

        import boto3

        s3 = boto3.client("s3", endpoint_url=storage_url, region_name="us-east-1")
        s3.create_bucket(Bucket="dualkey-artifacts")  # publish_gatekeeper's (DUALKEY_ARTIFACTS_BUCKET)
        s3.create_bucket(Bucket="dualkey-receipts")  # erasure receipts' (DUALKEY_RECEIPTS_BUCKET)
        for tenant in seeded["tenants"]:
            s3.create_bucket(Bucket=tenant["bucket"])
            # As the AWS template has it: erasure must remove every version (docs/operations.md).
            s3.put_bucket_versioning(Bucket=tenant["bucket"], VersioningConfiguration={"Status": "Enabled"})
            # Browsers read objects straight from storage: the bucket allows the portal's origin.
            s3.put_bucket_cors(Bucket=tenant["bucket"], CORSConfiguration={"CORSRules": [{
                "AllowedOrigins": [portal_url], "AllowedMethods": ["GET", "POST"],
                "AllowedHeaders": ["*"], "MaxAgeSeconds": 600}]})
            config_path = workdir / f"{tenant['gatekeeper_id']}.toml"
            config_path.write_text(gatekeeper_toml(
                tenant, seeded["issuer"], portal_url, storage_url, workdir / f"audit-{tenant['slug']}.db"))
            port = tenant["gatekeeper_url"].rsplit(":", 1)[1]
            print(f"starting gatekeeper {tenant['gatekeeper_id']} on {tenant['gatekeeper_url']}", flush=True)
            processes.append(support.start_process(
                [python, "-m", "gatekeeper", "serve", "--config", str(config_path), "--port", port],
                tenant["gatekeeper_url"] + "/v1/health", env=env,
                log_path=workdir / f"{tenant['gatekeeper_id']}.log"))

        print(f"starting the portal on {portal_url}", flush=True)
        processes.append(support.start_process(
            [python, "-m", "waitress", "--listen", f"127.0.0.1:{portal_port}", "--threads", "8",
             "portal.wsgi:application"],
            portal_url + "/accounts/login/", env=env, log_path=workdir / "portal.log"))

        for tenant in seeded["tenants"]:
            count = TICKETS_PER_TENANT.get(tenant["slug"], 1)
            print(f"submitting {count} demo tickets for {tenant['slug']} through its gatekeeper", flush=True)
            run([python, "manage.py", "make_demo_tickets", "--tenant", tenant["slug"],
                 "--agent-config", str(agent_configs[tenant["slug"]]), "--count", str(count)], env, capture=True)

        print_welcome(seeded, portal_url, env["DATABASE_URL"], workdir, agent_configs, env["DUALKEY_EMAIL_URL"])
        if args.check:
            check(seeded, portal_url, env)
            stop()
        while all(proc.poll() is None for proc in processes):
            time.sleep(1)
        sys.exit("demo: a service stopped; see the logs in " + str(workdir))
    except KeyboardInterrupt:
        stop()
    except BaseException:
        for proc in reversed(processes):
            support.stop_process(proc)
        raise


def mail_url(workdir: Path) -> str:
    return f"file://{(workdir / 'mail').resolve()}"


def mail_place(email_url: str) -> str:
    """Where the welcome says the mail lands, for the backend in use."""
    if email_url.startswith("file://"):
        return f"{email_url.removeprefix('file://')}/ (one .log file a message; open the newest)"
    if email_url.startswith("console:"):
        return "the portal's log (portal.log in the demo's directory)"
    return "the SMTP server DUALKEY_EMAIL_URL names"


def mint_command(database_url: str, portal_url: str) -> str:
    """The shell line the welcome prints. The grant's issuer must be this portal's
    origin, whatever port it runs on."""
    return (f"DATABASE_URL={database_url} DUALKEY_PORTAL_ORIGIN={portal_url} .venv/bin/python manage.py mint_grant"
            f" --tenant globex --prefix tickets/ --ops list")


def print_welcome(seeded: dict, portal_url: str, database_url: str, workdir: Path,
                  agent_configs: dict[str, Path], email_url: str = "console:") -> None:
    password = seeded["password"]
    print("\n" + "=" * 72)
    print(f"Dualkey is running: {portal_url}/")
    print(f"Every demo login uses the password: {password}")
    for tenant in seeded["tenants"]:
        people = ", ".join(f"{u['username']} ({u['role']})" for u in tenant["users"])
        where = "vendor-hosted" if tenant["data_location"] == "vendor" else "customer-owned"
        print(f"  {tenant['name']} ({where}): {people}; gatekeeper {tenant['gatekeeper_url']}")
    print(f"  vendor support: {seeded['support']['username']}")
    print("\nTry an invitation: log in as alice, open Members, invite any name and address.")
    print(f"The portal's mail lands in {mail_place(email_url)}:")
    print("  open the link in the message in a private window, choose a password, and you are in.")
    print("Security (top right) adds an authenticator app or a passkey; Sign-in (admins) requires MFA or sets up SSO.")
    globex = next(t for t in seeded["tenants"] if t["slug"] == "globex")
    mint = mint_command(database_url, portal_url)
    print("\nAsk Globex's gatekeeper directly with a fresh grant (as the browser does):")
    print(f"  GRANT=$({mint})")
    print(f"  curl -s {globex['gatekeeper_url']}/v1/sign -H \"Authorization: Bearer $GRANT\" \\")
    print("       -d '{\"ops\":[{\"op\":\"list\",\"prefix\":\"tickets/\"}]}'")
    print(f"Its ACL refuses {DENIED_ADDRESS}; the same request forwarded for that client is a 403:")
    print(f"  curl -s {globex['gatekeeper_url']}/v1/sign -H 'X-Forwarded-For: {DENIED_ADDRESS}' \\")
    print("       -H \"Authorization: Bearer $GRANT\" -d '{\"ops\":[{\"op\":\"list\",\"prefix\":\"tickets/\"}]}'")
    print(f"  health: curl -s {globex['gatekeeper_url']}/v1/health")
    print("Submit a ticket as Acme's agent does, through the gatekeeper its configuration pins:")
    print(f"  DUALKEY_AGENT_TOKEN=<an agent token from Acme's settings> .venv/bin/python -m gatekeeper_client.agent"
          f" submit --config {agent_configs['acme']} FILE...")
    print(f"Stop with Ctrl-C. Logs and data: {workdir}/")
    print("=" * 72, flush=True)


def check(seeded: dict, portal_url: str, env: dict) -> None:
    """What --check verifies: every service answers and the demo tickets are complete."""
    import requests

    session = requests.Session()
    login = session.get(f"{portal_url}/accounts/login/", timeout=10)
    token = session.cookies.get("csrftoken")
    answer = session.post(f"{portal_url}/accounts/login/", timeout=10, data={
        "username": "bob", "password": seeded["password"], "csrfmiddlewaretoken": token},
        headers={"Referer": login.url})
    tickets = session.get(f"{portal_url}/api/v1/tickets", timeout=10).json()
    results = tickets.get("results", tickets)
    statuses = sorted({t["status"] for t in results})
    print(f"check: bob sees {len(results)} tickets, statuses {statuses}; login answered {answer.status_code}")
    if len(results) != TICKETS_PER_TENANT["acme"] or statuses != ["complete"]:
        sys.exit("check failed")
    for tenant in seeded["tenants"]:
        health = requests.get(tenant["gatekeeper_url"] + "/v1/health", timeout=10).json()
        if health["status"] != "ok" or set(health["vendor_kids"]) != set(tenant["vendor_keys"]):
            sys.exit(f"check failed: {tenant['gatekeeper_id']} health {health}")
    # The printed example works: a fresh grant lists Globex's tickets; the named address is refused.
    globex = next(t for t in seeded["tenants"] if t["slug"] == "globex")
    # The printed line itself, in a shell without the demo's environment.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DUALKEY_") and k != "DATABASE_URL"}
    grant = subprocess.run(["bash", "-c", mint_command(env["DATABASE_URL"], portal_url)], cwd=ROOT, env=clean,
                           capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    body = {"ops": [{"op": "list", "prefix": "tickets/"}]}
    listed = requests.post(globex["gatekeeper_url"] + "/v1/sign", json=body, timeout=10,
                           headers={"Authorization": f"Bearer {grant}"})
    denied = requests.post(globex["gatekeeper_url"] + "/v1/sign", json=body, timeout=10,
                           headers={"Authorization": f"Bearer {grant}", "X-Forwarded-For": DENIED_ADDRESS})
    objects = listed.json()["results"][0]["objects"] if listed.ok else []
    print(f"check: example request {listed.status_code} with {len(objects)} objects; "
          f"from {DENIED_ADDRESS}: {denied.status_code} {denied.json().get('error')}")
    if not objects or denied.status_code != 403:
        sys.exit("check failed: the printed example does not behave as described")
    check_invitation_mail(seeded, portal_url, env)
    check_worker(env)
    print("check: ok")


def check_worker(env: dict) -> None:
    """A task queued by a portal process is run by the demo's worker, through its broker."""
    log_path = Path(os.environ.get("DUALKEY_DEMO_DIR", ROOT / "var" / "demo")) / "worker.log"
    task_id = run([sys.executable, "manage.py", "shell", "-c",
                   "from tenants.tasks import purge_retired_signing_keys as t; print(t.delay().id)"],
                  env, capture=True).strip().splitlines()[-1]
    deadline = time.monotonic() + 30
    while f"[{task_id}] succeeded" not in log_path.read_text(errors="replace"):
        if time.monotonic() > deadline:
            sys.exit(f"check failed: the worker did not run task {task_id} (see {log_path})")
        time.sleep(0.2)
    print(f"check: the worker ran task {task_id} from the {env['DUALKEY_CELERY_BROKER_URL'].split(':')[0]} broker")


def check_invitation_mail(seeded: dict, portal_url: str, env: dict) -> None:
    """The welcome's invitation works as it says: alice invites, the mail with its
    link lands where the welcome says (the file backend's directory)."""
    import secrets

    import requests

    email_url = env["DUALKEY_EMAIL_URL"]
    if not email_url.startswith("file://"):
        print("check: invitation mail not checked (mail goes to DUALKEY_EMAIL_URL)")
        return
    mail_dir = Path(email_url.removeprefix("file://"))
    session = requests.Session()
    login = session.get(f"{portal_url}/accounts/login/", timeout=10)
    session.post(f"{portal_url}/accounts/login/", timeout=10, headers={"Referer": login.url}, data={
        "username": "alice", "password": seeded["password"], "csrfmiddlewaretoken": session.cookies.get("csrftoken")})
    name = f"invitee-{secrets.token_hex(3)}"
    members = session.get(f"{portal_url}/settings/members/", timeout=10)
    invited = session.post(f"{portal_url}/settings/members/invite/", timeout=10, headers={"Referer": members.url},
                           data={"username": name, "email": f"{name}@example.com", "role": "staff",
                                 "csrfmiddlewaretoken": session.cookies.get("csrftoken")})
    # Every file, not only new ones: the file backend names a file by the second and the
    # connection object's id(), so a message may be appended to one written before.
    new = [path for path in sorted(mail_dir.glob("*.log"))
           if f"{name}@example.com" in path.read_text(errors="replace")]
    # The invitee's message has the link; the admins' security notice names the address too.
    linked = any(f"{portal_url}/invitations/accept/?token=" in path.read_text(errors="replace") for path in new)
    print(f"check: invitation answered {invited.status_code}; its mail in {mail_dir}: {'yes' if linked else 'no'}")
    if not linked:
        sys.exit("check failed: the invitation mail did not land where the welcome says")


if __name__ == "__main__":
    main()
