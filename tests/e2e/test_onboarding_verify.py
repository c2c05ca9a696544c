"""The onboarding verification in a real browser, against real gatekeeper processes
and moto's S3 (and DynamoDB) on loopback.

A tenant of its own (Verifier, admin vera) connects, one after the other, to
gatekeepers set up right and wrong — a bucket that does not exist, a bucket whose
CORS rule names another origin, another gatekeeper id, a vendor key the portal
never had, an audit store that cannot be written — by saving its settings in the
browser, as an admin would. Each save runs the verification at once, and the
page names the failure (its own message and fix) before anything says "saved".

Storage here is a moto server of this module's own, started with
MOTO_DISABLE_GLOBAL_CORS=1: moto's server otherwise answers every origin
(flask-cors, as the stack's moto does), whatever the bucket's rule. Without it,
moto answers a browser as the bucket's CORS rule says: Access-Control-Allow-Origin
only for an origin the rule lists (moto/s3/responses.py), so Chromium withholds
the upload's answer from a page of another origin, as with S3. It does not check
a rule's methods on a simple POST, nor POST policies: those are tests/gatekeeper's.

A skewed clock is a real gatekeeper process started under libfaketime (Debian's
`faketime`, scripts/system-deps.sh): its wall clock, and so the `time` of its
health and the clock it checks grants against, is 10 minutes ahead of or 2
minutes behind the portal's. The monotonic clock stays real.
"""

from __future__ import annotations

import json
import os
import subprocess
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests import support
from tests.stack import BrowserView, open_view

pytestmark = pytest.mark.e2e

ADMIN = "vera"
GOOD_BUCKET, MISSING_BUCKET = "verify-reports", "verify-missing"
NO_CORS_BUCKET, GET_ONLY_BUCKET = "verify-nocors", "verify-getonly"  # on the strict S3


class VerifyView(BrowserView):
    def wait(self) -> None:
        self.page.wait_for_selector("[data-testid=onboarding]", state="attached", timeout=20_000)

    def wait_verified(self) -> None:
        self.page.wait_for_selector("[data-onboarding-verify][data-state=done]", state="attached", timeout=30_000)

    def checks(self) -> dict[str, dict]:
        items = self.page.locator("[data-testid=verify-checklist] > li").evaluate_all("""(items) => items.map((li) => ({
            id: li.dataset.check, status: li.dataset.status,
            detail: li.querySelector(".check-detail").textContent,
            hint: li.querySelector(".check-hint")?.textContent ?? null}))""")
        return {item["id"]: item for item in items}

    def banner(self) -> str:
        return self.page.get_by_test_id("saved-banner").text_content()

    def steps(self) -> dict[str, str]:
        return dict(self.page.locator("[data-testid=onboarding-steps] > li").evaluate_all(
            "items => items.map(li => [li.dataset.step, li.dataset.state])"))

    def save(self, gatekeeper_url: str, gatekeeper_id: str, bucket: str, storage_origin: str) -> None:
        page = self.page
        page.select_option("#id_data_location", "customer")
        page.fill("#id_region", "us-east-1")
        page.fill("#id_bucket", bucket)
        page.fill("#id_gatekeeper_url", gatekeeper_url)
        page.fill("#id_gatekeeper_id", gatekeeper_id)
        page.fill("#id_storage_origin", storage_origin)
        with page.expect_navigation():
            page.get_by_role("button", name="Save").first.click()
        self.wait()
        self.wait_verified()


def _gatekeeper_toml(stack, storage_url, *, gatekeeper_id: str, vendor_keys: dict, bucket: str, audit_url: str) -> str:
    keys = "\n".join(f"{json.dumps(kid)} = {json.dumps(key)}" for kid, key in vendor_keys.items())
    return f"""gatekeeper_id = {json.dumps(gatekeeper_id)}
issuer = {json.dumps(stack.portal_url)}
allowed_origins = {json.dumps([stack.portal_url])}

[vendor_keys]
{keys}

[storage]
bucket = {json.dumps(bucket)}
region = "us-east-1"
endpoint_url = {json.dumps(storage_url)}
encryption = "sse-s3"

[acl]
allow = ["0.0.0.0/0", "::/0"]
deny = []

[audit]
url = {json.dumps(audit_url)}
retention_days = 30
"""


