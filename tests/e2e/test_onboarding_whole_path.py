"""Onboarding's whole path on the real stack, in Chromium, as people do it.

Vendor support (victor) creates the tenant Newco and invites its admin; Nora
accepts the invitation (mail over real SMTP), chooses a password and signs in.
Newco starts vendor-hosted: its first gatekeeper (A, on the vendor's bucket) is
started from the gatekeeper.toml the settings page offers for download, verified
from Nora's browser, and an agent uploads the old ticket through it. Then Newco
moves to its own gatekeeper: Nora adds location B, and the checklist follows it —
the Launch stack link's parameters are B's (the quick-create URL parsed: region,
template URL, every parameter), the download is B's; a gatekeeper process started
from that download, on its own moto bucket that does not exist yet, is connected,
and the verification fails with its own message and fix (the bucket is missing)
while the cut over is refused; the bucket created, it is connected again,
verified, and cut over to. A new ticket (agent upload) then lands in B's bucket
while the old ticket still renders from A's, each under a CSP naming its own
location alone.

The other failures the issue names have their own browser tests on real
gatekeeper processes, not repeated here: wrong CORS, wrong id, untrusted key,
skewed clock (under faketime) and failing audit store in
tests/e2e/test_onboarding_verify.py; the missing bucket there too.

Its own stack (as tests/e2e/test_storage_locations.py): the new tenant and its
locations would otherwise be in the session's stack for every later test.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from gatekeeper import VERSION
from gatekeeper_client.agent import load_config, submit_ticket
from gatekeeper_client.demo_report import build_demo_report
from tests import support
from tests.e2e.test_password_reset import wait_for_mail
from tests.stack import (
    PYTHON,
    ROOT,
    csp_directives,
    demo_script,
    log_in,
    open_report_view,
    origin,
    start_stack,
    verdict,
)
from tests.stack import verify_in_browser as verify

pytestmark = pytest.mark.e2e

SLUG, ADMIN, ADMIN_EMAIL = "newco", "nora", "nora@newco.example"
A_ID, A_BUCKET = "gk-newco", "newco-vendor"          # vendor-hosted; A_ID is the download's default
B_ID, B_BUCKET = "gk-newco-own", "newco-own"         # the customer's own
# The audit file of the download (the systemd unit's StateDirectory): here, the test's directory.
DOWNLOADED_AUDIT = 'url = "sqlite:///var/lib/dualkey-gatekeeper/audit.db"'


# The ports of the gatekeepers this test starts, known before the stack: the portal's
# network guard refuses them too (the portal never contacts a gatekeeper).
PORTS = {"gk-a": support.free_port(), "gk-b": support.free_port()}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = start_stack(tmp_path_factory.mktemp("whole-path"), tickets_per_tenant=0,
                        deny=tuple(f"127.0.0.1:{port}" for port in PORTS.values()))
    try:
        yield stack
    finally:
        stack.stop()


class Gatekeepers:
    """The gatekeeper processes this test starts, from downloaded configurations."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.processes = {}

    def start(self, name: str, config_text: str, port: int) -> str:
        config = self.workdir / f"{name}.toml"
        config.write_text(config_text)
        # As the download's own header says: check it, create the audit store, serve.
        for command in ("check-config", "init-audit"):
            done = subprocess.run([PYTHON, "-m", "gatekeeper", command, "--config", str(config)], cwd=ROOT,
                                  env={**os.environ, **support.AWS_ENV}, capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        url = f"http://127.0.0.1:{port}"
        self.processes[name] = support.start_process(
            [PYTHON, "-m", "gatekeeper", "serve", "--config", str(config), "--port", str(port)], url + "/v1/health",
            log_path=self.workdir / f"{name}.log")
        return url

    def restart(self, name: str, port: int) -> None:
        support.stop_process(self.processes.pop(name))
        config = self.workdir / f"{name}.toml"
        self.processes[name] = support.start_process(
            [PYTHON, "-m", "gatekeeper", "serve", "--config", str(config), "--port", str(port)],
            f"http://127.0.0.1:{port}/v1/health", log_path=self.workdir / f"{name}-2.log")

    def stop(self) -> None:
        for proc in self.processes.values():
            support.stop_process(proc)


@pytest.fixture(scope="module")
def gatekeepers(tmp_path_factory):
    started = Gatekeepers(tmp_path_factory.mktemp("downloaded"))
    try:
        yield started
    finally:
        started.stop()


def download(page, stack, workdir, name: str) -> tuple[str, dict]:
    """The settings page's gatekeeper.toml, with only its audit file moved here."""
    response = page.request.get(f"{stack.portal_url}/settings/gatekeeper.toml")
    assert response.status == 200
    assert response.headers["content-disposition"] == f'attachment; filename="gatekeeper-{SLUG}.toml"'
    text = response.text()
    assert "FILL-IN-" not in text, text  # the portal knew every value it must
    assert text.count(DOWNLOADED_AUDIT) == 1
    text = text.replace(DOWNLOADED_AUDIT, f'url = "sqlite:///{workdir / (name + "-audit.db")}"')
    return text, tomllib.loads(text)


def steps(page) -> dict[str, str]:
    return dict(page.locator("[data-testid=onboarding-steps] > li").evaluate_all(
        "items => items.map(li => [li.dataset.step, li.dataset.state])"))


def row(page, url: str):
    return page.locator(f"[data-location-row][data-gatekeeper-url='{url}']")


def connect(page, url: str) -> None:
    with page.expect_navigation():  # the browser posts the health; the page reloads with it
        row(page, url).locator("[data-action=connect-location]").click()


def submit(stack, config_path, token: str, seed: int) -> dict:
    """One ticket, uploaded the way an agent does, through the gatekeeper its config pins."""
    config = load_config(config_path, env={}, token=token)
    ticket = submit_ticket(config.portal_url, config.token, build_demo_report(seed), pin=config.pin)
    assert ticket["status"] == "complete", ticket
    return ticket


def test_from_a_new_tenant_to_its_own_gatekeeper(stack, gatekeepers, chromium):
    s3 = stack.s3()
    workdir = gatekeepers.workdir
    vendor_storage = stack.storage_url                                   # A's storage origin
    own_storage = stack.storage_url.replace("127.0.0.1", "localhost")    # B's: another origin, same moto
    a_port, b_port = PORTS["gk-a"], PORTS["gk-b"]
    a_url, b_url = f"http://127.0.0.1:{a_port}", f"http://127.0.0.1:{b_port}"

    # --- vendor support creates the tenant and invites its admin ----------------------------
    support_context, desk = log_in(chromium, stack, "victor")
    try:
        desk.goto(f"{stack.portal_url}/support/tenants/new/")
        desk.fill("[name=slug]", SLUG)
        desk.fill("[name=name]", "Newco GmbH")
        desk.select_option("[name=data_location]", "vendor")
        desk.fill("[name=region]", "us-east-1")
        with desk.expect_navigation():
            desk.get_by_role("button", name="Create tenant").click()
        assert desk.url == f"{stack.portal_url}/support/tenants/{SLUG}/"
        invite = desk.locator(f"form[action='/support/tenants/{SLUG}/invite/']")
        invite.locator("[name=username]").fill(ADMIN)
        invite.locator("[name=email]").fill(ADMIN_EMAIL)
        with desk.expect_navigation():
            invite.locator("[type=submit]").click()
    finally:
        support_context.close()

    # --- the admin accepts (the link came by mail), chooses a password, signs in ------------
    body = wait_for_mail(stack, ADMIN_EMAIL).get_body(("plain",)).get_content()
    link = re.search(r"https?://\S+", body).group(0)
    assert link.startswith(f"{stack.portal_url}/invitations/accept/?token="), link
    invited = chromium.new_context()
    try:
        page = invited.new_page()
        page.goto(link)
        page.fill("input[name=new_password1]", stack.password)
        page.fill("input[name=new_password2]", stack.password)
        with page.expect_navigation():
            page.click("[type=submit]")
        assert "/invitations/" not in page.url and "/accounts/login/" not in page.url
    finally:
        invited.close()

    context, page = log_in(chromium, stack, ADMIN)
    page.on("dialog", lambda dialog: dialog.accept())  # the cut over's data-confirm
    try:
        page.goto(f"{stack.portal_url}/settings/")
        state = steps(page)
        assert (state["admin_joined"], state["location_chosen"], state["connected"]) == ("done", "done", "todo")
        assert f"by {ADMIN}" in page.locator("[data-step=admin_joined]").text_content()

        # --- location A, vendor-hosted: saved, started from the download, verified ----------
        s3.create_bucket(Bucket=A_BUCKET)
        page.select_option("#id_data_location", "vendor")
        page.fill("#id_bucket", A_BUCKET)
        page.fill("#id_gatekeeper_url", a_url)
        page.fill("#id_gatekeeper_id", A_ID)
        page.fill("#id_storage_origin", vendor_storage)
        with page.expect_navigation():
            page.get_by_role("button", name="Save").first.click()
        # Not running yet: the save says so before anything says "saved".
        checks = verdict(page)
        assert checks["reachable"]["status"] == "fail"
        assert page.get_by_test_id("saved-banner").text_content().startswith(
            "Settings saved, but the gatekeeper they name failed verification: ")
        text, config_a = download(page, stack, workdir, "gk-a")
        assert (config_a["gatekeeper_id"], config_a["storage"]["bucket"]) == (A_ID, A_BUCKET)
        assert config_a["storage"]["endpoint_url"] == vendor_storage
        vendor_keys = config_a["vendor_keys"]
        gatekeepers.start("gk-a", text, a_port)
        checks = verify(page)
        assert page.locator("[data-onboarding-verify]").get_attribute("data-verdict") == "pass", checks

        # An agent token; the agent pinned to A uploads the old ticket.
        tokens = page.locator("form[action='/settings/tokens/']")
        tokens.locator("[name=name]").fill("newco agent")
        with page.expect_navigation():
            tokens.locator("[type=submit]").click()
        token = page.locator("#new-token").text_content().strip()
        agent_a = workdir / "agent-a.toml"
        agent_a.write_text(demo_script().agent_toml(stack.portal_url, a_url, A_ID))
        old = submit(stack, agent_a, token, seed=101)
        assert s3.list_objects_v2(Bucket=A_BUCKET, Prefix=old["prefix"])["KeyCount"] == len(old["files"])

        # --- location B, the customer's own: added; the checklist follows it -----------------
        page.goto(f"{stack.portal_url}/settings/")
        form = page.get_by_test_id("location-add")
        form.locator("[name=kind]").select_option("customer")
        form.locator("[name=gatekeeper_url]").fill(b_url)
        form.locator("[name=gatekeeper_id]").fill(B_ID)
        form.locator("[name=storage_origin]").fill(own_storage)
        form.locator("[name=chosen_bucket]").fill(B_BUCKET)
        form.locator("[name=chosen_region]").fill("us-east-1")
        with page.expect_navigation():
            form.locator("[type=submit]").click()
        assert row(page, b_url).get_attribute("data-state") == "connecting"
        assert page.get_by_test_id("verify-target").text_content() == B_ID
        assert steps(page)["connected"] == "outdated"  # done for A, not B

        # The Launch stack link: CloudFormation's quick-create page in the region, every parameter B's.
        href = page.get_by_test_id("launch-stack").get_attribute("href")
        parts = urlsplit(href)
        assert (parts.scheme, parts.netloc, parts.path, parts.query) == (
            "https", "us-east-1.console.aws.amazon.com", "/cloudformation/home", "region=us-east-1")
        path, _, query = parts.fragment.partition("?")
        assert path == "/stacks/quickcreate"
        artifacts = stack.portal_env["DUALKEY_ARTIFACTS_ENDPOINT_URL"] + "/dualkey-artifacts"
        assert dict(parse_qsl(query, strict_parsing=True)) == {
            "templateURL": f"{artifacts}/gatekeeper/{VERSION}/gatekeeper.yaml",
            "stackName": f"dualkey-gatekeeper-{SLUG}",
            "param_GatekeeperId": B_ID,
            "param_PortalOrigin": stack.portal_url,
            "param_VendorKeys": ",".join(f"{kid}:{key}" for kid, key in vendor_keys.items()),
            "param_CodeBucket": "dualkey-artifacts",
            "param_CodeKey": f"gatekeeper/{VERSION}/gatekeeper-{VERSION}-py3.12-arm64.zip",
            "param_Runtime": "python3.12",
            "param_Architecture": "arm64",
            "param_BucketName": B_BUCKET,
        }

        # Self-hosted instead: B started from the download, before its bucket exists.
        text, config_b = download(page, stack, workdir, "gk-b")
        assert (config_b["gatekeeper_id"], config_b["storage"]["bucket"]) == (B_ID, B_BUCKET)
        assert config_b["storage"]["endpoint_url"] == own_storage and config_b["vendor_keys"] == vendor_keys
        gatekeepers.start("gk-b", text, b_port)
        connect(page, b_url)
        assert "storage unreachable" in " ".join(row(page, b_url).get_by_test_id("location-reported")
                                                 .text_content().split())
        assert steps(page)["connected"] == "done"

        # Verified: it fails with the missing bucket's own message and fix, and the cut over is refused.
        checks = verify(page)
        failed = [id_ for id_, check in checks.items() if check["status"] == "fail"]
        assert failed[0] == "storage", checks
        assert "S3 says the bucket does not exist" in checks["storage"]["detail"]
        assert checks["storage"]["hint"].startswith("Create the bucket")
        assert checks["probe_upload"]["status"] == "skip"
        assert "Recorded by the portal: failed, by nora." in page.get_by_test_id("verify-summary").text_content()
        row(page, b_url).locator("[name=confirm]").fill(B_ID)
        with page.expect_navigation():
            row(page, b_url).locator("[data-action=cut-over]").click()
        assert "fix the bucket first" in page.get_by_test_id("location-error").text_content()

        # The bucket created (CORS for the portal); B restarted, so that its cached bucket check
        # (30 s) is asked again now; connected again, verified, cut over.
        s3.create_bucket(Bucket=B_BUCKET)
        s3.put_bucket_cors(Bucket=B_BUCKET, CORSConfiguration={"CORSRules": [{
            "AllowedOrigins": [stack.portal_url], "AllowedMethods": ["GET", "POST"], "AllowedHeaders": ["*"]}]})
        gatekeepers.restart("gk-b", b_port)
        assert requests.get(b_url + "/v1/health", timeout=10).json()["storage"] == "ok"
        page.goto(f"{stack.portal_url}/settings/")
        connect(page, b_url)
        checks = verify(page)
        assert page.locator("[data-onboarding-verify]").get_attribute("data-verdict") == "pass", checks
        assert {checks[id_]["status"] for id_ in ("storage", "probe_sign", "probe_upload", "probe_read",
                                                  "probe_delete")} == {"pass"}
        assert s3.list_objects_v2(Bucket=B_BUCKET, Prefix="tickets/_probe/").get("KeyCount", 0) == 0
        page.reload()
        state = steps(page)
        assert (state["deployed"], state["connected"], state["verified"], state["cut_over"]) == (
            "done", "done", "done", "todo")  # Newco never cut over: A was its first gatekeeper
        row(page, b_url).locator("[name=confirm]").fill(B_ID)
        with page.expect_navigation():
            row(page, b_url).locator("[data-action=cut-over]").click()
        assert f"New tickets now go to {B_ID}" in page.content()
        states = dict(page.locator("[data-location-row]").evaluate_all(
            "rows => rows.map(r => [r.dataset.gatekeeperUrl, r.dataset.state])"))
        assert states == {a_url: "draining", b_url: "active"}
        state = steps(page)
        assert (state["deployed"], state["connected"], state["verified"], state["cut_over"]) == (
            "done", "done", "done", "done")
        assert state["tickets_moved"] == "todo"  # the old ticket is still at A (moving it: portal/moves)
        assert "1 ticket still at an earlier location" in page.locator(
            "[data-testid=onboarding-steps] > li[data-step=tickets_moved]").text_content()
        assert page.locator("[data-testid=verify-target]").count() == 0
    finally:
        context.close()

    # --- a new ticket lands at B; the old one still renders from A --------------------------
    agent_b = workdir / "agent-b.toml"
    agent_b.write_text(demo_script().agent_toml(stack.portal_url, b_url, B_ID))
    new = submit(stack, agent_b, token, seed=102)
    assert s3.list_objects_v2(Bucket=B_BUCKET, Prefix=new["prefix"])["KeyCount"] == len(new["files"])
    assert s3.list_objects_v2(Bucket=A_BUCKET, Prefix=new["prefix"])["KeyCount"] == 0
    for ticket, gatekeeper, storage in [(old, a_url, vendor_storage), (new, b_url, own_storage)]:
        context, view = open_report_view(chromium, stack, ADMIN, ticket)
        try:
            assert view.status == 200
            assert csp_directives(view.csp)["connect-src"] == ["'self'", gatekeeper, storage]
            assert set(view.file_statuses().values()) == {"verified"}, view.file_statuses()
            assert view.banner("error") is None
            assert view.requests_to(origin(gatekeeper), "POST") and view.requests_to(origin(storage))
            other = ({a_url, b_url} - {gatekeeper}).pop()
            assert not view.requests_to(origin(other))
            assert view.csp_violations() == [] and not view.page_errors
        finally:
            context.close()

    # Support sees the progress, none of the settings.
    support_context, desk = log_in(chromium, stack, "victor")
    try:
        desk.goto(f"{stack.portal_url}/support/tenants/{SLUG}/")
        progress = desk.get_by_test_id("onboarding-progress")
        assert progress.locator("li[data-step=cut_over]").get_attribute("data-state") == "done"
        assert B_ID not in progress.text_content() and "127.0.0.1" not in progress.inner_html()
    finally:
        support_context.close()
    assert stack.netguard_attempts() == []  # the portal never contacted a gatekeeper or storage
