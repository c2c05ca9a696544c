"""The audit log page in a real browser, against the whole system on loopback.

Bob (staff at Acme) reads a ticket of his own making: an agent submits it, his
browser reads it through Acme's gatekeeper, which writes the audit records.
Alice (Acme's admin) then opens /audit/: her browser gets an audit grant from the
portal and searches the log at Acme's gatekeeper directly, while the portal runs
behind the network guard that refuses (and logs) any connection to a gatekeeper.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.stack import BrowserView, csp_directives, log_in, open_view, origin, wait_until_loaded

pytestmark = pytest.mark.e2e

# Alice's browser is in New York, so local time and UTC differ by hours.
TIMEZONE = "America/New_York"
COLUMNS = ["time", "outcome", "op", "key", "client_ip", "country", "sub", "name", "reason", "status",
           "user_agent", "approval"]
# A user agent is whatever a client sends: here markup and a spreadsheet formula.
HOSTILE_AGENT = '=HYPERLINK("http://evil.example/","open me")<b data-hostile>bold</b><img src=x>'




class AuditView(BrowserView):
    """One audit page as a browser saw it."""

    def wait(self) -> None:
        self.page.wait_for_selector("[data-audit-root][data-loaded=true]", state="attached", timeout=20_000)

    def search(self, **filters) -> None:
        """Fill the form (every field not named is emptied) and search."""
        page = self.page
        for name in ("since", "until", "client_ip", "sub", "key_prefix"):
            page.fill(f"[data-testid=audit-filters] [name={name}]", str(filters.get(name, "")))
        for name in ("op", "outcome"):
            page.select_option(f"[data-testid=audit-filters] [name={name}]", filters.get(name, ""))
        page.fill("[data-testid=audit-filters] [name=limit]", str(filters.get("limit", 100)))
        page.click("[data-action=search]")
        self.wait()

    def rows(self) -> list[dict]:
        return self.page.locator("[data-testid=audit-row]").evaluate_all("""(rows, columns) => rows.map(
            (row) => Object.fromEntries([...row.cells].map((cell, i) => [columns[i], cell.textContent])
              .concat([["utc", row.querySelector("time")?.getAttribute("datetime")],
                       ["time_title", row.querySelector("time")?.title],
                       ["agent_title", row.cells[10].title],
                       ["request_id", row.dataset.requestId]])))""", COLUMNS)

    def status_text(self) -> str:
        return self.page.get_by_test_id("audit-status").text_content()


def open_audit(browser, stack, username: str, query: str = "", **context_options) -> tuple[object, AuditView]:
    return open_view(AuditView, browser, stack, username, f"/audit/{query}", **context_options)


def sub_of(stack, username: str) -> str:
    return f"user:{stack.user_ids()[username]}"


def local_input(ts: float) -> str:
    """A time as Alice types it into a datetime-local field: New York wall time.
    Chromium spells a whole minute without its seconds, and Playwright's fill()
    refuses a value the field then spells differently ("Malformed value")."""
    text = dt.datetime.fromtimestamp(ts, ZoneInfo(TIMEZONE)).strftime("%Y-%m-%dT%H:%M:%S")
    return text.removesuffix(":00")


@pytest.fixture(scope="module")
def bobs_read(dualkey_stack, chromium):
    """A fresh Acme ticket that Bob's browser has read: its own audit records,
    whatever else this session's tests do."""
    [ticket] = dualkey_stack.submit("acme", seed=41)
    context, page = log_in(chromium, dualkey_stack, "bob")
    try:
        page.goto(f"{dualkey_stack.portal_url}/tickets/{ticket['id']}/")
        wait_until_loaded(page)
        assert page.get_by_test_id("error-banner").is_hidden()
    finally:
        context.close()
    bob = sub_of(dualkey_stack, "bob")
    records = [r for r in dualkey_stack.audit_rows("acme") if r["sub"] == bob and r["key"].startswith(ticket["prefix"])]
    assert {r["op"] for r in records} == {"get", "list"}
    return ticket, records