@pytest.fixture(scope="module")
def verifier(dualkey_stack, tmp_path_factory):
    """The tenant, its buckets, and one gatekeeper process per setup (good and each fault)."""
    stack = dualkey_stack
    code = ("import json; from django.contrib.auth import get_user_model; "
            "from tenants.models import Membership, Tenant; from tenants.services import create_tenant; "
            "t = create_tenant(slug='verifier', name='Verifier AG', region='us-east-1'); "
            f"u = get_user_model().objects.create_user({ADMIN!r}, password={stack.password!r}); "
            "Membership.objects.create(user=u, tenant=t, role=Membership.Role.ADMIN); "
            "print(json.dumps({k.kid: k.public_key for k in t.signing_keys.all()}))")
    keys = json.loads(stack.manage("shell", "-c", code).stdout.strip().splitlines()[-1])
    workdir = tmp_path_factory.mktemp("verify-gatekeepers")
    # Two S3s: the stack's moto (which answers every origin, flask-cors) and a strict
    # one that answers as the bucket's CORS rule says (see the module's docstring).
    port = support.free_port()
    strict_url = f"http://127.0.0.1:{port}"
    processes = [support.start_process(
        [support.PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], strict_url + "/moto-api/",
        env={"MOTO_DISABLE_GLOBAL_CORS": "1"}, log_path=workdir / "strict-storage.log")]
    stack.s3().create_bucket(Bucket=GOOD_BUCKET)
    strict = aws(strict_url, "s3")
    for bucket, origin, methods in [(NO_CORS_BUCKET, "https://elsewhere.example", ["GET", "POST"]),
                                    (GET_ONLY_BUCKET, stack.portal_url, ["GET"])]:
        strict.create_bucket(Bucket=bucket)
        strict.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
            "AllowedOrigins": [origin], "AllowedMethods": methods, "AllowedHeaders": ["*"]}]})
    from gatekeeper_client.grants import SigningKey

    stranger = SigningKey.generate("stranger-2026")

    def sqlite(name):
        return f"sqlite:///{workdir / f'audit-{name}.db'}"

    # A gatekeeper's clock, skewed by libfaketime (an offset from the real one).
    skews = {"skewed_ahead": "+600s", "skewed_behind": "-120s"}
    setups = {
        "good": dict(gatekeeper_id="gk-verify", vendor_keys=keys, bucket=GOOD_BUCKET, audit_url=sqlite("good")),
        "missing_bucket": dict(gatekeeper_id="gk-verify", vendor_keys=keys, bucket=MISSING_BUCKET,
                               audit_url=sqlite("missing")),
        "wrong_cors": dict(gatekeeper_id="gk-verify", vendor_keys=keys, bucket=NO_CORS_BUCKET,
                           audit_url=sqlite("cors")),
        "get_only_cors": dict(gatekeeper_id="gk-verify", vendor_keys=keys, bucket=GET_ONLY_BUCKET,
                              audit_url=sqlite("get-only")),
        "wrong_id": dict(gatekeeper_id="gk-someone-else", vendor_keys=keys, bucket=GOOD_BUCKET,
                         audit_url=sqlite("id")),
        "untrusted_key": dict(gatekeeper_id="gk-verify", vendor_keys={stranger.kid: stranger.public_b64},
                              bucket=GOOD_BUCKET, audit_url=sqlite("key")),
        # A DynamoDB table (moto serves DynamoDB too) deleted once the gatekeeper is
        # running (it refuses to start without it): every audit write then fails.
        "broken_audit": dict(gatekeeper_id="gk-verify", vendor_keys=keys, bucket=GOOD_BUCKET,
                             audit_url="dynamodb://verify-audit-deleted"),
        **{name: dict(gatekeeper_id="gk-verify", vendor_keys=keys, bucket=GOOD_BUCKET, audit_url=sqlite(name))
           for name in skews},
    }
    storage = {name: strict_url if setup["bucket"] in (NO_CORS_BUCKET, GET_ONLY_BUCKET) else stack.storage_url
               for name, setup in setups.items()}
    urls = {}
    try:
        for name, setup in setups.items():
            config = workdir / f"gk-{name}.toml"
            config.write_text(_gatekeeper_toml(stack, storage[name], **setup))
            if setup["audit_url"].startswith("dynamodb://"):
                subprocess.run([support.PYTHON, "-m", "gatekeeper", "init-audit", "--config", str(config)], check=True,
                               cwd=support.ROOT, env={**os.environ, **support.AWS_ENV}, capture_output=True, timeout=60)
            port = support.free_port()
            urls[name] = f"http://127.0.0.1:{port}"
            faked = ["faketime", "-f", skews[name]] if name in skews else []
            processes.append(support.start_process(
                [*faked, support.PYTHON, "-m", "gatekeeper", "serve", "--config", str(config), "--port", str(port)],
                urls[name] + "/v1/health", log_path=workdir / f"gk-{name}.log",
                env={"FAKETIME_DONT_FAKE_MONOTONIC": "1"} if faked else None))
        aws(stack.storage_url, "dynamodb").delete_table(TableName="verify-audit-deleted")
        yield {"urls": urls, "storage": storage, "workdir": workdir, "keys": keys}
    finally:
        for proc in processes:
            support.stop_process(proc)


