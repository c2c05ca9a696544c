"""The help desk's work on a ticket, in a real browser: a note written in the
browser and stored at the customer (never at the vendor), status and assignee
changes with their history, and every attached file downloadable."""

from __future__ import annotations

import uuid

import pytest

from tests.stack import open_report_view, wait_until_loaded

pytestmark = pytest.mark.e2e

CRASH_DUMP = bytes(range(256)) * 64  # a file the page never previews


@pytest.fixture(scope="module")
def ticket(dualkey_stack):
    from gatekeeper_client.demo_report import build_demo_report

    files = build_demo_report(401) + [("crash.dmp", CRASH_DUMP, "application/octet-stream")]
    return dualkey_stack.submit_files("acme", files)


def test_bob_writes_a_note_that_is_stored_at_the_customer_and_rendered(dualkey_stack, chromium, ticket):
    marker = f"NOTE-{uuid.uuid4().hex}"
    text = f"Called the user.\n{marker}: <b>not markup</b>"
    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket)
    try:
        page = view.page
        assert page.get_by_test_id("no-notes").is_visible()
        assert page.get_by_test_id("note-submit").is_disabled()
        page.get_by_test_id("note-input").fill(text)
        with page.expect_navigation():  # stored, then the page reloads
            page.get_by_test_id("note-submit").click()
        wait_until_loaded(page)
        note = page.get_by_test_id("note")
        assert note.count() == 1
        note.locator("[data-note-text]").wait_for()
        assert note.locator("[data-note-text]").text_content() == text  # as text, never as markup
        assert note.locator("b").count() == 0
        assert "Bob" in note.locator(".note-meta").text_content()
        assert "added a note" in page.get_by_test_id("history").text_content()
        assert view.banner("warning") is None  # the note is not "an object not in the manifest"
    finally:
        context.close()

    acme = dualkey_stack.tenants["acme"]
    stored = dualkey_stack.stored_objects("acme", ticket["prefix"] + "notes/")
    assert list(stored.values()) == [text.encode()]
    (key,) = stored
    head = dualkey_stack.s3().head_object(Bucket=acme.bucket, Key=key)
    assert head["ContentType"] == "text/plain; charset=utf-8"
    # The upload went through the customer's gatekeeper with a single-use put grant for this note alone.
    bob = f"user:{dualkey_stack.user_ids()['bob']}"
    puts = [r for r in dualkey_stack.audit_rows("acme") if r["op"] == "put" and r["sub"] == bob]
    assert [(r["key"], r["outcome"]) for r in puts] == [(key, "allow")]
    # The vendor holds that it exists, not what it says.
    assert dualkey_stack.netguard_attempts() == []
    for path in dualkey_stack.portal_log_files():
        assert marker not in path.read_text(errors="replace")


def test_alice_changes_status_and_assignee_and_the_history_shows_who_and_when(dualkey_stack, chromium, ticket):
    context, view = open_report_view(chromium, dualkey_stack, "alice", ticket)
    try:
        page = view.page
        form = page.get_by_test_id("workflow")
        bob_id = str(dualkey_stack.user_ids()["bob"])
        bob_name = form.locator(f"select[name=assignee] option[value='{bob_id}']").text_content()
        alice = page.locator(".who").text_content()
        alice_name = form.locator(f"select[name=assignee] option[value='{dualkey_stack.user_ids()[alice]}']").text_content()
        form.locator("select[name=stage]").select_option("waiting")
        form.locator("select[name=assignee]").select_option(bob_id)
        with page.expect_navigation():
            form.locator("button[type=submit]").click()
        wait_until_loaded(page)
        events = page.get_by_test_id("history-event").all_text_contents()
        assert any(alice_name in e and "New → Waiting" in e and "UTC" in e for e in events), events
        assert any(alice_name in e and f"unassigned → {bob_name}" in e for e in events), events
        assert page.get_by_test_id("workflow").locator("select[name=stage]").input_value() == "waiting"

        # From the list too: the row's own form, back to the list.
        page.goto(f"{dualkey_stack.portal_url}/tickets/")
        row = page.locator(f"[data-ticket-row][data-ticket-id='{ticket['id']}']")
        row.locator("select[name=stage]").select_option("resolved")
        with page.expect_navigation():
            row.locator("button[type=submit]").click()
        assert page.url.endswith("/tickets/")
        row = page.locator(f"[data-ticket-row][data-ticket-id='{ticket['id']}']")
        assert row.locator("select[name=stage]").input_value() == "resolved"
        assert row.locator("select[name=assignee]").input_value() == bob_id
        filtered = page.goto(f"{dualkey_stack.portal_url}/tickets/?stage=resolved")
        assert filtered.status == 200
        assert page.locator(f"[data-ticket-row][data-ticket-id='{ticket['id']}']").count() == 1
    finally:
        context.close()


