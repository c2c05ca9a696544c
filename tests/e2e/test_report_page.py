"""The report page in a real browser, against the whole system on loopback.

Bob (staff at Acme) opens a ticket that an agent submitted through Acme's
gatekeeper. The page gets a grant from the portal, makes one /v1/sign call at the
gatekeeper and reads every object straight from storage, while the portal's
process runs behind a network guard that refuses (and logs) any connection to a
gatekeeper or to storage.
"""

from __future__ import annotations

import base64
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.stack import CSP_RECORDER, csp_directives, log_in, origin, wait_until_loaded

pytestmark = pytest.mark.e2e


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))



@dataclass
class View:
    """One report page as a browser saw it."""
    ticket: dict
    url: str
    page: object
    status: int
    csp: str
    user_agent: str
    grant: dict | None
    requests: list[tuple[str, str]] = field(default_factory=list)   # (method, url)
    console: list[tuple[str, str]] = field(default_factory=list)    # (type, text)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[dict] = field(default_factory=list)

    def requests_to(self, origin_: str, method: str | None = None, path: str | None = None) -> list[str]:
        return [url for m, url in self.requests
                if origin(url) == origin_ and (method is None or m == method)
                and (path is None or urlsplit(url).path == path)]


def open_report(browser, stack, username: str, ticket: dict) -> tuple[object, View]:
    context, page = log_in(browser, stack, username)
    page.add_init_script(CSP_RECORDER)
    view = View(ticket=ticket, url=f"{stack.portal_url}/tickets/{ticket['id']}/", page=page, status=0,
                csp="", user_agent="", grant=None)
    page.on("request", lambda r: view.requests.append((r.method, r.url)))
    page.on("console", lambda m: view.console.append((m.type, m.text)))
    page.on("pageerror", lambda e: view.page_errors.append(str(e)))
    grant_path = f"/api/v1/tickets/{ticket['id']}/grant"
    with page.expect_response(lambda r: urlsplit(r.url).path == grant_path) as grant_response:
        response = page.goto(view.url)
    wait_until_loaded(page)
    view.status = response.status
    view.csp = response.headers.get("content-security-policy", "")
    view.user_agent = page.evaluate("navigator.userAgent")
    view.grant = grant_response.value.json()
    view.csp_violations = page.evaluate("window.__cspViolations")
    return context, view


@pytest.fixture(scope="module")
def bob_view(dualkey_stack, chromium):
    ticket = dualkey_stack.tenants["acme"].tickets[0]
    context, view = open_report(chromium, dualkey_stack, "bob", ticket)
    yield view
    context.close()


@pytest.fixture(scope="module")
def stored(dualkey_stack, bob_view):
    """The objects of Bob's ticket, read straight from storage (not through the page)."""
    return dualkey_stack.stored_objects("acme", bob_view.ticket["prefix"])


# --- Bob sees the whole report -------------------------------------------------------------

def test_bob_sees_every_part_of_the_report(bob_view, stored):
    page, prefix = bob_view.page, bob_view.ticket["prefix"]
    assert bob_view.status == 200
    assert page.locator("[data-testid=error-banner]").is_hidden(), page.locator("[data-testid=error-banner]").text_content()
    assert page.locator("[data-testid=warning-banner]").is_hidden(), page.locator("[data-testid=warning-banner]").text_content()

    report = json.loads(stored[prefix + "report.json"])
    assert page.get_by_test_id("message").text_content() == report["message"]

    shots = page.get_by_test_id("screenshot")
    assert shots.count() == len(report["screenshots"]) >= 1
    for i in range(shots.count()):
        shots.nth(i).scroll_into_view_if_needed()  # they load lazily
        shots.nth(i).evaluate("img => img.decode()")
        assert shots.nth(i).evaluate("img => img.complete && img.naturalWidth") > 0
        assert shots.nth(i).get_attribute("src").startswith("blob:")  # the very bytes that were hashed

    assert page.get_by_test_id("process-table").is_visible()
    assert page.get_by_test_id("process-row").count() == len(report["processes"]) >= 1
    assert page.get_by_test_id("event-row").count() == len(report["event_log"]) >= 1
    chart = page.get_by_test_id("resource-chart")
    assert chart.is_visible()
    assert chart.locator("path.series-cpu").get_attribute("d").count("L") == len(report["resource_usage"]["samples"]) - 1

    logs = page.get_by_test_id("log")
    shown = [logs.nth(i).text_content() for i in range(logs.count())]
    assert stored[prefix + "application.log"].decode() in shown
    assert stored[prefix + "agent.log"].decode() in shown

    statuses = page.locator("[data-testid=manifest] [data-file-status] .badge").evaluate_all(
        "badges => badges.map(b => b.dataset.status)")
    assert statuses == ["verified"] * bob_view.ticket["file_count"]
    assert not bob_view.page_errors