def aws(endpoint_url, service):
    import boto3
    return boto3.client(service, endpoint_url=endpoint_url, region_name="us-east-1",
                        aws_access_key_id=support.AWS_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=support.AWS_ENV["AWS_SECRET_ACCESS_KEY"])


def open_settings(chromium, stack):
    return open_view(VerifyView, chromium, stack, ADMIN, "/settings/")


def test_each_fault_fails_with_its_own_message_before_any_saved(dualkey_stack, chromium, verifier):
    stack, urls = dualkey_stack, verifier["urls"]
    context, view = open_settings(chromium, stack)
    try:
        assert view.page.locator("[data-onboarding-verify][data-gatekeeper-url]").count() == 0  # nothing connected
        cases = {
            # setup: (bucket named in the settings, the first failure's check, words of its detail, of its fix)
            "missing_bucket": (MISSING_BUCKET, "storage", "S3 says the bucket does not exist", "Create the bucket"),
            "wrong_cors": (NO_CORS_BUCKET, "probe_upload", "its CORS rule does not allow this portal",
                           f"Allow {stack.portal_url} with GET and POST in the bucket's CORS rule"),
            "get_only_cors": (GET_ONLY_BUCKET, "probe_upload", "withheld its answer from this page: its CORS rule "
                              "does not allow POST", "Add POST to the AllowedMethods"),
            "wrong_id": (GOOD_BUCKET, "gatekeeper_id", "It calls itself “gk-someone-else”", "wrong_audience"),
            "untrusted_key": (GOOD_BUCKET, "active_kid", "so it refuses every grant", "[vendor_keys]"),
            # A real process whose clock is off (libfaketime): its health's time says so, and it
            # refuses the probe's grant as expired (ahead) or not yet valid (behind).
            "skewed_ahead": (GOOD_BUCKET, "clock", "s ahead of the portal's",
                             "More than 30 s apart, it refuses the portal's grants"),
            "skewed_behind": (GOOD_BUCKET, "clock", "s behind the portal's",
                              "More than 30 s apart, it refuses the portal's grants"),
            # Last: verified again below.
            # The sign's refusal, whichever comes first: health probes the store only after 10 s
            # without a write, so it may still report the table's last write (at start) as ok.
            "broken_audit": (GOOD_BUCKET, "probe_sign", "(audit_unavailable)", "It cannot write its audit log"),
        }
        seen_first = set()
        for setup, (bucket, first, detail, fix) in cases.items():
            view.save(urls[setup], "gk-verify", bucket, verifier["storage"][setup])
            checks = view.checks()
            failed = [id_ for id_, c in checks.items() if c["status"] == "fail" and not (
                setup == "broken_audit" and id_ == "audit")]  # asserted below, once it is sure to show
            assert failed and failed[0] == first, (setup, failed, checks.get("probe_grant"), view.console[-6:])
            assert detail in checks[first]["detail"], (setup, checks[first])
            assert fix in (checks[first]["hint"] or ""), (setup, checks[first])
            banner = view.banner()
            assert banner.startswith("Settings saved, but the gatekeeper they name failed verification: "), banner
            assert (detail in banner or setup == "broken_audit") and "Settings saved and verified" not in banner
            assert "Storage settings saved." not in view.page.content()  # no green "saved"
            assert view.page.locator("[data-onboarding-verify]").get_attribute("data-verdict") == "fail"
            assert "Recorded by the portal: failed, by vera." in view.page.get_by_test_id("verify-summary").text_content()
            seen_first.add((first, detail))
            # The round trip's own evidence where it got that far.
            if setup == "wrong_id":
                assert "wrong_audience" in checks["probe_sign"]["detail"]
                assert checks["probe_sign"]["hint"].startswith("Its gatekeeper_id is not the id in these settings")
            if setup == "untrusted_key":
                assert "unknown_kid" in checks["probe_sign"]["detail"], (checks["probe_grant"], view.console[-6:])
            if setup.startswith("skewed_"):
                ahead = setup == "skewed_ahead"
                skew = int(checks["clock"]["detail"].split("clock is ")[1].split(" s ")[0])
                assert (595 <= skew <= 605) if ahead else (115 <= skew <= 125), checks["clock"]
                code = "expired" if ahead else "not_yet_valid"
                assert f"({code})" in checks["probe_sign"]["detail"], checks["probe_sign"]
                assert checks["probe_sign"]["hint"].startswith(
                    f"Its clock is {'ahead of' if ahead else 'behind'} the portal's by more than it tolerates")
                assert checks["probe_upload"]["status"] == "skip"
            if setup == "missing_bucket":
                assert checks["probe_upload"]["status"] == "skip"
            if setup == "wrong_cors":
                assert checks["storage"]["status"] == "pass"  # the bucket is there; only its CORS is wrong
                assert (checks["probe_grant"]["status"], checks["probe_sign"]["status"]) == ("pass", "pass")
                assert checks["probe_read"]["status"] == "fail"  # moto refused this origin its GET too
            if setup == "get_only_cors":
                # The rule lists this origin: moto let it read the probe back (moto would withhold a
                # POST's answer whatever the rule's methods; S3 for a rule without POST, as here).
                assert checks["probe_read"]["status"] == "pass"
            if setup in ("wrong_cors", "get_only_cors"):
                assert checks["probe_delete"]["status"] == "pass"  # the probe that landed is cleaned up
        assert len(seen_first) == len(cases)  # each its own message
        # Verified again, the gatekeeper's health now reports the audit store that failed it.
        view.page.get_by_role("button", name="Verify the gatekeeper").click()
        view.page.wait_for_selector("[data-onboarding-verify][data-state=running]", state="attached")
        view.wait_verified()
        checks = view.checks()
        assert [id_ for id_, c in checks.items() if c["status"] == "fail"][0] == "audit"
        assert "fail closed" in checks["audit"]["detail"]
        assert checks["audit"]["hint"].startswith("Check its audit store")
        # The checklist as the page rendered it still has the previous gatekeeper's verdict
        # (outdated: another gatekeeper); reloaded, the one just recorded.
        assert view.steps()["verified"] == "outdated"
        view.page.goto(f"{stack.portal_url}/settings/")
        view.wait()
        assert view.steps()["verified"] == "failed"
        assert view.csp_violations() == [] and not view.page_errors
    finally:
        context.close()
    assert stack.netguard_attempts() == []  # the portal never contacted any of them


