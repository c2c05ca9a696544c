"""How the report page shows a report, in a real browser against the whole system.

Tickets are submitted the way an agent does (the portal's API with Acme's agent
token, one /v1/sign at Acme's gatekeeper, presigned POSTs to storage), with
report.json written by the test: a process list whose order is known, and a
report whose every field is markup and script. Bob (staff at Acme) opens them.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from gatekeeper_client.demo_report import build_demo_report
from tests.stack import CSP_RECORDER, log_in, open_report_view, wait_until_loaded

pytestmark = pytest.mark.e2e

SECTIONS = ["message", "screenshots", "details", "resources", "processes", "events", "system", "logs"]


def report_json(**fields) -> bytes:
    """A valid report.json (schema_version 1) with these fields set."""
    report = {"schema_version": 1, "submitted_at": "2026-11-23T07:25:05Z", "user": {"name": "Dana"},
              "message": "It broke.", "machine": {"hostname": "PC-7", "os": "Windows", "os_version": "11"}}
    return json.dumps({**report, **fields}).encode()


# --- the process table sorts ----------------------------------------------------------------------

PROCESSES = [
    {"pid": 300, "name": "zeta.exe", "user": "amy", "cpu_percent": 5.0, "memory_mb": 50.0, "threads": 3},
    {"pid": 20, "name": "Alpha.exe", "user": "bob", "cpu_percent": 70.0, "memory_mb": 900.5, "threads": 40},
    {"pid": 1000, "name": "bravo 10", "user": "cy", "cpu_percent": 0.5, "memory_mb": 10.0, "threads": 1},
    {"pid": 4, "name": "bravo 9", "user": "dee", "cpu_percent": 12.0, "memory_mb": 300.0, "threads": 8},
    {"pid": 77, "name": "mike.exe", "user": "eve", "memory_mb": 120.0, "threads": 2},  # no CPU figure
]
COLUMNS = ["PID", "Name", "User", "CPU %", "Memory (MB)", "Threads"]


@pytest.fixture(scope="module")
def process_view(dualkey_stack, chromium):
    ticket = dualkey_stack.submit_files("acme", [("report.json", report_json(processes=PROCESSES),
                                                  "application/json")])
    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket)
    yield view
    context.close()


def process_names(view) -> list[str]:
    return view.page.get_by_test_id("process-row").evaluate_all("rows => rows.map(r => r.cells[1].textContent)")


def sort_state(view) -> dict[str, str]:
    headers = view.page.locator("[data-testid=process-table] thead th")
    return {column: headers.nth(i).get_attribute("aria-sort") for i, column in enumerate(COLUMNS)}


def click_header(view, column: str) -> None:
    view.page.locator("[data-testid=process-table] thead th").nth(COLUMNS.index(column)).locator("button").click()


def only(column: str, direction: str) -> dict[str, str]:
    return {c: direction if c == column else "none" for c in COLUMNS}


def test_processes_come_busiest_first(process_view):
    assert process_view.banner("error") is None and process_view.banner("warning") is None
    # A process without a CPU figure goes last.
    assert process_names(process_view) == ["Alpha.exe", "bravo 9", "zeta.exe", "bravo 10", "mike.exe"]
    assert sort_state(process_view) == only("CPU %", "descending")


def test_a_click_on_a_header_sorts_by_it_and_a_second_click_reverses(process_view):
    click_header(process_view, "Name")  # text: A to Z first, ignoring case, numbers as numbers
    assert process_names(process_view) == ["Alpha.exe", "bravo 9", "bravo 10", "mike.exe", "zeta.exe"]
    assert sort_state(process_view) == only("Name", "ascending")

    click_header(process_view, "Name")
    assert process_names(process_view) == ["zeta.exe", "mike.exe", "bravo 10", "bravo 9", "Alpha.exe"]
    assert sort_state(process_view) == only("Name", "descending")

    click_header(process_view, "PID")  # numbers: largest first
    assert process_names(process_view) == ["bravo 10", "zeta.exe", "mike.exe", "Alpha.exe", "bravo 9"]
    assert sort_state(process_view) == only("PID", "descending")

    click_header(process_view, "PID")
    assert process_names(process_view) == ["bravo 9", "Alpha.exe", "mike.exe", "zeta.exe", "bravo 10"]
    assert sort_state(process_view) == only("PID", "ascending")


def test_a_blank_figure_sorts_last_in_either_direction(process_view):
    click_header(process_view, "CPU %")
    if sort_state(process_view)["CPU %"] == "descending":
        click_header(process_view, "CPU %")
    assert sort_state(process_view) == only("CPU %", "ascending")
    assert process_names(process_view) == ["bravo 10", "zeta.exe", "bravo 9", "Alpha.exe", "mike.exe"]
    assert process_view.page_errors == []


# --- hostile content is text ------------------------------------------------------------------------

# Markup, an event handler and script, in every field a user or a compromised
# machine controls. Were any of it parsed as HTML, the image would request
# /tickets/<id>/x, its handler would be blocked by the CSP (a violation), or
# __pwned would be set.
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
HOSTILE_LOG = f"first line {HOSTILE}\n</pre><script>window.__pwned=3</script><b data-hostile>bold</b>\n"


@pytest.fixture(scope="module")
def hostile_view(dualkey_stack, chromium):
    report = report_json(
        subject=f"Printer {HOSTILE}",
        user={"name": HOSTILE, "email": HOSTILE, "department": HOSTILE},
        message=f"Hello {HOSTILE}\nsecond line",
        machine={"hostname": HOSTILE, "os": HOSTILE, "os_version": "11", "note": HOSTILE},
        system_info=[{"title": HOSTILE, "rows": [[HOSTILE, HOSTILE]]}],
        processes=[{"pid": 1, "name": HOSTILE, "user": HOSTILE, "cpu_percent": 1.0}],
        event_log=[{"time": "2026-11-23T07:20:00Z", "level": "error", "source": HOSTILE, "event_id": 4,
                    "message": HOSTILE},
                   {"time": "2026-11-23T07:10:00Z", "level": "<b data-hostile>x</b>", "message": "odd level"}],
        logs=["evil.log"],
    )
    ticket = dualkey_stack.submit_files("acme", [("report.json", report, "application/json"),
                                                 ("evil.log", HOSTILE_LOG.encode(), "text/plain")])
    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket)
    yield view
    context.close()


def test_hostile_report_content_is_shown_as_literal_text(hostile_view):
    page = hostile_view.page
    assert hostile_view.banner("error") is None and hostile_view.banner("warning") is None
    assert page.get_by_test_id("subject").text_content() == f"Printer {HOSTILE}"
    assert page.get_by_test_id("message").text_content() == f"Hello {HOSTILE}\nsecond line"
    assert page.get_by_test_id("log").text_content() == HOSTILE_LOG

    [process] = page.get_by_test_id("process-row").evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    assert process[1:3] == [HOSTILE, HOSTILE]
    events = page.get_by_test_id("event-row").evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    assert [e[1:] for e in events] == [["Error", HOSTILE, "4", HOSTILE], ["Other", "—", "—", "odd level"]]

    details = page.locator("[data-section=details] td, [data-section=details] th").all_text_contents()
    assert details.count(HOSTILE) == 6  # name, email, department; host name, OS, note
    system = page.locator("[data-section=system]")
    assert system.locator("caption").all_text_contents() == [HOSTILE]
    assert system.locator("tbody tr").evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.textContent))") \
        == [[HOSTILE, HOSTILE]]


def test_hostile_report_content_injects_no_element_and_runs_no_script(dualkey_stack, hostile_view):
    page = hostile_view.page
    assert page.evaluate("window.__pwned") is None
    injected = page.evaluate("""() => ({
        images: document.querySelectorAll("[data-report-root] img").length,
        inlineScripts: document.querySelectorAll("script:not([src])").length,
        handlers: document.querySelectorAll("[onerror]").length,
        hostile: document.querySelectorAll("[data-hostile], [data-report-root] b").length})""")
    assert injected == {"images": 0, "inlineScripts": 0, "handlers": 0, "hostile": 0}
    assert hostile_view.csp_violations() == []
    assert hostile_view.page_errors == []
    # No <img src=x> ever asked for its source.
    assert not [url for _, url in hostile_view.requests if urlsplit(url).path.endswith("/x")]


# --- loading ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_ticket(dualkey_stack):
    """A demo ticket of this module's own (other modules count the audit records
    of the stack's tickets)."""
    return dualkey_stack.submit_files("acme", build_demo_report(71))


