"""The whole system on loopback, for end-to-end tests and benchmarks.

`start_stack(workdir)` starts what `scripts/demo.py` starts — moto's S3 server,
the portal (waitress), one gatekeeper per tenant — in a fresh directory on free
ports, seeds the demo tenants and submits one demo ticket per tenant the real
way (agent → portal → gatekeeper → presigned POSTs; not for Hooli, whose
gatekeeper refuses every grant). `stop()` ends it. Each tenant's agent runs
from its own configuration (`Tenant.agent_config`, `agent-<slug>.toml`), which
pins the gatekeeper the stack started for it, as a customer's IT would
(docs/agent.md): not what the portal's database says.

The tenants:

| slug | people | storage origin | gatekeeper policy |
| --- | --- | --- | --- |
| acme | alice (admin), bob (staff) | http://127.0.0.1:<moto> | allows everyone |
| globex | charlie (admin) | http://localhost:<moto> | the demo's: denies 198.51.100.23 |
| initech | initech-admin | http://127.0.0.1:<moto> | denies loopback for reads; uploads allowed |
| hooli | hooli-admin | http://127.0.0.1:<moto> | misconfigured: another gatekeeper id, a key the portal never had, kill switch thrown |

Hooli's gatekeeper refuses every grant, so the stack submits no ticket for it:
it is there for the settings page's gatekeeper check to find fault with.

Globex reaches the same moto server under another origin (`localhost`), so each
tenant's Content-Security-Policy has something of its own to get right.

Every portal process (the server, `manage.py` commands) runs behind the network
guard in tests/e2e/netguard: a connection to a gatekeeper or to storage is
refused and logged in `netguard_log`. The portal never needs one. The vendor's own
S3 (a second moto server, `vendor_s3`: the erasure receipts' bucket) is not the
customers', and the guard lets the portal reach it.

The portal's database is SQLite in the work directory, or `DATABASE_URL` when it
is set: used as it is, except that each pytest-xdist worker gets its own fresh
database next to it (`<name>_e2e_<worker>`), since the stacks would otherwise
overwrite each other's tenants and agent tokens.

For pytest: the session fixtures `dualkey_stack` and `chromium` (import them into
a conftest or a test module). However many modules import them, one stack and
one browser serve the whole session (per xdist worker).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import importlib.util
import json
import os
import re
import sqlite3
import subprocess
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests import support

ROOT = support.ROOT
PYTHON = support.PYTHON
NETGUARD_DIR = ROOT / "tests" / "e2e" / "netguard"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TICKET_LINE = re.compile(r"^ticket (\d+) \(([0-9a-f-]{36})\) (\w+): (\d+) files under (\S+)$", re.M)
DEMO_PASSWORD = "dualkey-demo"
READS_DENIED = ["127.0.0.0/8", "::1/128"]
SLUGS = ("acme", "globex", "initech", "hooli")
# Hooli's gatekeeper as a careless deployment left it: the id of some other
# gatekeeper, a vendor key this portal never had, and the kill switch thrown.
MISCONFIGURED = "hooli"
MISCONFIGURED_ID = "gk-hooli-staging"
MISCONFIGURED_KID = "hooli-20250101-0a1b2c"


@functools.cache
def demo_script():
    """scripts/demo.py, for its gatekeeper config writer (a script, not a package:
    loaded by path, and only when a stack starts)."""
    spec = importlib.util.spec_from_file_location("dualkey_demo_script", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Tenant:
    slug: str
    seeded: dict              # seed_demo's --json entry: bucket, gatekeeper_id/url, storage_origin, agent_token, ...
    config_path: Path
    audit_path: Path
    log_path: Path
    agent_config: Path        # the agent's own configuration, pinning this tenant's gatekeeper (docs/agent.md)
    tickets: list[dict] = field(default_factory=list)  # submitted by the stack: id, number, prefix, files

    @property
    def gatekeeper_url(self) -> str:
        return self.seeded["gatekeeper_url"]

    @property
    def storage_origin(self) -> str:
        return self.seeded["storage_origin"]

    @property
    def bucket(self) -> str:
        return self.seeded["bucket"]

    @property
    def admin(self) -> str:
        return next(u["username"] for u in self.seeded["users"] if u["role"] == "admin")

    @property
    def accepts_grants(self) -> bool:
        return self.slug != MISCONFIGURED


@dataclass(eq=False)  # compared (and hashed) by identity
class Stack:
    workdir: Path
    portal_url: str
    storage_url: str
    database_url: str
    portal_env: dict          # the guarded environment of every portal process
    netguard_log: Path
    tenants: dict[str, Tenant]
    password: str = DEMO_PASSWORD
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    drop_database: bool = False
    mail_dir: Path | None = None   # where the stack's SMTP server (tests/smtp_sink.py) writes
    vendor_s3: object = None       # the vendor's own S3 (the receipts bucket), a boto3 client
    _user_ids: dict | None = None

    def mails(self) -> list:
        """Every message the portal delivered to the stack's SMTP server, oldest first."""
        import email
        from email import policy
        return [email.message_from_bytes(path.read_bytes(), policy=policy.default)
                for path in sorted(self.mail_dir.glob("*.eml"))]

    # --- the portal's side ----------------------------------------------------------

    def manage(self, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """A manage.py command in the portal's (guarded) environment."""
        result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, text=True, capture_output=True,
                                env={**self.portal_env, **(env or {})}, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args[:2])} failed ({result.returncode}):\n"
                               f"{result.stdout}\n{result.stderr}")
        return result

    def user_ids(self) -> dict[str, int]:
        if self._user_ids is None:
            code = ("import json; from django.contrib.auth import get_user_model; "
                    "print(json.dumps({u.username: u.pk for u in get_user_model().objects.all()}))")
            self._user_ids = json.loads(self.manage("shell", "-c", code).stdout.strip().splitlines()[-1])
        return self._user_ids

    def start_portal(self, host: str = "localhost") -> str:
        """Another portal process on the same database, mail server and gatekeepers,
        configured (DUALKEY_PORTAL_ORIGIN) as http://<host>:<port>; returns that origin.
        For passkeys: WebAuthn needs a domain as its relying party, and the stack's
        own portal is at 127.0.0.1 (an IP address, which browsers refuse as an RP id)."""
        name = f"portal-{host}"
        if name in self.processes:
            return self.processes[name].origin
        port = support.free_port()
        url = f"http://{host}:{port}"
        proc = _spawn([PYTHON, "-m", "waitress", "--listen", f"127.0.0.1:{port}", "--threads", "4",
                       "portal.wsgi:application"], {**self.portal_env, "DUALKEY_PORTAL_ORIGIN": url},
                      self.workdir / f"{name}.log")
        proc.origin = url
        self.processes[name] = proc
        support.wait_for_http(f"http://127.0.0.1:{port}/accounts/login/", proc)
        return url

    @property
    def portal_pid(self) -> int:
        return self.processes["portal"].pid

    def netguard_attempts(self, path: Path | None = None) -> list[dict]:
        path = path or self.netguard_log
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def netguard_armed_pids(self) -> set[int]:
        armed = Path(str(self.netguard_log) + ".armed")
        return {record["pid"] for record in self.netguard_attempts(armed)}

    @property
    def portal_log(self) -> Path:
        return self.workdir / "portal.log"

    # --- the customers' side ----------------------------------------------------------

    def submit(self, slug: str, count: int = 1, marker: str | None = None, extra_logs: int = 0,
               seed: int = 1) -> list[dict]:
        """Submit demo tickets the way an agent does; returns them (id, number, prefix, files)."""
        proc = self._agent(slug, count, marker, extra_logs, seed)
        return self._agent_result(slug, proc)

    def submit_files(self, slug: str, files: list[tuple[str, bytes, str]]) -> dict:
        """Submit one ticket of these (name, bytes, content type) files the way an
        agent does (gatekeeper_client.agent: the portal's API with the tenant's
        agent token, one /v1/sign, presigned POSTs), from this process; returns
        the ticket as `submit` does, plus `files` (the portal's manifest entries)."""
        from gatekeeper_client.agent import load_config, submit_ticket

        tenant = self.tenants[slug]
        config = load_config(tenant.agent_config, env={}, token=tenant.seeded["agent_token"])
        ticket = submit_ticket(config.portal_url, config.token, files, pin=config.pin)
        return {"number": ticket["number"], "id": ticket["id"], "status": ticket["status"],
                "file_count": len(ticket["files"]), "prefix": ticket["prefix"], "files": ticket["files"]}

    def _agent(self, slug, count=1, marker=None, extra_logs=0, seed=1) -> subprocess.Popen:
        args = [PYTHON, "-m", "gatekeeper_client.agent", "demo", "--config", str(self.tenants[slug].agent_config),
                "--count", str(count), "--seed", str(seed), "--extra-logs", str(extra_logs)]
        if marker:
            args += ["--marker", marker]
        env = {**os.environ, **support.AWS_ENV, "DUALKEY_AGENT_TOKEN": self.tenants[slug].seeded["agent_token"]}
        return subprocess.Popen(args, cwd=ROOT, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def _agent_result(self, slug: str, proc: subprocess.Popen) -> list[dict]:
        out, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"agent for {slug} failed ({proc.returncode}): {err}{out}")
        tickets = [{"number": int(n), "id": tid, "status": status, "file_count": int(files), "prefix": prefix}
                   for n, tid, status, files, prefix in TICKET_LINE.findall(out)]
        if not tickets or any(t["status"] != "complete" for t in tickets):
            raise RuntimeError(f"agent for {slug} did not complete its tickets: {out}")
        return tickets

    def s3(self):
        return _s3_client(self.storage_url)

    def stored_objects(self, slug: str, prefix: str) -> dict[str, bytes]:
        """Every object under `prefix` in the tenant's bucket, read straight from storage."""
        s3, bucket = self.s3(), self.tenants[slug].bucket
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
        return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}

    def audit_rows(self, slug: str) -> list[dict]:
        """The tenant gatekeeper's audit log (its SQLite file, table `audit`), oldest first."""
        return audit_log(self.tenants[slug].audit_path)

    def reconfigure_gatekeeper(self, slug: str, extra_toml: str) -> None:
        """Append `extra_toml` (whole tables) to the tenant gatekeeper's config and
        restart it on the same port, as its customer would after pasting a block."""
        tenant = self.tenants[slug]
        tenant.config_path.write_text(tenant.config_path.read_text().rstrip("\n") + "\n\n" + extra_toml)
        support.stop_process(self.processes.pop(f"gk-{slug}"))
        port = urlsplit(tenant.gatekeeper_url).port
        env = {**os.environ, **support.AWS_ENV}
        env.pop("PYTHONPATH", None)
        with open(tenant.log_path, "ab") as out:
            self.processes[f"gk-{slug}"] = subprocess.Popen(
                [PYTHON, "-m", "gatekeeper", "serve", "--config", str(tenant.config_path), "--port", str(port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        support.wait_for_http(tenant.gatekeeper_url + "/v1/health", self.processes[f"gk-{slug}"])

    # --- logs ---------------------------------------------------------------------------

    def portal_log_files(self) -> list[Path]:
        return [self.portal_log, *sorted(self.workdir.glob("portal-*.log")), *sorted(self.workdir.glob("manage-*.log"))]

    def gatekeeper_log_files(self) -> list[Path]:
        return [t.log_path for t in self.tenants.values()]

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            proc = self.processes.pop(name)
            if proc.poll() is None:
                support.stop_process(proc)
        if self.drop_database:
            _drop_postgres_database(self.database_url)
            self.drop_database = False


# --- starting it ------------------------------------------------------------------------

def audit_log(path) -> list[dict]:
    """A gatekeeper's SQLite audit log (table `audit`), oldest first, read only."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM audit ORDER BY id")]


PAGE_CLIENT_ID = "dualkey-pages"  # the pages' public OIDC client at the test IdP ([identity])


def start_page_idp(stack: "Stack", workdir: Path, users: dict):
    """The real OpenID Connect provider (tests/oidc_provider.py) with the pages' public
    client (PKCE, no secret, auth_time required), its redirect the portal's callback."""
    from tests.oidc_provider import Client, start_oidc_provider

    client = Client(PAGE_CLIENT_ID, "", [stack.portal_url + "/identity/callback/"],
                    {"token_endpoint_auth_method": "none", "require_auth_time": True})
    return start_oidc_provider(workdir, [client], users)


def own_stack(tmp_path_factory, name: str, deny_port: int):
    """A module's own stack (a cut over changes where a tenant's tickets go), its
    portal refused `deny_port` too (a second gatekeeper; storage is refused already)."""
    stack = start_stack(tmp_path_factory.mktemp(name), tickets_per_tenant=1,
                        deny=(f"127.0.0.1:{deny_port}", f"localhost:{deny_port}"))
    try:
        yield stack
    finally:
        stack.stop()


def _portal_database(workdir: Path) -> tuple[str, bool]:
    """(DATABASE_URL for the portal, whether the stack created it and must drop it)."""
    given = os.environ.get("DATABASE_URL", "").strip()
    if not given:
        return f"sqlite:///{workdir / 'portal.sqlite3'}", False
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker or not given.startswith(("postgres://", "postgresql://")):
        return given, False
    parts = urlsplit(given)
    # One database per stack, not per worker: a test module may start a stack of its own
    # (test_storage_locations) beside the shared one, and must not drop the shared one's.
    stack_id = hashlib.sha1(str(workdir).encode()).hexdigest()[:8]
    name = f"{parts.path.lstrip('/')}_e2e_{worker}_{stack_id}"
    url = urlunsplit(parts._replace(path="/" + name))
    _drop_postgres_database(url)
    _admin_postgres(given, f'CREATE DATABASE "{name}"')
    return url, True


def _admin_postgres(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def _drop_postgres_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    # Connect to the server's maintenance database to drop this one.
    _admin_postgres(urlunsplit(parts._replace(path="/postgres")), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _gatekeeper_config(tenant: dict, issuer: str, portal_url: str, audit_path: Path) -> str:
    demo = demo_script()
    if tenant["slug"] == MISCONFIGURED:
        from gatekeeper_client.grants import SigningKey

        stranger = SigningKey.generate(MISCONFIGURED_KID)
        tenant = {**tenant, "gatekeeper_id": MISCONFIGURED_ID, "vendor_keys": {stranger.kid: stranger.public_b64}}
        # Top-level keys come before the first [table].
        return "enabled = false\n" + demo.gatekeeper_toml(tenant, issuer, portal_url, tenant["storage_origin"],
                                                          audit_path)
    text = demo.gatekeeper_toml(tenant, issuer, portal_url, tenant["storage_origin"], audit_path)
    if tenant["slug"] != "initech":
        return text
    # Initech's policy refuses reads from loopback (where the browser is) while its
    # agents may still upload from anywhere: [acl.upload] governs `put` alone.
    acl = '\n[acl]\nallow = ["0.0.0.0/0", "::/0"]\ndeny = []\n'
    assert acl in text, text
    text = text.replace(acl, f'\n[acl]\nallow = ["0.0.0.0/0", "::/0"]\ndeny = {demo.toml_value(READS_DENIED)}\n')
    return text + '\n[acl.upload]\nallow = ["0.0.0.0/0", "::/0"]\ndeny = []\n'


def _s3_client(url: str):
    import boto3
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=support.AWS_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=support.AWS_ENV["AWS_SECRET_ACCESS_KEY"])


def _run(args: list[str], env: dict, log: Path) -> str:
    result = subprocess.run(args, cwd=ROOT, env=env, text=True, capture_output=True, timeout=180)
    log.write_text(result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[1:4])} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def _spawn(args: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def start_stack(workdir: Path, tickets_per_tenant: int = 1, portal_log_level: str = "DEBUG",
                deny: tuple[str, ...] = ()) -> Stack:
    """Start everything. The portal logs at DEBUG by default: the more it writes,
    the more a search of its logs for report content covers. `deny`: more
    host:port the network guard refuses the portal (gatekeepers a test starts)."""
    workdir.mkdir(parents=True, exist_ok=True)
    portal_port, storage_port = support.free_port(), support.free_port()
    # The vendor's own S3 (erasure receipts, STORAGES["receipts"]): not the customers',
    # so the network guard lets the portal reach it.
    vendor_storage_url = f"http://127.0.0.1:{support.free_port()}"
    gatekeeper_ports = {slug: support.free_port() for slug in SLUGS}
    portal_url = f"http://127.0.0.1:{portal_port}"
    storage_url = f"http://127.0.0.1:{storage_port}"
    storage_origins = {slug: storage_url for slug in SLUGS} | {"globex": f"http://localhost:{storage_port}"}
    database_url, drop_database = _portal_database(workdir)
    smtp_port, mail_dir = support.free_port(), workdir / "mail"
    netguard_log = workdir / "netguard.log"

    base_env = {**os.environ, **support.AWS_ENV}
    base_env.pop("PYTHONPATH", None)
    denied = [f"127.0.0.1:{storage_port}", f"localhost:{storage_port}",
              *(f"127.0.0.1:{port}" for port in gatekeeper_ports.values()), *deny]
    portal_env = {
        **base_env,
        "PYTHONPATH": os.pathsep.join([str(NETGUARD_DIR), str(ROOT)]),
        "DUALKEY_NETGUARD_DENY": ",".join(denied),
        "DUALKEY_NETGUARD_LOG": str(netguard_log),
        "DUALKEY_DEBUG": "1",
        "DUALKEY_LOG_LEVEL": portal_log_level,
        "DUALKEY_PORTAL_ORIGIN": portal_url,
        "DATABASE_URL": database_url,
        "DUALKEY_ARTIFACTS_ENDPOINT_URL": vendor_storage_url,
        # A real SMTP server: the portal's mail goes over the wire to tests/smtp_sink.py.
        "DUALKEY_EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "DUALKEY_DEMO_TENANTS": ";".join(
            f"{slug},gk-{slug},http://127.0.0.1:{port},{slug}-reports,{storage_origins[slug]}"
            for slug, port in gatekeeper_ports.items()),
    }
    stack = Stack(workdir=workdir, portal_url=portal_url, storage_url=storage_url, database_url=database_url,
                  portal_env=portal_env, netguard_log=netguard_log, tenants={}, drop_database=drop_database,
                  mail_dir=mail_dir)
    _ACTIVE.add(stack)
    try:
        stack.processes["storage"] = _spawn(
            [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(storage_port)],
            base_env, workdir / "storage.log")
        stack.processes["vendor-storage"] = _spawn(
            [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", vendor_storage_url.rsplit(":", 1)[1]],
            base_env, workdir / "vendor-storage.log")
        stack.processes["smtp"] = _spawn(
            [PYTHON, "-m", "tests.smtp_sink", "127.0.0.1", str(smtp_port), str(mail_dir)],
            base_env, workdir / "smtp.log")
        # The database, while storage starts.
        _run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], portal_env, workdir / "manage-migrate.log")
        seeded = json.loads(_run([PYTHON, "manage.py", "seed_demo", "--json"], portal_env,
                                 workdir / "manage-seed.log"))
        stack.password = seeded["password"]
        stack.processes["portal"] = _spawn(
            [PYTHON, "-m", "waitress", "--listen", f"127.0.0.1:{portal_port}", "--threads", "8",
             "portal.wsgi:application"], portal_env, stack.portal_log)

        support.wait_for_http(storage_url + "/moto-api/", stack.processes["storage"])
        support.wait_for_http(vendor_storage_url + "/moto-api/", stack.processes["vendor-storage"])
        stack.vendor_s3 = _s3_client(vendor_storage_url)
        stack.vendor_s3.create_bucket(Bucket="dualkey-receipts")  # STORAGES["receipts"]
        support.wait_for_port(smtp_port, stack.processes["smtp"])
        s3 = stack.s3()
        for entry in seeded["tenants"]:
            slug = entry["slug"]
            s3.create_bucket(Bucket=entry["bucket"])
            s3.put_bucket_versioning(Bucket=entry["bucket"], VersioningConfiguration={"Status": "Enabled"})
            # Browsers read objects straight from storage: the bucket allows the portal's origin.
            s3.put_bucket_cors(Bucket=entry["bucket"], CORSConfiguration={"CORSRules": [{
                "AllowedOrigins": [portal_url], "AllowedMethods": ["GET", "POST"],
                "AllowedHeaders": ["*"], "MaxAgeSeconds": 600}]})
            tenant = Tenant(slug, entry, workdir / f"gk-{slug}.toml", workdir / f"audit-{slug}.db",
                            workdir / f"gk-{slug}.log", workdir / f"agent-{slug}.toml")
            # The customer's pin comes from what the stack started, not from the portal's database.
            tenant.agent_config.write_text(demo_script().agent_toml(
                portal_url, f"http://127.0.0.1:{gatekeeper_ports[slug]}", f"gk-{slug}"))
            tenant.config_path.write_text(_gatekeeper_config(entry, seeded["issuer"], portal_url, tenant.audit_path))
            stack.tenants[slug] = tenant
            stack.processes[f"gk-{slug}"] = _spawn(
                [PYTHON, "-m", "gatekeeper", "serve", "--config", str(tenant.config_path),
                 "--port", str(gatekeeper_ports[slug])], base_env, tenant.log_path)
        for slug, tenant in stack.tenants.items():
            support.wait_for_http(tenant.gatekeeper_url + "/v1/health", stack.processes[f"gk-{slug}"])
        support.wait_for_http(portal_url + "/accounts/login/", stack.processes["portal"])

        if tickets_per_tenant:
            agents = {slug: stack._agent(slug, tickets_per_tenant)
                      for slug, tenant in stack.tenants.items() if tenant.accepts_grants}
            for slug, proc in agents.items():
                stack.tenants[slug].tickets = stack._agent_result(slug, proc)
    except BaseException:
        stack.stop()
        _ACTIVE.discard(stack)
        raise
    return stack


# Whatever happens to the test run, no server outlives it.
_ACTIVE: set[Stack] = set()


@atexit.register
def _stop_all() -> None:
    for stack in list(_ACTIVE):
        stack.stop()


# --- pytest fixtures -----------------------------------------------------------------------

class _Shared:
    """One instance per session however many modules import the fixture: each
    import makes its own FixtureDef, so the instance is counted, not owned."""

    def __init__(self):
        self.value, self.users, self.lock = None, 0, threading.Lock()

    def acquire(self, make):
        with self.lock:
            if self.users == 0:
                self.value = make()
            self.users += 1
            return self.value

    def release(self, close):
        with self.lock:
            self.users -= 1
            if self.users == 0:
                close(self.value)
                self.value = None


_STACK, _BROWSER = _Shared(), _Shared()


def _close_stack(stack: Stack) -> None:
    stack.stop()
    _ACTIVE.discard(stack)


@pytest.fixture(scope="session")
def dualkey_stack(tmp_path_factory):
    stack = _STACK.acquire(lambda: start_stack(tmp_path_factory.mktemp("dualkey-stack")))
    yield stack
    _STACK.release(_close_stack)


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def _open_browser():
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        return playwright, launch_chromium(playwright)
    except BaseException:
        playwright.stop()
        raise


def _close_browser(pair) -> None:
    playwright, browser = pair
    browser.close()
    playwright.stop()


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium, driven by Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed (make system-deps)")
    _, browser = _BROWSER.acquire(_open_browser)
    yield browser
    _BROWSER.release(_close_browser)


# --- browser helpers ------------------------------------------------------------------------

def log_in(browser, stack: Stack, username: str, *, portal_url: str | None = None, **context_options):
    """A fresh browser context logged in as `username` (at `portal_url`, by default the
    stack's portal); returns (context, page)."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.goto(f"{portal_url or stack.portal_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", stack.password)
    with page.expect_navigation():
        page.click("[type=submit]")
    if "/accounts/login/" in page.url:
        context.close()
        raise AssertionError(f"{username} could not log in")
    # Members land on the ticket list, whose script reads the summaries from storage:
    # let it finish, so that none of its requests is taken for the next page's.
    if page.locator("[data-ticket-list]").count():
        page.wait_for_selector("[data-ticket-list][data-loaded=true]", state="attached", timeout=20_000)
    return context, page


def wait_until_loaded(page, timeout: float = 20_000) -> None:
    page.wait_for_selector("[data-report-root][data-loaded=true]", state="attached", timeout=timeout)


def origin(url: str) -> str:
    """scheme://host[:port] of a URL, as browsers and CSP headers name it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def csp_directives(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as {directive: [sources]}."""
    directives = {}
    for part in filter(None, (p.strip() for p in header.split(";"))):
        name, *sources = part.split()
        directives[name] = sources
    return directives

# Collected in the page before any of its own scripts run: every CSP violation.
CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(
  {directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample}));
"""


@dataclass
class BrowserView:
    """One page as a logged-in browser saw it: what it requested, logged and broke.
    Subclasses say when their page has settled (`wait`)."""
    page: object
    status: int = 0
    csp: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)   # (method, url)
    console: list[tuple[str, str]] = field(default_factory=list)    # (type, text)
    page_errors: list[str] = field(default_factory=list)

    def wait(self) -> None:
        raise NotImplementedError

    def requests_to(self, origin_: str, method: str | None = None) -> list[str]:
        return [url for m, url in self.requests if origin(url) == origin_ and (method is None or m == method)]

    def csp_violations(self) -> list[dict]:
        return self.page.evaluate("window.__cspViolations")


def open_view(view_class, browser, stack, username: str, path: str, before_load=None, **context_options):
    """Log in as `username`, open `path` recording everything, wait until it settles.
    Returns (browser context, view); the caller closes the context."""
    context, page = log_in(browser, stack, username, **context_options)
    page.add_init_script(CSP_RECORDER)
    view = view_class(page)
    page.on("request", lambda r: view.requests.append((r.method, r.url)))
    page.on("console", lambda m: view.console.append((m.type, m.text)))
    page.on("pageerror", lambda e: view.page_errors.append(str(e)))
    if before_load:
        before_load(page)
    response = page.goto(f"{stack.portal_url}{path}")
    view.status = response.status
    view.csp = response.headers.get("content-security-policy", "")
    if response.status == 200:
        view.wait()
    return context, view


class ReportView(BrowserView):
    """One report page as a browser saw it; settled when every file has."""

    def wait(self) -> None:
        wait_until_loaded(self.page)

    def banner(self, kind: str) -> str | None:
        """The text of the `error` or `warning` banner, or None while it is hidden."""
        banner = self.page.get_by_test_id(f"{kind}-banner")
        return None if banner.is_hidden() else banner.text_content()

    def file_statuses(self) -> dict[str, str]:
        """{file name: its check badge's status} from the Files table."""
        return dict(self.page.locator("[data-manifest-file]").evaluate_all(
            "rows => rows.map(r => [r.dataset.name, r.querySelector('[data-file-status] .badge')?.dataset.status])"))


def open_report_view(browser, stack, username: str, ticket: dict, before_load=None, **context_options):
    """Open `ticket`'s report page as `username` and wait until it settles.
    Returns (browser context, ReportView); the caller closes the context."""
    return open_view(ReportView, browser, stack, username, f"/tickets/{ticket['id']}/", before_load,
                     **context_options)


def verify_in_browser(page, idp_login: str | None = None) -> dict[str, dict]:
    """Press "Verify the gatekeeper" and wait for the verdict; the checks by id.
    `idp_login`: sign in at the tenant's IdP as this person when the page asks."""
    page.locator("[data-onboarding-verify]").evaluate("root => root.removeAttribute('data-state')")  # a verdict shown
    page.get_by_role("button", name="Verify the gatekeeper").click()
    if idp_login:
        sign_in_at_idp(page, idp_login)
    return verdict(page)


def verdict(page) -> dict[str, dict]:
    page.wait_for_selector("[data-onboarding-verify][data-state=done]", state="attached", timeout=30_000)
    items = page.locator("[data-testid=verify-checklist] > li").evaluate_all("""(items) => items.map((li) => ({
        id: li.dataset.check, status: li.dataset.status, detail: li.querySelector(".check-detail").textContent,
        hint: li.querySelector(".check-hint")?.textContent ?? null}))""")
    return {item["id"]: item for item in items}


# --- more of a tenant's storage locations (moves, cut overs) ----------------------------------

def start_location(stack: Stack, workdir: Path, gatekeeper_id: str, bucket: str, port: int, storage: str,
                   extra_toml: str = "", slug: str = "globex"):
    """Another gatekeeper for the tenant `slug` (Globex by default): its own bucket
    (versioned), at `storage`; `extra_toml` (whole tables, e.g. identity_toml's)
    appended to its config. Returns (its process, {url, id, bucket, storage_origin,
    audit, agent_config})."""
    tenant = stack.tenants[slug]
    s3 = stack.s3()
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": [stack.portal_url], "AllowedMethods": ["GET", "POST"], "AllowedHeaders": ["*"],
        "MaxAgeSeconds": 600}]})
    issuer = tomllib.loads(tenant.config_path.read_text())["issuer"]
    audit = workdir / "audit.db"
    config = workdir / "gk.toml"
    text = demo_script().gatekeeper_toml({**tenant.seeded, "gatekeeper_id": gatekeeper_id, "bucket": bucket},
                                         issuer, stack.portal_url, storage, audit)
    config.write_text(text.rstrip("\n") + "\n\n" + extra_toml if extra_toml else text)
    url = f"http://127.0.0.1:{port}"
    proc = support.start_process([PYTHON, "-m", "gatekeeper", "serve", "--config", str(config), "--port", str(port)],
                                 url + "/v1/health", env=support.AWS_ENV, log_path=workdir / "gk.log")
    return proc, {"url": url, "id": gatekeeper_id, "bucket": bucket, "storage_origin": storage, "audit": audit,
                  "agent_config": workdir / "agent.toml"}