def test_the_page_asks_once_for_a_grant_once_at_the_gatekeeper_and_once_per_file_at_storage(dualkey_stack, bob_view, stored):
    acme = dualkey_stack.tenants["acme"]
    grant_path = f"/api/v1/tickets/{bob_view.ticket['id']}/grant"
    assert len(bob_view.requests_to(dualkey_stack.portal_url, "POST", grant_path)) == 1
    assert bob_view.requests_to(acme.gatekeeper_url, "POST") == [acme.gatekeeper_url + "/v1/sign"]
    fetched = sorted(urlsplit(url).path for url in bob_view.requests_to(acme.storage_origin, "GET"))
    assert fetched == sorted(f"/{acme.bucket}/{key}" for key in stored)
    # Every other request went to the portal (the page and its static files) or
    # stayed in the browser (the screenshots' blob: URLs).
    others = [(m, url) for m, url in bob_view.requests if not url.startswith("blob:")
              and origin(url) not in (acme.gatekeeper_url, acme.storage_origin, dualkey_stack.portal_url)]
    assert others == []
    portal_paths = {urlsplit(url).path for m, url in bob_view.requests if origin(url) == dualkey_stack.portal_url}
    assert portal_paths - {urlsplit(bob_view.url).path, grant_path} <= {
        p for p in portal_paths if p.startswith("/static/") or p == "/favicon.ico"}


def test_the_portal_never_connects_to_a_gatekeeper_or_to_storage(dualkey_stack, bob_view):
    # The page above rendered everything while the portal was behind the guard...
    assert dualkey_stack.portal_pid in dualkey_stack.netguard_armed_pids()
    assert dualkey_stack.netguard_attempts() == []
    assert not dualkey_stack.netguard_log.exists() or dualkey_stack.netguard_log.stat().st_size == 0


CONTROL = r"""
import errno, json, os, socket
import boto3, botocore.exceptions, requests

gatekeeper = ("127.0.0.1", int(os.environ["CONTROL_GATEKEEPER_PORT"]))
storage = ("localhost", int(os.environ["CONTROL_STORAGE_PORT"]))
portal = ("127.0.0.1", int(os.environ["CONTROL_PORTAL_PORT"]))
seen = {"pid": os.getpid()}

def by_guard(exc, depth=0):
    # Libraries wrap the ConnectionRefusedError; look for the guard's own in the chain.
    if exc is None or depth > 10:
        return False
    if isinstance(exc, ConnectionRefusedError) and "netguard" in str(exc):
        return True
    inner = [exc.__cause__, exc.__context__, *getattr(exc, "kwargs", {}).values(), *exc.args]
    return any(by_guard(e, depth + 1) for e in inner if isinstance(e, BaseException))

def attempt(name, action, refused):
    try:
        action()
        seen[name] = "connected"
    except refused as exc:
        seen[name] = "refused" if by_guard(exc) else repr(exc)

def raw_connect():
    with socket.socket() as s:
        s.connect(gatekeeper)

attempt("create_connection", lambda: socket.create_connection(gatekeeper, timeout=5).close(), ConnectionRefusedError)
attempt("socket.connect", raw_connect, ConnectionRefusedError)
with socket.socket() as s:
    seen["connect_ex"] = "refused" if s.connect_ex(gatekeeper) == errno.ECONNREFUSED else "connected"
attempt("requests", lambda: requests.get(f"http://{gatekeeper[0]}:{gatekeeper[1]}/v1/health", timeout=5),
        requests.ConnectionError)
attempt("boto3", lambda: boto3.client("s3", endpoint_url=f"http://{storage[0]}:{storage[1]}", region_name="us-east-1")
        .list_buckets(), botocore.exceptions.EndpointConnectionError)
attempt("portal", lambda: socket.create_connection(portal, timeout=5).close(), ConnectionRefusedError)
print(json.dumps(seen))
"""