def test_the_page_shows_it_is_loading_until_the_report_arrives(dualkey_stack, chromium, demo_ticket):
    """The gatekeeper's answer is held back in the browser: until it comes, every
    section is busy and says so; once the report is in, none is."""
    acme, ticket = dualkey_stack.tenants["acme"], demo_ticket
    context, page = log_in(chromium, dualkey_stack, "bob")
    try:
        page.add_init_script(CSP_RECORDER)
        held = []
        page.route(f"{acme.gatekeeper_url}/v1/sign",
                   lambda route: held.append(route) if route.request.method == "POST" else route.continue_())
        page.goto(f"{dualkey_stack.portal_url}/tickets/{ticket['id']}/")
        for _ in range(200):
            if held:
                break
            page.wait_for_timeout(50)
        assert held, "the page never asked the gatekeeper to sign"

        sections = page.locator("[data-report-root] section[data-section]")
        busy = sections.evaluate_all("""ss => ss.filter(s => s.getAttribute("aria-busy") === "true")
                                                .map(s => [s.dataset.section, s.querySelector(".section-body").textContent])""")
        assert busy == [[name, "Loading…"] for name in SECTIONS]
        assert set(page.locator("[data-file-status] .badge").evaluate_all("bs => bs.map(b => b.dataset.status)")) \
            == {"pending"}
        assert page.get_by_test_id("subject").is_hidden()  # it comes from report.json
        assert page.locator("[data-report-root][data-loaded]").count() == 0

        held[0].continue_()
        wait_until_loaded(page)
        states = sections.evaluate_all("ss => ss.map(s => [s.dataset.section, s.getAttribute('aria-busy')])")
        assert [name for name, state in states if state == "true"] == []
        assert "Loading…" not in page.locator("[data-report-root]").text_content()
        assert page.get_by_test_id("message").is_visible()
        assert page.get_by_test_id("error-banner").is_hidden()
        assert page.evaluate("window.__cspViolations") == []
    finally:
        context.close()


def test_the_subject_comes_from_report_json_not_from_the_vendor(dualkey_stack, chromium, demo_ticket):
    ticket = demo_ticket
    report = json.loads(dualkey_stack.stored_objects("acme", ticket["prefix"] + "report.json")
                        [ticket["prefix"] + "report.json"])
    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket)
    try:
        page = view.page
        assert page.locator("h1").text_content() == f"Ticket #{ticket['number']}"
        assert page.title() == f"Ticket #{ticket['number']} · Dualkey"
        subject = page.get_by_test_id("subject")
        assert subject.is_visible() and subject.text_content() == report["subject"]
        # The HTML the portal served held no subject: the browser filled it in.
        assert report["subject"] not in page.request.get(page.url).text()
    finally:
        context.close()
