"""A move of existing tickets between two of a customer's own locations, carried by
the admin's browser, on the real stack in Chromium (portal/moves, static/js/moves).

Globex (customer-hosted) keeps its tickets at location A (its first gatekeeper and
bucket); Charlie adds location B (a second gatekeeper on its own bucket, at another
storage origin), connects it, cuts over, then moves the existing tickets from A to B
on the moves page. Along the way he pauses (nothing more is carried), resumes, and
reloads the page mid-move (it goes on from the portal's state). Then: every ticket
reads from B (its page's CSP names B alone, its files verified); A's bucket holds no
version of them; B's audit log shows Charlie's own writes of each object; and the
portal's servers carried nothing: the network guard (which refuses the portal both
gatekeepers and storage) logged no attempt, and a marker planted in a ticket's
content is in B's storage but nowhere in the portal's database or logs.

Its own stack (not the session's): a cut over changes where Globex's tickets go."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid

import pytest
import requests

from tests import support
from tests.stack import (
    csp_directives,
    cut_over_to,
    demo_script,
    log_in,
    open_report_view,
    origin,
    start_location,
    start_stack,
    versions,
    wait_for,
)
from tests.stack import move_progress as progress
from tests.test_no_report_content_at_vendor import database_contents, file_contents, occurrences

pytestmark = pytest.mark.e2e

B_ID = "gk-globex-b"
B_BUCKET = "globex-reports-b"
B_PORT = support.free_port()
C_ID = "gk-globex-c"
C_BUCKET = "globex-reports-c"
C_PORT = support.free_port()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # The network guard refuses the portal B's gatekeeper too (storage is already refused).
    stack = start_stack(tmp_path_factory.mktemp("moves"), tickets_per_tenant=1,
                        deny=(f"127.0.0.1:{B_PORT}", f"localhost:{B_PORT}", f"127.0.0.1:{C_PORT}",
                                      f"localhost:{C_PORT}"))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def location_b(stack, tmp_path_factory):
    # A is at http://localhost:<port>; B at http://127.0.0.1:<port> (the same moto, another origin).
    assert origin(stack.storage_url) != origin(stack.tenants["globex"].storage_origin)
    proc, location = start_location(stack, tmp_path_factory.mktemp("gk-globex-b"), B_ID, B_BUCKET, B_PORT,
                                    stack.storage_url)
    try:
        yield location
    finally:
        support.stop_process(proc)


@pytest.fixture(scope="module")
def location_c(stack, tmp_path_factory):
    # C shares B's storage origin (one moto) but has its own bucket and gatekeeper.
    proc, location = start_location(stack, tmp_path_factory.mktemp("gk-globex-c"), C_ID, C_BUCKET, C_PORT,
                                    stack.storage_url)
    try:
        yield location
    finally:
        support.stop_process(proc)


def test_a_move_between_two_customer_locations_runs_in_the_admins_browser(stack, location_b, chromium):
    globex = stack.tenants["globex"]
    marker = f"DKMARKER{uuid.uuid4().hex}"
    tickets = list(globex.tickets) + stack.submit("globex", count=2, seed=7) + stack.submit("globex", marker=marker,
                                                                                               seed=8)
    # Larger objects, so that the move lasts long enough to pause and reload it.
    tickets.append(stack.submit_files("globex", [(f"capture-{i}.bin", os.urandom(1024 * 1024),
                                                  "application/octet-stream") for i in range(8)]))
    s3 = stack.s3()
    held = {t["prefix"]: versions(s3, globex.bucket, t["prefix"]) for t in tickets}
    assert all(held.values())
    netguard_before = len(stack.netguard_attempts())
    charlie = f"user:{stack.user_ids()['charlie']}"

    context, page = log_in(chromium, stack, "charlie")
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        cut_over_to(page, stack, location_b)
        with page.expect_navigation():
            page.get_by_test_id("moves-link").click()
        page.locator("[name=source]").select_option(index=0)
        page.locator("[name=concurrency]").fill("1")
        with page.expect_navigation():
            page.get_by_test_id("move-submit").click()
        url = page.url.rstrip("/") + "/progress"
        total = progress(page, url)["objects"]["total"]
        assert total == sum(t["file_count"] for t in tickets)

        # Pause: once the page is back, nothing more is carried.
        wait_for(lambda: progress(page, url)["objects"]["done"] >= 1)
        with page.expect_navigation():
            page.get_by_test_id("move-pause").click()
        assert page.get_by_test_id("move-state").text_content().strip() == "Paused"
        page.get_by_test_id("carrier-status").filter(has_text="Paused").wait_for()
        time.sleep(1)
        paused = progress(page, url)
        time.sleep(3)
        assert progress(page, url)["objects"] == paused["objects"] and paused["state"] == "paused"
        assert paused["objects"]["done"] < total

        # Resume, then reload mid-move: the page goes on from the portal's state.
        with page.expect_navigation():
            page.get_by_test_id("move-resume").click()
        wait_for(lambda: progress(page, url)["objects"]["done"] > paused["objects"]["done"])
        before_reload = progress(page, url)
        assert before_reload["state"] == "running" and before_reload["objects"]["done"] < total
        page.reload()
        page.get_by_test_id("carrier-status").filter(has_text="Finished").wait_for(timeout=180_000)
        done = progress(page, url)
        assert done["state"] == "finished" and done["objects"] == {"done": total, "total": total}
        assert done["tickets"]["done"] == len(tickets) and done["failures"] == []
        assert page.get_by_test_id("move-bar").get_attribute("value") is not None
        assert errors == []
    finally:
        context.close()

    # Every ticket now reads from B, verified, under a CSP naming B alone.
    for ticket in (tickets[0], tickets[-2]):  # demo reports (the page does not fetch .bin files)
        context, view = open_report_view(chromium, stack, "charlie", ticket)
        try:
            assert csp_directives(view.csp)["connect-src"] == ["'self'", location_b["url"],
                                                               location_b["storage_origin"]]
            assert set(view.file_statuses().values()) == {"verified"}, view.file_statuses()
            assert not view.requests_to(origin(globex.gatekeeper_url))
        finally:
            context.close()

    # A holds no version of them; B holds each object, written by Charlie (B's audit log).
    with sqlite3.connect(f"file:{location_b['audit']}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM audit ORDER BY id")]
    for ticket in tickets:
        assert versions(s3, globex.bucket, ticket["prefix"]) == [], ticket
        stored = {o["Key"] for o in s3.list_objects_v2(Bucket=B_BUCKET, Prefix=ticket["prefix"])["Contents"]}
        assert len(stored) == ticket["file_count"]
        puts = {r["key"] for r in rows if r["op"] == "put" and r["outcome"] == "allow" and r["sub"] == charlie}
        assert stored <= puts
    assert {r["sub"] for r in rows if r["op"] in ("put", "get")} == {charlie}
    # A's audit log: Charlie read the objects there and erased them.
    erased = {r["key"] for r in stack.audit_rows("globex") if r["op"] == "delete" and r["sub"] == charlie}
    moved = {o["Key"] for t in tickets for o in s3.list_objects_v2(Bucket=B_BUCKET, Prefix=t["prefix"])["Contents"]}
    assert erased == moved  # key by key, exactly the moved keys: never a prefix

    # The portal's servers carried no content.
    assert stack.portal_pid in stack.netguard_armed_pids()
    assert stack.netguard_attempts()[netguard_before:] == []
    marked = s3.list_objects_v2(Bucket=B_BUCKET, Prefix=tickets[-2]["prefix"])["Contents"]
    assert any(marker.encode() in s3.get_object(Bucket=B_BUCKET, Key=o["Key"])["Body"].read() for o in marked)
    assert occurrences(marker, database_contents(stack)) == []
    assert occurrences(marker, file_contents(stack.portal_log_files())) == []
    assert requests.get(location_b["url"] + "/v1/health", timeout=10).json()["storage"] == "ok"


def test_the_customer_copies_with_its_own_tools_and_the_browser_verifies_before_switching(
        stack, location_b, location_c, chromium):
    """After the move above Globex's tickets are at B. Two more are written there; Charlie
    cuts over to C, starts a move from B, and copies the objects himself, as the S3
    Batch Operations manifest the page gives lists them (here with boto3, the
    customer's credentials), one copy altered on the way. The job page in check mode
    reads each copy back at C: the altered one's ticket fails, named, and stays at B
    with its source intact; every other ticket switches to C and its B copies go.
    Nothing is written through C's gatekeeper (only reads), and the portal carried
    nothing."""
    from urllib.parse import unquote

    from gatekeeper_client.demo_report import build_demo_report

    globex = stack.tenants["globex"]
    location_b["agent_config"].write_text(demo_script().agent_toml(stack.portal_url, location_b["url"], B_ID))
    globex.agent_config, pinned_to_a = location_b["agent_config"], globex.agent_config
    try:
        altered, intact = (stack.submit_files("globex", build_demo_report(seed)) for seed in (501, 502))
    finally:
        globex.agent_config = pinned_to_a
    s3 = stack.s3()
    netguard_before = len(stack.netguard_attempts())
    charlie = f"user:{stack.user_ids()['charlie']}"

    context, page = log_in(chromium, stack, "charlie")
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        cut_over_to(page, stack, location_c)
        page.goto(f"{stack.portal_url}/settings/moves/")
        page.locator("[name=source]").select_option(index=0)
        page.locator("[name=how][value=own_tools]").check()
        with page.expect_navigation():
            page.get_by_test_id("move-submit").click()
        job_url = page.url
        assert "?" not in job_url and page.get_by_test_id("move-carrier").count() == 0
        page.reload()  # the choice is the job's, not the URL's: opened again, still nothing carried
        assert page.get_by_test_id("move-carrier").count() == 0 and page.get_by_test_id("move-check").count() == 1
        manifest = page.request.get(stack.portal_url + page.get_by_test_id("move-manifest-csv").get_attribute("href"))
        assert manifest.ok
        rows = [line.split(",") for line in manifest.text().splitlines()]
        assert {bucket for bucket, _ in rows} == {B_BUCKET} and rows
        keys = [unquote(key) for _, key in rows]
        assert {k for k in keys if k.startswith(altered["prefix"])} == {altered["prefix"] + f["name"]
                                                                        for f in altered["files"]}
        target = altered["prefix"] + altered["files"][0]["name"]
        for key in keys:  # the customer's own copy
            if key == target:
                s3.put_object(Bucket=C_BUCKET, Key=key, Body=b"not what was written")
            else:
                s3.copy_object(Bucket=C_BUCKET, Key=key, CopySource={"Bucket": B_BUCKET, "Key": key})
        with page.expect_navigation():
            page.get_by_test_id("move-check").click()
        page.get_by_test_id("carrier-status").filter(has_text="Finished").wait_for(timeout=180_000)
        done = progress(page, job_url.rstrip("/") + "/progress")
    finally:
        context.close()

    assert done["state"] == "finished"
    assert [(f["ticket"], f["code"]) for f in done["failures"]] == [(altered["number"], "changed_at_destination")]
    assert done["tickets"]["failed"] == 1 and done["tickets"]["done"] >= 2
    # The altered ticket stayed at B, whole; the others read from C and are gone from B.
    for ticket, where in [(altered, location_b), (intact, location_c)]:
        context, view = open_report_view(chromium, stack, "charlie", ticket)
        try:
            assert csp_directives(view.csp)["connect-src"] == ["'self'", where["url"], where["storage_origin"]]
            assert set(view.file_statuses().values()) == {"verified"}, view.file_statuses()
        finally:
            context.close()
    assert len(versions(s3, B_BUCKET, altered["prefix"])) == altered["file_count"]
    assert versions(s3, B_BUCKET, intact["prefix"]) == []
    with sqlite3.connect(f"file:{location_c['audit']}?mode=ro", uri=True) as db:
        ops = {(r[0], r[1]) for r in db.execute(
            "SELECT op, sub FROM audit WHERE outcome = 'allow' AND key NOT LIKE 'tickets/\\_probe/%' ESCAPE '\\'")}
    # Outside the verification's probe object (put, read back, deleted before the cut
    # over), C's gatekeeper signed reads only (the check's gets, the report page's gets
    # and lists), all Charlie's: the customer wrote the copies itself.
    assert {op for op, _ in ops} == {"get", "list"} and {sub for _, sub in ops} == {charlie}
    assert stack.netguard_attempts()[netguard_before:] == []