def versions(s3, bucket: str, prefix: str) -> list:
    """Every version and delete marker under `prefix` in `bucket`."""
    page = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    return page.get("Versions", []) + page.get("DeleteMarkers", [])


def cut_over_to(page, stack: Stack, location: dict, idp_login: str | None = None, verify_first: bool = False) -> None:
    """On the settings page: add `location`, connect it, verify it in the browser, cut
    over. `idp_login`: with [identity] at its gatekeeper, the verification signs in at
    the tenant's IdP as this person (sign_in_at_idp). `verify_first`: verify it before
    connecting it (no health recorded yet: the page does not name its gatekeeper)."""
    page.goto(f"{stack.portal_url}/settings/")
    form = page.get_by_test_id("location-add")
    form.locator("[name=kind]").select_option("customer")
    form.locator("[name=gatekeeper_url]").fill(location["url"])
    form.locator("[name=gatekeeper_id]").fill(location["id"])
    form.locator("[name=storage_origin]").fill(location["storage_origin"])
    with page.expect_navigation():
        form.locator("[type=submit]").click()
    if verify_first:
        meta = page.locator("meta[name=dualkey-idp]")
        assert not meta.count() or origin(location["url"]) not in meta.get_attribute("data-gatekeepers").split()
        checks = verify_in_browser(page, idp_login)
        assert page.locator("[data-onboarding-verify]").get_attribute("data-verdict") == "pass", checks
    row = page.locator(f"[data-location-row][data-gatekeeper-url='{location['url']}']")
    with page.expect_navigation():
        row.locator("[data-action=connect-location]").click()
    if not verify_first:
        checks = verify_in_browser(page, idp_login)  # a cut over needs a passed verification of this gatekeeper
        assert page.locator("[data-onboarding-verify]").get_attribute("data-verdict") == "pass", checks
    row = page.locator(f"[data-location-row][data-gatekeeper-url='{location['url']}']")
    row.locator("[name=confirm]").fill(location["id"])
    with page.expect_navigation():
        row.locator("[data-action=cut-over]").click()
    assert page.locator(f"[data-location-row][data-gatekeeper-url='{location['url']}']").get_attribute(
        "data-state") == "active"


