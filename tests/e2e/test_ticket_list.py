"""The ticket list in a real browser: subjects, requesters and machines read from
the customer's storage while the portal cannot reach a gatekeeper or storage.

Bob (staff at Acme) opens the list. The server renders every row from what the
vendor holds; the page then gets ONE summary grant from the portal for all the
page's tickets (protocol 2, a scope listing their prefixes), makes ONE /v1/sign
call at Acme's gatekeeper, and fetches each summary.json straight from storage.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import pytest

from tests.stack import BrowserView, open_view, origin

pytestmark = pytest.mark.e2e


class ListView(BrowserView):
    def wait(self) -> None:
        self.page.wait_for_selector("[data-ticket-list][data-loaded=true]", state="attached", timeout=20_000)

    def row(self, ticket: dict):
        return self.page.locator(f"[data-ticket-row][data-ticket-id='{ticket['id']}']")

    def cells(self, ticket: dict) -> dict[str, str]:
        return dict(self.row(ticket).locator("[data-summary]").evaluate_all(
            "tds => tds.map(td => [td.dataset.summary, td.textContent.trim()])"))


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture(scope="module")
def tickets(dualkey_stack):
    """Acme's tickets for this module: three the current agent submitted (each with
    a summary.json), one an older agent's (no summary), one whose summary was
    changed in storage after submission."""
    current = dualkey_stack.submit("acme", count=3, seed=301)
    older = dualkey_stack.submit_files("acme", [("agent.log", b"an older agent's ticket\n", "text/plain")])
    (tampered,) = dualkey_stack.submit("acme", seed=311)
    s3, bucket = dualkey_stack.s3(), dualkey_stack.tenants["acme"].bucket
    s3.put_object(Bucket=bucket, Key=tampered["prefix"] + "summary.json",
                  Body=b'{"schema_version":1,"subject":"Not what was submitted"}')
    return {"current": current, "older": older, "tampered": tampered}


@pytest.fixture(scope="module")
def bob_list(dualkey_stack, chromium, tickets):
    context, view = open_view(ListView, chromium, dualkey_stack, "bob", "/tickets/")
    yield view
    context.close()


def stored_summary(stack, ticket) -> dict:
    return json.loads(stack.stored_objects("acme", ticket["prefix"] + "summary.json")[ticket["prefix"] + "summary.json"])


def test_each_row_shows_the_subject_requester_and_machine_from_storage(dualkey_stack, bob_list, tickets):
    assert bob_list.status == 200
    for ticket in tickets["current"]:
        summary = stored_summary(dualkey_stack, ticket)
        cells = bob_list.cells(ticket)
        assert cells["subject"] == summary["subject"]
        assert cells["requester"] == f"{summary['requester']['name']} · {summary['requester']['email']}"
        assert cells["machine"] == f"{summary['machine']['hostname']} · {summary['machine']['os']}"
    assert bob_list.page.get_by_test_id("summary-banner").is_hidden()
    assert not bob_list.page_errors and bob_list.csp_violations() == []


def test_one_grant_call_one_sign_call_then_a_fetch_per_summary(dualkey_stack, bob_list):
    acme = dualkey_stack.tenants["acme"]
    grant_calls = [u for u in bob_list.requests_to(dualkey_stack.portal_url, "POST")
                   if urlsplit(u).path == "/api/v1/tickets/summary-grant"]
    assert len(grant_calls) == 1
    assert bob_list.requests_to(acme.gatekeeper_url, "POST") == [acme.gatekeeper_url + "/v1/sign"]
    rows_with_summary = bob_list.page.locator("[data-ticket-row][data-summary-key]").count()
    fetched = [urlsplit(u).path for u in bob_list.requests_to(acme.storage_origin, "GET")]
    assert len(fetched) == rows_with_summary and all(p.endswith("/summary.json") for p in fetched)
    others = [u for _, u in bob_list.requests if origin(u) not in
              (dualkey_stack.portal_url, acme.gatekeeper_url, acme.storage_origin)]
    assert others == []


def test_the_portal_never_connected_to_a_gatekeeper_or_storage(dualkey_stack, bob_list):
    assert dualkey_stack.portal_pid in dualkey_stack.netguard_armed_pids()
    assert dualkey_stack.netguard_attempts() == []


def test_the_customers_audit_log_has_one_request_of_gets_under_the_pages_prefixes(dualkey_stack, bob_list, tickets):
    bob = f"user:{dualkey_stack.user_ids()['bob']}"
    rows = [r for r in dualkey_stack.audit_rows("acme") if r["sub"] == bob and r["key"].endswith("/summary.json")]
    assert rows and {(r["op"], r["outcome"]) for r in rows} == {("get", "allow")}
    # (Signing in lands on the list too: each load of it is one request of the gets.)
    last = [r for r in rows if r["request_id"] == rows[-1]["request_id"]]
    keys = [r["key"] for r in last]
    assert sorted(keys) == sorted(bob_list.page.locator("[data-ticket-row][data-summary-key]").evaluate_all(
        "rows => rows.map(r => r.dataset.summaryKey)"))
    assert {t["prefix"] + "summary.json" for t in tickets["current"]} <= set(keys)


def test_an_older_agents_ticket_says_once_that_it_has_no_summary(bob_list, tickets):
    cells = bob_list.cells(tickets["older"])
    assert list(cells) == ["none"]
    assert cells["none"].startswith("No summary: submitted by an older agent")


def test_a_summary_changed_in_storage_says_why_and_is_not_shown(bob_list, tickets):
    cells = bob_list.cells(tickets["tampered"])
    assert list(cells) == ["subject"]  # one message in the row, not three
    assert "changed after submission" in cells["subject"]
    assert "Not what was submitted" not in bob_list.row(tickets["tampered"]).text_content()


def test_search_filters_the_loaded_summaries_and_says_what_it_searches(dualkey_stack, bob_list, tickets):
    page = bob_list.page
    target = tickets["current"][0]
    subject = stored_summary(dualkey_stack, target)["subject"]
    search = page.get_by_test_id("summary-search")
    assert search.is_enabled()
    search.fill(subject)
    visible = page.locator("[data-ticket-row]:visible")
    ids = visible.evaluate_all("rows => rows.map(r => r.dataset.ticketId)")
    assert target["id"] in ids and tickets["older"]["id"] not in ids
    scope = page.get_by_test_id("search-scope").text_content()
    loaded = page.locator("[data-ticket-row][data-summary=shown]").count()
    assert f"Searching the {loaded} tickets on this page" in scope and "match" in scope
    search.fill("")
    assert page.locator("[data-ticket-row]:visible").count() == page.locator("[data-ticket-row]").count()


def test_the_summary_grant_names_exactly_the_pages_tickets_and_only_gets(dualkey_stack, chromium, tickets):
    context, view = open_view(ListView, chromium, dualkey_stack, "bob", "/tickets/",
                              before_load=lambda page: page.route("**/api/v1/tickets/summary-grant",
                                                                  lambda route: _record(route, seen)))
    try:
        ids = view.page.locator("[data-ticket-row][data-summary-key]").evaluate_all(
            "rows => rows.map(r => r.dataset.ticketId)")
        assert seen["request"] == {"tickets": ids}
        claims = claims_of(seen["response"]["grant"])
        assert claims["scope"]["ops"] == ["get"]
        assert claims["scope"]["prefixes"] == [f"tickets/{i.replace('-', '')}/" for i in ids]
    finally:
        context.close()


seen: dict = {}


def _record(route, store):
    store["request"] = json.loads(route.request.post_data)
    response = route.fetch()
    store["response"] = response.json()
    route.fulfill(response=response)


def test_a_gatekeeper_refusal_is_said_once_above_the_list(dualkey_stack, chromium):
    initech = dualkey_stack.tenants["initech"]  # its gatekeeper refuses reads from loopback
    dualkey_stack.submit("initech", seed=321)
    context, view = open_view(ListView, chromium, dualkey_stack, initech.admin, "/tickets/")
    try:
        banner = view.page.get_by_test_id("summary-banner")
        assert banner.is_visible()
        assert banner.text_content().count("address_denied") == 1
        rows = view.page.locator("[data-ticket-row][data-summary-key]")
        assert rows.count() >= 1
        for text in rows.locator("[data-summary=subject]").all_text_contents():
            assert text == "Summary not shown: see the message above the list."
    finally:
        context.close()


def test_times_are_shown_in_the_users_zone_with_the_zone_named(dualkey_stack, chromium, tickets):
    import datetime as dt
    from zoneinfo import ZoneInfo

    context, view = open_view(ListView, chromium, dualkey_stack, "bob", "/tickets/", timezone_id="Asia/Tokyo")
    try:
        cell = view.row(tickets["older"]).locator("time")
        utc = dt.datetime.fromisoformat(cell.get_attribute("datetime"))
        tokyo = utc.astimezone(ZoneInfo("Asia/Tokyo"))
        assert cell.text_content() == f"{tokyo:%Y-%m-%d %H:%M} GMT+9"
        assert cell.get_attribute("title") == f"{utc:%Y-%m-%d %H:%M} UTC"  # the server's text, kept
    finally:
        context.close()


def test_disabled_buttons_look_disabled(dualkey_stack, chromium, tickets):
    context, view = open_view(ListView, chromium, dualkey_stack, "bob", "/tickets/")
    try:
        page = view.page
        style = "b => [getComputedStyle(b).opacity, getComputedStyle(b).cursor]"
        page.evaluate("""() => { const b = document.createElement("button"); b.id = "probe"; b.textContent = "x";
                                 document.body.append(b); }""")
        enabled = page.locator("#probe").evaluate(style)
        page.locator("#probe").evaluate("b => { b.disabled = true; }")
        assert enabled == ["1", "pointer"]
        assert page.locator("#probe").evaluate(style) == ["0.5", "not-allowed"]
    finally:
        context.close()


def test_the_favicon_is_served(dualkey_stack, bob_list):
    href = bob_list.page.locator("link[rel=icon]").get_attribute("href")
    response = bob_list.page.request.get(dualkey_stack.portal_url + href)
    assert response.status == 200 and b"<svg" in response.body()