@pytest.fixture(scope="module")
def alice_view(dualkey_stack, chromium, bobs_read):
    context, view = open_audit(chromium, dualkey_stack, "alice", timezone_id=TIMEZONE)
    yield view
    context.close()


# --- Alice searches Acme's log ---------------------------------------------------------------

def test_alice_sees_the_newest_entries_first(dualkey_stack, alice_view, bobs_read):
    assert alice_view.status == 200
    alice_view.search()
    assert alice_view.page.get_by_test_id("error-banner").is_hidden()
    rows = alice_view.rows()
    assert 1 <= len(rows) <= 100
    assert [r["utc"] for r in rows] == sorted((r["utc"] for r in rows), reverse=True)
    # The newest entry is the page's own search: the gatekeeper audits it too.
    assert (rows[0]["op"], rows[0]["sub"], rows[0]["outcome"]) == ("audit", sub_of(dualkey_stack, "alice"), "allow")


def test_alice_finds_bobs_reads_by_subject(dualkey_stack, alice_view, bobs_read):
    ticket, records = bobs_read
    bob = sub_of(dualkey_stack, "bob")
    alice_view.search(sub=bob)
    rows = alice_view.rows()
    assert rows, alice_view.status_text()
    assert {r["sub"] for r in rows} == {bob}
    assert {r["name"] for r in rows} == {"Bob"}  # the grant's display name, recorded by the gatekeeper
    assert {"get", "list"} <= {r["op"] for r in rows}
    assert {(r["outcome"], r["status"], r["reason"]) for r in rows} == {("allow", "200", "—")}
    assert {r["client_ip"] for r in rows} == {"127.0.0.1"}
    assert all("Chrome/" in r["agent_title"] for r in rows)

    alice_view.search(sub=bob, key_prefix=ticket["prefix"])
    rows = alice_view.rows()
    # Exactly what Acme's gatekeeper recorded for Bob's read of this ticket.
    assert sorted((r["op"], r["key"], r["request_id"]) for r in rows) == sorted(
        (r["op"], r["key"], r["request_id"]) for r in records)
    assert [r["key"] for r in rows if r["op"] == "list"] == [ticket["prefix"]]
    # A get per file by the report page's one request (the one with the listing), and one
    # of summary.json by the ticket list Bob landed on when he signed in.
    report_request = next(r["request_id"] for r in rows if r["op"] == "list")
    gets = [r for r in rows if r["op"] == "get"]
    assert len([r for r in gets if r["request_id"] == report_request]) == ticket["file_count"]
    assert [r["key"] for r in gets if r["request_id"] != report_request] == [ticket["prefix"] + "summary.json"]
    assert "every entry" in alice_view.status_text()
    assert alice_view.page.get_by_test_id("load-more").is_hidden()