def test_the_network_guard_works(dualkey_stack, tmp_path):
    """The control for the test above: a process with the portal's environment
    cannot reach a gatekeeper or storage, and every attempt is logged."""
    acme = dualkey_stack.tenants["acme"]
    gatekeeper_port = urlsplit(acme.gatekeeper_url).port
    storage_port = urlsplit(dualkey_stack.storage_url).port
    # Unguarded, the gatekeeper does accept connections: the refusal is the guard's.
    socket.create_connection(("127.0.0.1", gatekeeper_port), timeout=5).close()

    control_log = tmp_path / "netguard-control.log"
    result = dualkey_stack.manage("shell", "-c", CONTROL, env={
        "DUALKEY_NETGUARD_LOG": str(control_log),  # the same guard; its own log, so the portal's stays clean
        "CONTROL_GATEKEEPER_PORT": str(gatekeeper_port), "CONTROL_STORAGE_PORT": str(storage_port),
        "CONTROL_PORTAL_PORT": str(urlsplit(dualkey_stack.portal_url).port)})
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"pid": seen["pid"], "create_connection": "refused", "socket.connect": "refused",
                    "connect_ex": "refused", "requests": "refused", "boto3": "refused", "portal": "connected"}

    attempts = dualkey_stack.netguard_attempts(control_log)
    assert {a["pid"] for a in attempts} == {seen["pid"]}
    targets = [a["target"] for a in attempts]
    gatekeeper, storage = f"127.0.0.1:{gatekeeper_port}", f"localhost:{storage_port}"
    assert targets[:3] == [gatekeeper] * 3
    assert {a["via"] for a in attempts[:3]} == {"socket.create_connection", "socket.connect", "socket.connect_ex"}
    assert gatekeeper in targets[3:]                               # requests
    assert any(t.endswith(f":{storage_port}") for t in targets[3:])  # boto3 (after resolving localhost)
    assert all(t in (gatekeeper, storage) or t.endswith(f":{storage_port}") for t in targets)


def test_the_guard_is_loaded_by_the_portals_server_process(dualkey_stack):
    """sitecustomize runs in the waitress process itself, not only in manage.py."""
    argv = Path(f"/proc/{dualkey_stack.portal_pid}/cmdline").read_bytes().split(b"\0")
    assert b"waitress" in argv and b"portal.wsgi:application" in argv
    assert dualkey_stack.portal_pid in dualkey_stack.netguard_armed_pids()


# --- the customer's audit log -------------------------------------------------------------------

def test_the_gatekeepers_audit_log_shows_bobs_browser_reading_the_ticket(dualkey_stack, bob_view, stored):
    prefix = bob_view.ticket["prefix"]
    bob = f"user:{dualkey_stack.user_ids()['bob']}"
    claims = jwt_claims(bob_view.grant["grant"])
    assert claims["sub"] == bob
    assert claims["scope"] == {"prefix": prefix, "ops": ["get", "list"]}

    # (Signing in lands on the ticket list, whose own grant reads each ticket's summary.json.)
    rows = [r for r in dualkey_stack.audit_rows("acme")
            if r["key"].startswith(prefix) and r["op"] in ("get", "list")
            and not (r["key"] == prefix + "summary.json" and r["jti"] != claims["jti"])]
    assert rows, "no audit records for the ticket's reads"
    assert {(r["sub"], r["outcome"], r["status"], r["user_agent"], r["client_ip"], r["origin"], r["jti"])
            for r in rows} == {(bob, "allow", 200, bob_view.user_agent, "127.0.0.1", dualkey_stack.portal_url,
                                claims["jti"])}
    assert "Chrome/" in bob_view.user_agent
    assert len({r["request_id"] for r in rows}) == 1  # one /v1/sign call for the whole ticket
    assert [r["key"] for r in rows if r["op"] == "list"] == [prefix]
    assert sorted(r["key"] for r in rows if r["op"] == "get") == sorted(stored)
    assert not [r for r in dualkey_stack.audit_rows("acme") if r["sub"] == bob and r["outcome"] != "allow"]


# --- the customer's policy refuses -------------------------------------------------------------

def test_a_refusal_by_the_customers_address_policy_is_explained_on_the_page(dualkey_stack, chromium):
    initech = dualkey_stack.tenants["initech"]
    ticket = initech.tickets[0]  # uploaded from loopback: [acl.upload] allows it
    context, view = open_report(chromium, dualkey_stack, initech.admin, ticket)
    try:
        banner = view.page.get_by_test_id("error-banner")
        assert banner.is_visible()
        text = banner.text_content()
        assert "address" in text and "address_denied" in text, text
        assert view.requests_to(initech.gatekeeper_url, "POST") == [initech.gatekeeper_url + "/v1/sign"]
        assert view.requests_to(initech.storage_origin) == []  # nothing was signed, nothing fetched
        assert view.page.get_by_test_id("screenshot").count() == 0
        assert view.page.get_by_test_id("message").count() == 0
    finally:
        context.close()

    who = f"user:{dualkey_stack.user_ids()[initech.admin]}"
    rows = [r for r in dualkey_stack.audit_rows("initech") if r["sub"] == who]
    assert rows and {(r["outcome"], r["reason"], r["status"]) for r in rows} == {("deny", "address_denied", 403)}
    uploads = [r for r in dualkey_stack.audit_rows("initech") if r["key"].startswith(ticket["prefix"]) and r["op"] == "put"]
    assert len(uploads) == ticket["file_count"] and {r["outcome"] for r in uploads} == {"allow"}