def test_every_file_downloads_with_the_submitted_bytes(dualkey_stack, chromium, ticket):
    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket, accept_downloads=True)
    try:
        page = view.page
        stored = dualkey_stack.stored_objects("acme", ticket["prefix"])
        for name in ("crash.dmp", "application.log"):  # one never fetched by the page, one checked
            row = page.locator(f"[data-manifest-file][data-name='{name}']")
            with page.expect_download() as download:
                row.get_by_test_id("download").click()
            path = download.value.path()
            assert download.value.suggested_filename == name
            assert open(path, "rb").read() == stored[ticket["prefix"] + name]
        statuses = view.file_statuses()
        assert statuses["crash.dmp"] == "skipped" and statuses["application.log"] == "verified"
    finally:
        context.close()


def test_the_report_page_links_its_neighbours_and_for_admins_its_audit_trail(dualkey_stack, chromium, ticket):
    context, view = open_report_view(chromium, dualkey_stack, "alice", ticket)
    try:
        page = view.page
        link = page.get_by_test_id("audit-link")
        assert link.get_attribute("href") == f"/audit/?key_prefix={ticket['prefix']}"
        older = page.get_by_test_id("older")
        assert older.text_content().startswith("Older: #")
        assert int(older.text_content().split("#")[1]) < ticket["number"]
    finally:
        context.close()
    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket)
    try:
        assert view.page.get_by_test_id("audit-link").count() == 0  # the audit page is the admins'
    finally:
        context.close()


def test_a_text_log_can_be_searched_wrapped_and_downloaded(dualkey_stack, chromium, ticket):
    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket, accept_downloads=True)
    try:
        page = view.page
        stored = dualkey_stack.stored_objects("acme", ticket["prefix"])[ticket["prefix"] + "application.log"]
        lines = stored.decode().split("\n")
        slot = page.locator("details.log[data-file='application.log']")
        pre = slot.get_by_test_id("log")
        needle = next(w for w in lines[0].split() if len(w) > 3)
        expected = [f"{i + 1}: {line}" for i, line in enumerate(lines) if needle.lower() in line.lower()]
        slot.get_by_test_id("log-search").fill(needle)
        assert pre.text_content() == "\n".join(expected)
        assert slot.get_by_test_id("log-matches").text_content() == (
            f"{len(expected)} matching line{'' if len(expected) == 1 else 's'} of {len(lines)}")
        slot.get_by_test_id("log-search").fill("")
        assert pre.text_content() == stored.decode()
        assert pre.evaluate("p => getComputedStyle(p).whiteSpace") == "pre"
        slot.get_by_test_id("log-wrap").check()
        assert pre.evaluate("p => getComputedStyle(p).whiteSpace") == "pre-wrap"
        with page.expect_download() as download:
            slot.get_by_test_id("log-download").click()
        assert download.value.suggested_filename == "application.log"
        assert open(download.value.path(), "rb").read() == stored
    finally:
        context.close()


def test_unreachable_storage_is_said_once_and_not_as_tampering(dualkey_stack, chromium, ticket):
    acme = dualkey_stack.tenants["acme"]

    def cut_storage(page):
        page.route(f"{acme.storage_origin}/**", lambda route: route.abort("connectionrefused"))

    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket, before_load=cut_storage)
    try:
        page = view.page
        error = view.banner("error")
        assert error is not None and error.startswith("The customer's storage could not be reached.")
        assert "not a sign that anything changed" in error
        assert view.banner("warning") is None  # nothing says "Some files are not as submitted."
        text = page.locator("[data-report-root]").text_content()
        assert "not as submitted" not in text
        assert text.count("Could not reach the customer's storage") == 0  # the banner says it, once, its own way
        sections = page.locator("[data-section=message] .state").text_content()
        assert sections == "Not loaded: see the message above."
    finally:
        context.close()