def move_progress(page, url: str) -> dict:
    """A move's progress (its page's JSON), as the logged-in page's context reads it."""
    return page.request.get(url).json()


def wait_for(predicate, timeout: float = 90.0, what: str = "the move"):
    """The first truthy value of `predicate()`, polled every 0.1 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# --- the tenant's identity provider (the gatekeeper's [identity]) ------------------------------

def set_portal_idp(stack: Stack, slug: str, issuer: str, client_id: str) -> None:
    """The tenant names its IdP at the portal (its pages' <meta name=dualkey-idp>); "" for none."""
    stack.manage("shell", "-c", "from tenants.models import Tenant; "
                 f"Tenant.objects.filter(slug={slug!r}).update(idp_issuer={issuer!r}, idp_client_id={client_id!r})")


def record_location_health(stack: Stack, slug: str, gatekeeper_url: str) -> None:
    """What an admin's "Connect" on the settings page does: the gatekeeper's /v1/health
    (fetched here, as her browser would: the portal never contacts a gatekeeper) recorded
    for the tenant's location at `gatekeeper_url`. After its [identity] changed: the pages
    send the person's ID token only to a location whose recorded health asks for it."""
    import requests

    health = requests.get(gatekeeper_url.rstrip("/") + "/v1/health", timeout=5).json()
    stack.manage("shell", "-c", "import json\n"
                 "from tenants.locations import record_health\n"
                 "from tenants.models import StorageLocation\n"
                 f"record_health(StorageLocation.objects.exclude(state='retired').get(tenant__slug={slug!r}, "
                 f"gatekeeper_url={gatekeeper_url!r}), json.loads({json.dumps(health)!r}))")


def identity_toml(issuer: str, audience: str, jwks_url: str, leeway: int = 0, ops: tuple[str, ...] = ()) -> str:
    """A gatekeeper's [identity] block; `ops`: the ops that need the token (else its default)."""
    block = f'[identity]\nissuer = "{issuer}"\naudience = "{audience}"\njwks_url = "{jwks_url}"\nleeway = {leeway}\n'
    return block + (f"ops = {json.dumps(list(ops))}\n" if ops else "")


def log_in_with_idp(browser, stack: Stack, username: str, issuer: str, client_id: str, slug: str = "globex"):
    """Logged in (the landing list read without the IdP: no sign-in to wait for), then
    the tenant names its IdP at the portal for the pages opened next."""
    set_portal_idp(stack, slug, "", "")
    context, page = log_in(browser, stack, username)
    set_portal_idp(stack, slug, issuer, client_id)
    return context, page


def sign_in_at_idp(page, login: str) -> None:
    """Click the page's sign-in button, and sign in in the provider's popup (login, consent)."""
    page.get_by_test_id("identity-sign-in").wait_for(timeout=20_000)
    with page.expect_popup() as opened:
        page.get_by_test_id("identity-sign-in").click()
    popup = opened.value
    popup.wait_for_selector("input[name=login]")
    popup.fill("input[name=login]", login)
    popup.fill("input[name=password]", "anything")
    popup.click("button[type=submit]")
    popup.wait_for_selector("button[type=submit]")  # the consent page
    with popup.expect_event("close"):
        popup.click("button[type=submit]")
