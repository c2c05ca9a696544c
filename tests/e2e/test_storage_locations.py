"""Storage locations on the real stack, in Chromium: Acme's ticket is at location A
(its first gatekeeper); Alice adds location B (a second gatekeeper, on its own
bucket and storage origin), connects it from her browser (which fetches B's
health and posts it to the portal), cuts over with the confirmation, and an
agent pinned to B submits a ticket that lands there. Both tickets then render,
each read through its own location's gatekeeper and storage under a CSP that
names that location alone; the agent still pinned to A is refused by its pin.

Its own stack (not the session's): a cut over would move the shared Acme's new
tickets for every later test."""

from __future__ import annotations

import tomllib

import pytest
import requests

from tests import support
from tests.stack import (
    PYTHON,
    csp_directives,
    demo_script,
    log_in,
    open_report_view,
    origin,
    start_stack,
    verify_in_browser,
)

pytestmark = pytest.mark.e2e

B_ID = "gk-acme-b"
B_BUCKET = "acme-reports-b"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = start_stack(tmp_path_factory.mktemp("locations"), tickets_per_tenant=1)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def location_b(stack, tmp_path_factory):
    """A second gatekeeper for Acme: its own bucket, reached at another origin."""
    acme = stack.tenants["acme"]
    workdir = tmp_path_factory.mktemp("gk-b")
    storage_b = stack.storage_url.replace("127.0.0.1", "localhost")
    s3 = stack.s3()
    s3.create_bucket(Bucket=B_BUCKET)
    s3.put_bucket_cors(Bucket=B_BUCKET, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": [stack.portal_url], "AllowedMethods": ["GET", "POST"], "AllowedHeaders": ["*"],
        "MaxAgeSeconds": 600}]})
    config = workdir / "gk-b.toml"
    issuer = tomllib.loads(acme.config_path.read_text())["issuer"]
    config.write_text(demo_script().gatekeeper_toml({**acme.seeded, "gatekeeper_id": B_ID, "bucket": B_BUCKET},
                                                    issuer, stack.portal_url, storage_b,
                                                    workdir / "audit.db"))
    port = support.free_port()
    url = f"http://127.0.0.1:{port}"
    proc = support.start_process([PYTHON, "-m", "gatekeeper", "serve", "--config", str(config), "--port", str(port)],
                                 url + "/v1/health", env=support.AWS_ENV, log_path=workdir / "gk-b.log")
    try:
        yield {"url": url, "storage_origin": storage_b, "agent_config": workdir / "agent-b.toml"}
    finally:
        support.stop_process(proc)


def test_cut_over_to_a_second_gatekeeper_keeps_the_old_ticket_readable(stack, location_b, chromium):
    acme = stack.tenants["acme"]
    old = acme.tickets[0]
    assert requests.get(location_b["url"] + "/v1/health", timeout=10).json()["storage"] == "ok"

    context, page = log_in(chromium, stack, "alice")
    try:
        page.on("dialog", lambda dialog: dialog.accept())  # the data-confirm of the cut over
        page.goto(f"{stack.portal_url}/settings/")
        form = page.get_by_test_id("location-add")
        form.locator("[name=kind]").select_option("customer")
        form.locator("[name=gatekeeper_url]").fill(location_b["url"])
        form.locator("[name=gatekeeper_id]").fill(B_ID)
        form.locator("[name=storage_origin]").fill(location_b["storage_origin"])
        form.locator("[name=chosen_bucket]").fill("acme-reports-chosen")  # not what B reports
        with page.expect_navigation():
            form.locator("[type=submit]").click()
        row = page.locator(f"[data-location-row][data-gatekeeper-url='{location_b['url']}']")
        assert row.get_attribute("data-state") == "connecting"

        # Connect: the browser fetches B's health and posts it; the page reloads with it.
        with page.expect_navigation():
            row.locator("[data-action=connect-location]").click()
        row = page.locator(f"[data-location-row][data-gatekeeper-url='{location_b['url']}']")
        reported = row.get_by_test_id("location-reported").text_content()
        assert B_BUCKET in reported and "storage ok" in " ".join(reported.split())
        assert row.get_by_test_id("location-mismatch").text_content() == (
            f"You chose bucket acme-reports-chosen, the gatekeeper reports {B_BUCKET}.")

        # Verify it (the settings page's round trip through B): a cut over needs it.
        checks = verify_in_browser(page)
        assert page.locator("[data-onboarding-verify]").get_attribute("data-verdict") == "pass", checks
        row = page.locator(f"[data-location-row][data-gatekeeper-url='{location_b['url']}']")
        row.locator("[name=confirm]").fill(B_ID)
        with page.expect_navigation():
            row.locator("[data-action=cut-over]").click()
        states = dict(page.locator("[data-location-row]").evaluate_all(
            "rows => rows.map(r => [r.dataset.gatekeeperUrl, r.dataset.state])"))
        assert states == {acme.gatekeeper_url: "draining", location_b["url"]: "active"}
        assert "New tickets now go to gk-acme-b" in page.content()
    finally:
        context.close()

    # The agent pinned to A refuses the portal's new answer (B); one pinned to B submits there.
    with pytest.raises(RuntimeError) as refused:
        stack.submit("acme")
    assert "the portal names gatekeeper" in str(refused.value) and B_ID in str(refused.value), refused.value
    location_b["agent_config"].write_text(demo_script().agent_toml(stack.portal_url, location_b["url"], B_ID))
    acme.agent_config, pinned_to_a = location_b["agent_config"], acme.agent_config
    try:
        [new] = stack.submit("acme")
    finally:
        acme.agent_config = pinned_to_a
    s3 = stack.s3()
    assert s3.list_objects_v2(Bucket=B_BUCKET, Prefix=new["prefix"])["KeyCount"] == new["file_count"]
    assert s3.list_objects_v2(Bucket=acme.bucket, Prefix=new["prefix"])["KeyCount"] == 0

    for ticket, gatekeeper, storage in [(old, acme.gatekeeper_url, acme.storage_origin),
                                        (new, location_b["url"], location_b["storage_origin"])]:
        context, view = open_report_view(chromium, stack, "alice", ticket)
        try:
            assert view.status == 200
            assert csp_directives(view.csp)["connect-src"] == ["'self'", gatekeeper, storage]
            assert set(view.file_statuses().values()) == {"verified"}, view.file_statuses()
            assert view.banner("error") is None
            assert view.requests_to(origin(gatekeeper), "POST")
            assert view.requests_to(origin(storage))
            others = {acme.gatekeeper_url, location_b["url"]} - {gatekeeper}
            assert not any(view.requests_to(origin(other)) for other in others)
            assert view.csp_violations() == []
        finally:
            context.close()