def test_a_good_setup_is_verified_end_to_end_and_recorded(dualkey_stack, chromium, verifier):
    stack, url = dualkey_stack, verifier["urls"]["good"]
    context, view = open_settings(chromium, stack)
    try:
        view.save(url, "gk-verify", GOOD_BUCKET, verifier["storage"]["good"])
        checks = view.checks()
        for id_ in ["reachable", "gatekeeper_id", "active_kid", "clock", "audit", "storage", "probe_grant",
                    "probe_sign", "probe_upload", "probe_read", "probe_delete"]:
            assert checks[id_]["status"] == "pass", (id_, checks[id_])
        assert view.banner() == "Settings saved and verified."
        assert "Recorded by the portal: verified, by vera." in view.page.get_by_test_id("verify-summary").text_content()
        # The probe went through the bucket and is gone; the gatekeeper's audit log has each step.
        s3 = stack.s3()
        assert s3.list_objects_v2(Bucket=GOOD_BUCKET, Prefix="tickets/_probe/").get("KeyCount", 0) == 0
        import sqlite3
        with sqlite3.connect(verifier["workdir"] / "audit-good.db") as db:
            ops = [(op, outcome) for op, outcome, key in db.execute("SELECT op, outcome, key FROM audit ORDER BY id")
                   if key.startswith("tickets/_probe/")]
        assert ops == [("put", "allow"), ("get", "allow"), ("delete", "allow")]
        view.page.reload()
        view.wait()
        # The Launch stack link as the page offers it: this tenant's values, in its region.
        href = view.page.get_by_test_id("launch-stack").get_attribute("href")
        assert href.startswith("https://us-east-1.console.aws.amazon.com/cloudformation/home?region=us-east-1#")
        query = dict(parse_qsl(urlsplit(href).fragment.partition("?")[2]))
        assert query["param_GatekeeperId"] == "gk-verify" and query["param_PortalOrigin"] == stack.portal_url
        assert query["param_BucketName"] == GOOD_BUCKET and query["stackName"] == "dualkey-gatekeeper-verifier"
        assert query["param_VendorKeys"] == ",".join(f"{kid}:{key}" for kid, key in verifier["keys"].items())
        steps = view.steps()
        assert (steps["deployed"], steps["connected"], steps["verified"]) == ("done", "done", "done")
        assert "by vera" in view.page.locator("[data-step=verified]").text_content()
        assert view.csp_violations() == [] and not view.page_errors
    finally:
        context.close()
    assert stack.netguard_attempts() == []