def test_times_are_local_with_utc_in_the_tooltip(dualkey_stack, alice_view, bobs_read):
    ticket, records = bobs_read
    alice_view.search(sub=sub_of(dualkey_stack, "bob"), key_prefix=ticket["prefix"], op="list")
    [row] = alice_view.rows()
    [record] = [r for r in records if r["op"] == "list"]
    ms = int(record["ts"] * 1000)  # as JavaScript's Date takes it: whole milliseconds
    seconds = dt.datetime.fromtimestamp(ms // 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    assert row["utc"] == (f"{seconds}.{ms % 1000:03d}Z" if ms % 1000 else f"{seconds}Z")
    assert row["time_title"] == f"{row['utc']} (UTC)"
    # One format on every page: the user's own zone, named (lib/dom.js formatZoned).
    local = dt.datetime.fromtimestamp(record["ts"], ZoneInfo(TIMEZONE))
    assert row["time"] == f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"  # EST or EDT


def test_the_time_filters_are_local_time(dualkey_stack, alice_view, bobs_read):
    """Alice's browser is five hours or so from UTC: a filter read as UTC would miss."""
    ticket, records = bobs_read
    mine = {"sub": sub_of(dualkey_stack, "bob"), "key_prefix": ticket["prefix"]}
    first = min(r["ts"] for r in records)
    last = max(r["ts"] for r in records)
    alice_view.search(**mine, since=local_input(int(first)), until=local_input(int(last) + 1))
    assert len(alice_view.rows()) == len(records)
    # "Until" is exclusive: up to the second the read began, nothing.
    alice_view.search(**mine, until=local_input(int(first)))
    assert alice_view.rows() == []
    assert alice_view.status_text() == "No entries match these filters."
    alice_view.search(**mine, since=local_input(int(last) + 1))
    assert alice_view.rows() == []


def test_an_address_range_finds_bobs_reads_and_a_malformed_one_says_why(alice_view, bobs_read, dualkey_stack):
    bob = sub_of(dualkey_stack, "bob")
    alice_view.search(sub=bob, client_ip="127.0.0.0/8")
    rows = alice_view.rows()
    assert rows and {r["client_ip"] for r in rows} == {"127.0.0.1"}
    alice_view.search(sub=bob, client_ip="198.51.100.0/24")
    assert alice_view.rows() == []
    page = alice_view.page
    with page.expect_response(lambda r: r.url.endswith("/v1/audit/search") and r.request.method == "POST") as answer:
        alice_view.search(client_ip="127.0.0.1/8")
    assert answer.value.status == 400 and json.loads(answer.value.request.post_data)["client_net"] == "127.0.0.1/8"
    assert "host bits set" in page.get_by_test_id("error-banner").text_content()


def test_a_bad_filter_shows_the_gatekeepers_refusal_verbatim(alice_view):
    page = alice_view.page
    with page.expect_response(lambda r: r.url.endswith("/v1/audit/search") and r.request.method == "POST") as answer:
        alice_view.search(client_ip="not-an-address")
    body = answer.value.json()
    assert answer.value.status == 400 and body["error"] == "bad_filter"
    banner = page.get_by_test_id("error-banner")
    assert banner.is_visible()
    assert banner.text_content().startswith(f"The gatekeeper refused: {body['message']} (bad_filter)")
    assert alice_view.status_text() == "Not loaded: see the message above."
    alice_view.search()
    assert banner.is_hidden()


def test_load_more_follows_next_until_the_log_is_exhausted(dualkey_stack, alice_view, bobs_read):
    ticket, records = bobs_read
    assert len(records) >= 4
    alice_view.search(sub=sub_of(dualkey_stack, "bob"), key_prefix=ticket["prefix"], limit=3)
    more = alice_view.page.get_by_test_id("load-more")
    assert len(alice_view.rows()) == 3
    loads = 0
    while more.is_visible():
        before = len(alice_view.rows())
        more.click()
        alice_view.wait()
        assert len(alice_view.rows()) == min(before + 3, len(records))
        loads += 1
        assert loads <= len(records)
    rows = alice_view.rows()
    assert loads == (len(records) - 1) // 3
    assert sorted((r["op"], r["key"]) for r in rows) == sorted((r["op"], r["key"]) for r in records)
    assert [r["utc"] for r in rows] == sorted((r["utc"] for r in rows), reverse=True)


def test_the_page_talks_only_to_the_portal_and_acmes_gatekeeper(dualkey_stack, alice_view):
    acme = dualkey_stack.tenants["acme"]
    alice_view.search(op="get")
    alice_view.search(op="list")
    portal = dualkey_stack.portal_url
    assert {origin(url) for _, url in alice_view.requests} <= {portal, acme.gatekeeper_url}
    searches = alice_view.requests_to(acme.gatekeeper_url)
    assert searches and set(searches) == {acme.gatekeeper_url + "/v1/audit/search"}
    assert {m for m, url in alice_view.requests if origin(url) == acme.gatekeeper_url} == {"POST"}
    grants = [url for m, url in alice_view.requests if m == "POST" and origin(url) == portal]
    assert grants and set(grants) == {portal + "/api/v1/audit/grant"}
    assert len(grants) < len(searches)  # one grant serves several searches


def test_the_csp_names_exactly_acmes_gatekeeper(dualkey_stack, alice_view):
    acme = dualkey_stack.tenants["acme"]
    directives = csp_directives(alice_view.csp)
    assert directives["connect-src"] == ["'self'", acme.gatekeeper_url]
    assert directives["script-src"] == ["'self'"] and directives["img-src"] == ["'self'"]
    assert acme.storage_origin not in alice_view.csp
    assert alice_view.csp_violations() == []
    assert [(kind, text) for kind, text in alice_view.console if kind == "error"
            and "400" not in text and "bad_filter" not in text] == []
    assert not alice_view.page_errors


def test_the_portal_never_connects_to_a_gatekeeper(dualkey_stack, alice_view, bobs_read):
    assert dualkey_stack.portal_pid in dualkey_stack.netguard_armed_pids()
    assert dualkey_stack.netguard_attempts() == []


# --- following `next` through short and empty pages ------------------------------------------

def fake_entry(n: int) -> dict:
    return {"ts": 1767225600 - n, "request_id": f"req{n}", "client_ip": "203.0.113.9", "country": "NL",
            "user_agent": "test", "origin": "", "op": "get", "key": f"tickets/x/{n}", "outcome": "allow",
            "reason": "", "status": 200, "jti": "j", "sub": "user:1", "kid": "k"}


class FakeGatekeeper:
    """Answers the page's audit searches from a script of pages, as a DynamoDB
    store may: short pages, even empty ones, with a cursor to follow."""

    def __init__(self, pages: list[tuple[int, list[int], str | None]]):
        self.pages = list(pages)  # (status, entry numbers, next) or (status, error body, None)
        self.bodies: list[dict] = []

    def __call__(self, route):
        if route.request.method == "OPTIONS":
            return route.fulfill(status=204, headers=self.cors(route) | {
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type"})
        self.bodies.append(json.loads(route.request.post_data))
        status, content, cursor = self.pages.pop(0)
        body = content if isinstance(content, dict) else {"entries": [fake_entry(n) for n in content], "next": cursor}
        route.fulfill(status=status, headers=self.cors(route), content_type="application/json", body=json.dumps(body))

    @staticmethod
    def cors(route) -> dict:
        return {"Access-Control-Allow-Origin": route.request.headers.get("origin", "")}


def test_a_load_follows_next_through_short_and_empty_pages(dualkey_stack, chromium):
    acme = dualkey_stack.tenants["acme"]
    gatekeeper = FakeGatekeeper([
        (200, [], "c1"), (200, [1], "c2"), (200, [], "c3"), (200, [2, 3], "c4"),  # the first load: 3 rows
        (200, [4], "c5"), (200, [], None),                                        # "Load more": the end
    ])
    context, page = log_in(chromium, dualkey_stack, "alice")
    try:
        page.route(acme.gatekeeper_url + "/v1/audit/search", gatekeeper)
        page.goto(f"{dualkey_stack.portal_url}/audit/?limit=3&outcome=allow")
        view = AuditView(page)
        view.wait()
        assert [r["request_id"] for r in view.rows()] == ["req1", "req2", "req3"]
        assert [(b.get("cursor"), b["limit"], b["outcome"]) for b in gatekeeper.bodies] == [
            (None, 3, "allow"), ("c1", 3, "allow"), ("c2", 2, "allow"), ("c3", 2, "allow")]
        more = page.get_by_test_id("load-more")
        assert more.is_visible()
        more.click()
        view.wait()
        assert [r["request_id"] for r in view.rows()] == ["req1", "req2", "req3", "req4"]
        assert [(b.get("cursor"), b["limit"]) for b in gatekeeper.bodies[4:]] == [("c4", 3), ("c5", 2)]
        assert more.is_hidden() and "every entry" in view.status_text()
    finally:
        context.close()


def test_an_expired_grant_is_renewed_once(dualkey_stack, chromium):
    acme = dualkey_stack.tenants["acme"]
    expired = {"error": "expired", "message": "the grant has expired"}
    gatekeeper = FakeGatekeeper([(401, expired, None), (200, [1], None)])
    context, page = log_in(chromium, dualkey_stack, "alice")
    grants = []
    page.on("request", lambda r: r.url.endswith("/api/v1/audit/grant") and grants.append(r.url))
    try:
        page.route(acme.gatekeeper_url + "/v1/audit/search", gatekeeper)
        page.goto(f"{dualkey_stack.portal_url}/audit/")
        view = AuditView(page)
        view.wait()
        assert [r["request_id"] for r in view.rows()] == ["req1"]
        assert len(grants) == 2 and len(gatekeeper.bodies) == 2
        assert page.get_by_test_id("error-banner").is_hidden()

        gatekeeper.pages = [(401, expired, None), (401, expired, None)]  # renewed, and still refused: shown
        view.search()
        assert "the grant has expired (expired)" in page.get_by_test_id("error-banner").text_content()
        assert len(grants) == 3
    finally:
        context.close()


# --- untrusted entries, and the CSV export ------------------------------------------------

@pytest.fixture(scope="module")
def hostile_entry(dualkey_stack):
    """A refusal whose user agent is markup and a spreadsheet formula (no grant: op "request")."""
    acme = dualkey_stack.tenants["acme"]
    r = requests.post(acme.gatekeeper_url + "/v1/audit/search", json={},
                      headers={"User-Agent": HOSTILE_AGENT}, timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "missing_grant"
    return r.headers["X-Request-Id"]


def test_entries_are_rendered_as_text(alice_view, hostile_entry):
    alice_view.search(op="request", outcome="deny", limit=500)
    [row] = [r for r in alice_view.rows() if r["request_id"] == hostile_entry]
    assert row["user_agent"] == HOSTILE_AGENT and row["agent_title"] == HOSTILE_AGENT
    assert (row["outcome"], row["reason"], row["status"], row["sub"]) == ("deny", "missing_grant", "401", "—")
    assert alice_view.page.locator("[data-hostile]").count() == 0
    assert alice_view.page.locator("[data-testid=audit-table] img").count() == 0


def test_the_csv_export_has_the_loaded_rows_with_formulas_neutralized(alice_view, hostile_entry):
    alice_view.search(op="request", outcome="deny", limit=500)
    shown = alice_view.rows()
    with alice_view.page.expect_download() as download:
        alice_view.page.get_by_test_id("export-csv").click()
    assert download.value.suggested_filename.startswith("audit-acme-")
    assert download.value.suggested_filename.endswith(".csv")
    text = open(download.value.path(), encoding="utf-8-sig", newline="").read()
    table = list(csv.DictReader(io.StringIO(text)))
    assert list(table[0]) == ["time_utc", "request_id", "outcome", "op", "key", "client_ip", "country", "sub",
                              "name", "reason", "status", "user_agent", "origin", "jti", "kid", "approval",
                              "approvers", "idp_sub", "idp_iss"]
    assert [(r["request_id"], r["time_utc"]) for r in table] == [(r["request_id"], r["utc"]) for r in shown]
    [hostile] = [r for r in table if r["request_id"] == hostile_entry]
    assert hostile["user_agent"] == "'" + HOSTILE_AGENT  # opens as text, not as a formula
    assert (hostile["op"], hostile["outcome"], hostile["status"]) == ("request", "deny", "401")


def test_csv_cells_that_start_a_formula_are_neutralized(alice_view):
    cells = alice_view.page.evaluate("""async () => {
        const { csvCell } = await import("/static/js/audit/csv.js");
        return ["=1+1", "+1", "-1", "@SUM(A1)", "\\tx", "\\rx", "plain", 'say "hi"', "a,b", "user:7", 200]
          .map(csvCell);
    }""")
    assert cells == ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "\"'\rx\"", "plain", '"say ""hi"""', '"a,b"',
                     "user:7", "200"]


# --- other tenants and other people -------------------------------------------------------------

def test_a_refused_address_is_shown_with_its_code(dualkey_stack, chromium):
    """Initech's gatekeeper refuses reads from loopback, where the browser is; an
    audit search is a read."""
    initech = dualkey_stack.tenants["initech"]
    context, page = log_in(chromium, dualkey_stack, initech.admin)
    try:
        with page.expect_response(lambda r: r.url == initech.gatekeeper_url + "/v1/audit/search"
                                  and r.request.method == "POST") as answer:
            page.goto(f"{dualkey_stack.portal_url}/audit/")
        AuditView(page).wait()
        body = answer.value.json()
        assert answer.value.status == 403 and body["error"] == "address_denied"
        text = page.get_by_test_id("error-banner").text_content()
        assert f"{body['message']} (address_denied)" in text
        assert "does not allow the address you are connecting from" in text  # the hint
        assert page.get_by_test_id("audit-row").count() == 0
        assert page.get_by_test_id("export-csv").is_disabled()
    finally:
        context.close()
    admin = sub_of(dualkey_stack, initech.admin)
    refusals = [r for r in dualkey_stack.audit_rows("initech") if r["sub"] == admin and r["op"] == "request"]
    assert refusals and {(r["outcome"], r["reason"]) for r in refusals} == {("deny", "address_denied")}


def test_charlie_searches_only_globexs_log(dualkey_stack, chromium, bobs_read):
    globex, acme = dualkey_stack.tenants["globex"], dualkey_stack.tenants["acme"]
    bob = sub_of(dualkey_stack, "bob")
    context, view = open_audit(chromium, dualkey_stack, "charlie", "?" + urlencode({"sub": bob}))
    try:
        assert csp_directives(view.csp)["connect-src"] == ["'self'", globex.gatekeeper_url]
        assert view.page.input_value("[name=sub]") == bob  # the filters come from the address
        assert view.rows() == [] and view.status_text() == "No entries match these filters."
        assert view.requests_to(acme.gatekeeper_url) == []
        assert view.requests_to(globex.gatekeeper_url, "POST") == [globex.gatekeeper_url + "/v1/audit/search"]
    finally:
        context.close()


def test_bob_cannot_open_the_audit_log(dualkey_stack, chromium):
    context, view = open_audit(chromium, dualkey_stack, "bob")
    try:
        assert view.status == 403
        assert view.page.locator("[data-audit-root]").count() == 0
        assert view.page.get_by_role("link", name="Audit log").count() == 0
    finally:
        context.close()



def test_alice_finds_a_person_by_name_and_a_ticket_by_number_or_id(dualkey_stack, alice_view, bobs_read):
    ticket, records = bobs_read
    bob = sub_of(dualkey_stack, "bob")
    alice_view.search(sub=bob, key_prefix=ticket["prefix"])
    expected = sorted((r["op"], r["key"], r["request_id"]) for r in alice_view.rows())
    assert expected
    # The name the log shows ("Bob"), the username, the ticket's number, its id with and without dashes.
    for sub in ("Bob", "bob"):
        for key in (f"#{ticket['number']}", str(ticket["number"]), ticket["id"], ticket["id"].replace("-", "").upper()):
            alice_view.search(sub=sub, key_prefix=key)
            assert sorted((r["op"], r["key"], r["request_id"]) for r in alice_view.rows()) == expected, (sub, key)
    alice_view.search(sub="Nobody Here")
    assert "No member or agent token is called" in alice_view.page.get_by_test_id("error-banner").text_content()
    alice_view.search(key_prefix="#999999")
    assert "No ticket #999999." in alice_view.page.get_by_test_id("error-banner").text_content()



def test_the_user_agent_is_shown_in_full_on_demand(dualkey_stack, alice_view, bobs_read):
    ticket, _ = bobs_read
    alice_view.search(sub=sub_of(dualkey_stack, "bob"), key_prefix=ticket["prefix"], op="list")
    cell = alice_view.page.locator("[data-testid=audit-row] td.agent").first
    toggle = cell.get_by_test_id("agent-toggle")
    assert "Chrome/" in toggle.text_content()
    cut = cell.evaluate("td => td.scrollWidth > td.clientWidth")
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert cell.evaluate("td => getComputedStyle(td).whiteSpace") == "normal"
    assert cut and cell.evaluate("td => td.scrollWidth <= td.clientWidth")  # all of it, wrapped
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "false"