# --- Content-Security-Policy ---------------------------------------------------------------------

def other_origins(stack, slug: str) -> set[str]:
    mine = stack.tenants[slug]
    return ({t.gatekeeper_url for t in stack.tenants.values()} | {t.storage_origin for t in stack.tenants.values()}) \
        - {mine.gatekeeper_url, mine.storage_origin}


def assert_report_csp(stack, slug: str, header: str) -> None:
    tenant = stack.tenants[slug]
    directives = csp_directives(header)
    assert directives["connect-src"] == ["'self'", tenant.gatekeeper_url, tenant.storage_origin], header
    assert directives["img-src"] == ["'self'", "blob:", tenant.storage_origin], header  # no data:
    assert directives["script-src"] == ["'self'"], header
    assert directives["default-src"] == ["'self'"], header
    assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header
    for other in other_origins(stack, slug):
        assert other not in header, f"{other} (another tenant's) in {header}"


def test_the_csp_names_exactly_the_tenants_gatekeeper_and_storage(dualkey_stack, bob_view):
    assert_report_csp(dualkey_stack, "acme", bob_view.csp)
    assert bob_view.csp_violations == []
    assert not [text for kind, text in bob_view.console if "Content Security Policy" in text]
    assert [(kind, text) for kind, text in bob_view.console if kind == "error"] == []


def test_another_tenants_report_page_has_its_own_csp_and_renders(dualkey_stack, chromium):
    globex = dualkey_stack.tenants["globex"]  # its storage is the same server under another origin
    context, view = open_report(chromium, dualkey_stack, "charlie", globex.tickets[0])
    try:
        assert_report_csp(dualkey_stack, "globex", view.csp)
        assert view.page.get_by_test_id("error-banner").is_hidden()
        assert view.page.get_by_test_id("message").text_content()
        assert view.requests_to(globex.storage_origin, "GET")
        assert view.csp_violations == [] and not view.page_errors
    finally:
        context.close()


def test_the_csp_blocks_what_it_should(dualkey_stack, bob_view):
    """The control for the CSP checks: another tenant's gatekeeper and inline
    script are refused in this very page, and the violations are seen."""
    page, globex = bob_view.page, dualkey_stack.tenants["globex"]
    page.evaluate("window.__cspViolations = []")
    blocked = page.evaluate("""url => fetch(url).then(() => "fetched", () => "blocked")""",
                            globex.gatekeeper_url + "/v1/health")
    page.evaluate("""() => { const s = document.createElement("script");
                             s.textContent = "window.__inlineRan = true"; document.body.append(s); }""")
    page.wait_for_function("window.__cspViolations.length >= 2")
    assert blocked == "blocked"
    assert page.evaluate("window.__inlineRan === true") is False
    violations = page.evaluate("window.__cspViolations")
    assert {v["directive"] for v in violations} == {"connect-src", "script-src-elem"}
    assert any(v["blocked"].startswith(globex.gatekeeper_url) for v in violations)


# --- tenant isolation ------------------------------------------------------------------------------

def test_charlie_gets_404_for_acmes_report(dualkey_stack, chromium):
    ticket = dualkey_stack.tenants["acme"].tickets[0]
    context, page = log_in(chromium, dualkey_stack, "charlie")
    try:
        response = page.goto(f"{dualkey_stack.portal_url}/tickets/{ticket['id']}/")
        assert response.status == 404
        assert "Acme" not in page.content()
        assert page.locator("[data-report-root]").count() == 0
        csrf = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
        grant = context.request.post(f"{dualkey_stack.portal_url}/api/v1/tickets/{ticket['id']}/grant",
                                     headers={"X-CSRFToken": csrf, "Referer": dualkey_stack.portal_url + "/",
                                              "Content-Type": "application/json"},
                                     data="{}")
        assert grant.status == 404 and grant.json() == {"detail": "not found"}
    finally:
        context.close()
    charlie = f"user:{dualkey_stack.user_ids()['charlie']}"
    assert not [r for r in dualkey_stack.audit_rows("acme") if r["sub"] == charlie]
