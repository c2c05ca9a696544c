"""When a report is not as submitted, the report page says so and shows the rest.

Each ticket is submitted the way an agent does (the portal's API with Acme's
agent token, one /v1/sign, presigned POSTs to storage); the test then changes
what is in storage behind everyone's back, talking to moto directly as only a
test may (the portal never can: its processes run behind the network guard).
Bob (staff at Acme) opens each one.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from gatekeeper_client.demo_report import build_demo_report
from tests.stack import open_report_view

pytestmark = pytest.mark.e2e

REPORT_SECTIONS = ["message", "details", "resources", "processes", "events", "system"]
MiB = 1024 * 1024


def demo_files(seed: int) -> list[tuple[str, bytes, str]]:
    """report.json, screenshot-1.png, screenshot-2.png, application.log, agent.log."""
    return build_demo_report(seed)


def rest_renders(view, screenshots: int = 2, logs: int = 2) -> None:
    """The parts of the report that nothing was done to are all there."""
    page = view.page
    assert page.get_by_test_id("message").is_visible()
    assert page.get_by_test_id("process-row").count() > 0
    assert page.get_by_test_id("event-row").count() > 0
    assert page.get_by_test_id("resource-chart").is_visible()
    assert page.get_by_test_id("screenshot").count() == screenshots
    assert page.get_by_test_id("log").count() == logs
    assert view.banner("error") is None


def slot_text(view, name: str) -> str:
    return view.page.locator(f"[data-file='{name}']").text_content()


@pytest.fixture(scope="module")
def acme(dualkey_stack):
    return dualkey_stack.tenants["acme"]


# --- a file changed after submission ----------------------------------------------------------

@pytest.fixture(scope="module")
def changed_view(dualkey_stack, chromium, acme):
    files = demo_files(61)
    ticket = dualkey_stack.submit_files("acme", files)
    original = dict((name, data) for name, data, _ in files)["application.log"]
    tampered = b"TAMPERED " + original[len(b"TAMPERED "):]  # the same size: only the hash tells
    dualkey_stack.s3().put_object(Bucket=acme.bucket, Key=ticket["prefix"] + "application.log", Body=tampered)
    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket)
    yield view, tampered
    context.close()


def test_a_file_whose_bytes_do_not_match_the_manifest_is_flagged(changed_view):
    view, tampered = changed_view
    banner = view.banner("warning")
    assert banner is not None
    assert "Changed since submission (SHA-256 differs from the manifest): application.log." in banner
    assert view.file_statuses() == {"report.json": "verified", "screenshot-1.png": "verified",
                                    "screenshot-2.png": "verified", "application.log": "mismatch",
                                    "agent.log": "verified", "summary.json": "verified"}
    # It is shown, flagged: what is shown is what was hashed.
    log = view.page.locator("[data-file='application.log']")
    assert log.locator("pre").text_content() == tampered.decode()
    assert log.locator(".badge").get_attribute("data-status") == "mismatch"
    rest_renders(view)


# --- a file missing from storage ------------------------------------------------------------------

@pytest.fixture(scope="module")
def missing_view(dualkey_stack, chromium, acme):
    ticket = dualkey_stack.submit_files("acme", demo_files(62))
    dualkey_stack.s3().delete_object(Bucket=acme.bucket, Key=ticket["prefix"] + "agent.log")
    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket)
    yield view
    context.close()


def test_a_file_missing_from_storage_is_flagged(missing_view):
    banner = missing_view.banner("warning")
    assert banner is not None and "Missing from the customer's storage: agent.log." in banner
    assert missing_view.file_statuses()["agent.log"] == "missing"
    assert {s for name, s in missing_view.file_statuses().items() if name != "agent.log"} == {"verified"}
    # The listing lacks it; its get was signed all the same (one /v1/sign for the
    # page), so the page asks storage, whose answer is shown. (S3 says NoSuchKey;
    # moto, for this presigned URL, SignatureDoesNotMatch.)
    text = slot_text(missing_view, "agent.log")
    assert "Not loaded: it is not in the customer's storage (storage answered " in text, text
    rest_renders(missing_view)


# --- a malformed report.json ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def malformed_view(dualkey_stack, chromium):
    files = [(name, b'{"schema_version": 1, "message": "cut sh' if name == "report.json" else data, kind)
             for name, data, kind in demo_files(63)]
    ticket = dualkey_stack.submit_files("acme", files)
    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket)
    yield view
    context.close()


def test_a_malformed_report_json_is_named_and_the_attachments_still_show(malformed_view):
    page = malformed_view.page
    banner = malformed_view.banner("warning")
    assert banner is not None
    assert "report.json could not be read: it is not valid JSON." in banner, banner
    assert malformed_view.banner("error") is None
    for name in REPORT_SECTIONS:
        section = page.locator(f"[data-section={name}]")
        assert section.get_attribute("data-state") == "error"
        assert section.locator(".section-body").text_content() == "report.json could not be read: it is not valid JSON."
    assert page.get_by_test_id("subject").is_hidden()
    # The manifest, not report.json, decides what is shown: the screenshots and
    # logs are all there, and every file is what was submitted.
    assert page.get_by_test_id("screenshot").count() == 2
    assert sorted(page.locator("details.log").evaluate_all("ds => ds.map(d => d.dataset.file)")) \
        == ["agent.log", "application.log"]
    assert set(malformed_view.file_statuses().values()) == {"verified"}
    assert malformed_view.page_errors == []


# --- storage refuses: its XML error code is shown ---------------------------------------------------------

def s3_error(code: str, message: str, request_id: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>")


@pytest.fixture(scope="module")
def refused_view(dualkey_stack, chromium, acme):
    """Storage's refusals, faked in the browser (moto checks no signatures, so it
    never refuses): S3's own XML bodies, one with markup in its message, and an
    HTML page from some proxy in front of it."""
    ticket = dualkey_stack.submit_files("acme", demo_files(65))
    cors = {"Access-Control-Allow-Origin": dualkey_stack.portal_url, "Vary": "Origin"}
    answers = {
        "application.log": (403, "application/xml",
                            s3_error("AccessDenied", "Access &lt;b data-hostile&gt;Denied&lt;/b&gt;", "REQ-1")),
        "screenshot-2.png": (403, "application/xml",
                             s3_error("RequestTimeTooSkewed", "The difference between the request time and the "
                                      "current time is too large.", "REQ-2")),
        "agent.log": (502, "text/html", "<html><body><h1>Bad gateway</h1></body></html>"),
        # Listed, then gone by the time it is fetched.
        "screenshot-1.png": (404, "application/xml",
                             s3_error("NoSuchKey", "The specified key does not exist.", "REQ-3")),
    }

    def storage(route):
        name = urlsplit(route.request.url).path.rsplit("/", 1)[-1]
        if route.request.method == "GET" and name in answers:
            status, content_type, body = answers[name]
            route.fulfill(status=status, headers={**cors, "Content-Type": content_type}, body=body)
        else:
            route.continue_()

    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket,
                                     before_load=lambda page: page.route(f"{acme.storage_origin}/**", storage))
    yield view
    context.close()


def test_storage_refusals_show_storages_own_code(refused_view):
    banner = refused_view.banner("warning")
    assert banner is not None
    # Manifest order (by name), grouped by storage's code.
    assert "Could not be fetched: agent.log; application.log (AccessDenied); " \
           "screenshot-2.png (RequestTimeTooSkewed)." in banner, banner
    assert "check the gatekeeper's clock" in banner  # the hint for the clock skew
    assert "Missing from the customer's storage: screenshot-1.png." in banner
    statuses = refused_view.file_statuses()
    assert [statuses[n] for n in ("application.log", "screenshot-2.png", "agent.log")] == ["error"] * 3
    assert (statuses["screenshot-1.png"], statuses["report.json"]) == ("missing", "verified")

    log = slot_text(refused_view, "application.log")
    assert "Not loaded: The customer's storage refused: Access <b data-hostile>Denied</b> (AccessDenied)" in log, log
    assert "Storage request id: REQ-1." in log
    shot = slot_text(refused_view, "screenshot-2.png")
    assert "(RequestTimeTooSkewed)" in shot and "Storage request id: REQ-2." in shot
    assert "Not loaded: The customer's storage refused (HTTP 502)." in slot_text(refused_view, "agent.log")
    assert "Not loaded: it is not in the customer's storage (storage answered NoSuchKey)." \
        in slot_text(refused_view, "screenshot-1.png")

    assert refused_view.page.locator("[data-hostile], [data-report-root] b").count() == 0
    assert refused_view.page.get_by_test_id("message").is_visible()
    assert refused_view.page.get_by_test_id("screenshot").count() == 0
    assert refused_view.page.get_by_test_id("process-row").count() > 0
    assert refused_view.csp_violations() == [] and refused_view.page_errors == []


# --- the audit log shows reads that happened, and only those ------------------------------------------------

@pytest.fixture(scope="module")
def unfetched_view(dualkey_stack, chromium):
    """A ticket with files the page never opens: a type it does not show, a JSON
    file that is not report.json, and a log over its 10 MiB limit."""
    demo = {name: (data, kind) for name, data, kind in demo_files(64)}
    files = [("report.json", *demo["report.json"]), ("screenshot-1.png", *demo["screenshot-1.png"]),
             ("application.log", *demo["application.log"]),
             ("memory.dmp", bytes(range(256)) * 16, "application/octet-stream"),
             ("settings.json", json.dumps({"theme": "dark"}).encode(), "application/json"),
             ("huge.log", b"x" * (10 * MiB + 1), "text/plain")]
    ticket = dualkey_stack.submit_files("acme", files)
    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket)
    yield view, ticket
    context.close()


def test_the_page_fetches_only_what_it_shows(dualkey_stack, acme, unfetched_view):
    view, ticket = unfetched_view
    assert view.banner("error") is None and view.banner("warning") is None
    assert view.file_statuses() == {
        "application.log": "verified", "huge.log": "skipped", "memory.dmp": "skipped",
        "report.json": "verified", "screenshot-1.png": "verified", "settings.json": "skipped",
        "summary.json": "verified"}
    assert "it is larger than this page's limit of 10 MB" in slot_text(view, "huge.log")
    fetched = sorted(urlsplit(url).path for url in view.requests_to(acme.storage_origin, "GET"))
    assert fetched == [f"/{acme.bucket}/{ticket['prefix']}{name}"
                       for name in ("application.log", "report.json", "screenshot-1.png", "summary.json")]


def test_the_audit_log_shows_a_get_only_for_each_file_the_page_fetched(dualkey_stack, unfetched_view):
    view, ticket = unfetched_view
    bob = f"user:{dualkey_stack.user_ids()['bob']}"
    reads = [r for r in dualkey_stack.audit_rows("acme") if r["sub"] == bob and r["key"].startswith(ticket["prefix"])]
    # The report page's request is the one with the listing. (Signing in lands on the
    # ticket list, whose own request reads each ticket's summary.json: before the view recorded.)
    report_request = {r["request_id"] for r in reads if r["op"] == "list"}
    listing_reads = [r for r in reads if r["request_id"] not in report_request]
    assert {(r["op"], r["key"]) for r in listing_reads} <= {("get", ticket["prefix"] + "summary.json")}
    reads = [r for r in reads if r["request_id"] in report_request]
    assert len(report_request) == 1
    assert sorted((r["op"], r["key"]) for r in reads) == [
        ("get", ticket["prefix"] + "application.log"), ("get", ticket["prefix"] + "report.json"),
        ("get", ticket["prefix"] + "screenshot-1.png"), ("get", ticket["prefix"] + "summary.json"),
        ("list", ticket["prefix"])]
    assert {r["outcome"] for r in reads} == {"allow"}
    # And each of those was read: one storage GET per audited get.
    audited = sorted(f"/{dualkey_stack.tenants['acme'].bucket}/{r['key']}" for r in reads if r["op"] == "get")
    assert audited == sorted(urlsplit(url).path for url in view.requests_to(dualkey_stack.tenants["acme"].storage_origin, "GET"))
