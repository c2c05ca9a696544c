"""The settings page's gatekeeper check in a real browser, against the whole
system on loopback.

The admin's browser asks the tenant's gatekeeper for its health (GET /v1/health)
and compares it with what the page says the portal expects: the gatekeeper id,
the kids of the tenant's vendor keys, the portal's clock (its Date header). The
portal runs behind the network guard that refuses (and logs) any connection to a
gatekeeper: the check is the browser's alone.

Acme's gatekeeper is configured right. Hooli's (tests/stack.py) has another
gatekeeper's id, trusts a key the portal never had, and has its kill switch
thrown. The rarer faults (clocks, audit store, protocol, errors) come from a
gatekeeper faked in the browser with Playwright's routing.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import requests

from tests.stack import (
    MISCONFIGURED, MISCONFIGURED_ID, MISCONFIGURED_KID, BrowserView, csp_directives, open_view,
    origin,
)

pytestmark = pytest.mark.e2e

KEYS_HINT = "Paste the [vendor_keys] block below into its config and restart it."
ALL_PASS = {"reachable": "pass", "protocol": "pass", "gatekeeper_id": "pass", "active_kid": "pass",
            "clock": "pass", "audit": "pass", "enabled": "pass", "storage": "pass", "bucket": "pass",
            "region": "pass", "approvals": "pass", "encryption": "info"}




def signing_keys(stack, slug: str) -> dict[str, list[str]]:
    """{"active": [kid], "next": [kid], "previous": [kids]} from the portal's database."""
    code = ("import json; from tenants.models import Tenant; from tenants.signing import trusted_public_keys; "
            f"keys = trusted_public_keys(Tenant.objects.get(slug={slug!r})); "
            "print(json.dumps({s: [k.kid for k in keys if k.status == s] for s in ('active', 'next', 'previous')}))")
    return json.loads(stack.manage("shell", "-c", code).stdout.strip().splitlines()[-1])


class CheckView(BrowserView):
    """One settings page as a browser saw it."""

    def wait(self) -> None:
        self.page.wait_for_selector("[data-gatekeeper-check][data-state=done]", state="attached", timeout=20_000)

    def check_again(self) -> None:
        self.page.get_by_role("button", name="Check again").click()
        self.wait()

    def checks(self) -> dict[str, dict]:
        items = self.page.locator("[data-testid=checklist] > li").evaluate_all("""(items) => items.map((li) => ({
            id: li.dataset.check, status: li.dataset.status,
            badge: li.querySelector(".badge").textContent,
            title: li.querySelector(".check-title").textContent,
            detail: li.querySelector(".check-detail").textContent,
            hint: li.querySelector(".check-hint")?.textContent ?? null,
            link: li.querySelector(".check-hint a")?.getAttribute("href") ?? null}))""")
        return {item["id"]: item for item in items}

    def statuses(self) -> dict[str, str]:
        return {id_: item["status"] for id_, item in self.checks().items()}

    def summary(self) -> str:
        return self.page.get_by_test_id("check-summary").text_content()

    def health_requests(self, gatekeeper_url: str) -> list[tuple[str, str]]:
        return [(m, url) for m, url in self.requests if url == gatekeeper_url + "/v1/health"]


def open_settings(browser, stack, username: str, before_load=None) -> tuple[object, CheckView]:
    return open_view(CheckView, browser, stack, username, "/settings/", before_load=before_load)


@pytest.fixture(scope="module")
def alice_view(dualkey_stack, chromium):
    context, view = open_settings(chromium, dualkey_stack, "alice")
    yield view
    context.close()


# --- Acme: a gatekeeper configured right ----------------------------------------------------------

def test_alice_sees_every_check_pass(dualkey_stack, alice_view):
    assert alice_view.status == 200
    checks = alice_view.checks()
    assert alice_view.statuses() == ALL_PASS  # Acme has no previous key, and its gatekeeper trusts no other
    assert alice_view.summary().startswith("All checks passed: the gatekeeper is ready for this portal.")
    assert alice_view.page.locator("[data-gatekeeper-check]").get_attribute("data-verdict") == "pass"
    [active] = signing_keys(dualkey_stack, "acme")["active"]
    assert checks["active_kid"]["detail"] == f"{active}."
    assert checks["gatekeeper_id"]["detail"] == "“gk-acme”."
    assert checks["reachable"]["detail"].startswith("GET /v1/health answered in ")
    assert "Version 1." in checks["reachable"]["detail"]
    # One machine, both clocks read to the whole second (the health's `time`, the portal's
    # Date header) over a loaded loopback: within a second, or shown as 1 s either way.
    assert re.match(r"The gatekeeper's clock is (within a second of|1 s (ahead of|behind)) the portal's",
                    checks["clock"]["detail"]), checks["clock"]["detail"]
    # The bucket as the gatekeeper reports it (moto's buckets have no default encryption).
    assert checks["storage"]["detail"] == f"Bucket “{dualkey_stack.tenants['acme'].bucket}” answered in us-east-1."
    assert checks["bucket"]["detail"] == f"“{dualkey_stack.tenants['acme'].bucket}”."
    assert checks["encryption"]["detail"] == ("none: The bucket has no default encryption configured. "
                                              "Uploads through it ask for sse-s3.")
    assert {item["badge"] for item in checks.values()} == {"Pass", "Info"}
    assert all(item["hint"] is None for item in checks.values())


def test_the_page_asks_only_acmes_gatekeeper_and_only_for_its_health(dualkey_stack, alice_view):
    acme = dualkey_stack.tenants["acme"]
    portal = dualkey_stack.portal_url
    assert {origin(url) for _, url in alice_view.requests} <= {portal, acme.gatekeeper_url}
    assert [(m, url) for m, url in alice_view.requests if origin(url) == acme.gatekeeper_url] == [
        ("GET", acme.gatekeeper_url + "/v1/health")]
    # The portal's clock: its Date header, from a HEAD of the settings page.
    assert ("HEAD", portal + "/settings/") in alice_view.requests


def test_the_csp_names_exactly_acmes_gatekeeper_and_storage(dualkey_stack, alice_view):
    """Storage too: the onboarding verification (verify.js, on request) writes a probe
    object there and reads it back. The check itself asks only the gatekeeper (above)."""
    acme = dualkey_stack.tenants["acme"]
    directives = csp_directives(alice_view.csp)
    assert directives["connect-src"] == ["'self'", acme.gatekeeper_url, acme.storage_origin]
    assert directives["script-src"] == ["'self'"] and directives["img-src"] == ["'self'"]
    assert alice_view.csp_violations() == []
    assert [(kind, text) for kind, text in alice_view.console if kind == "error"] == []
    assert not alice_view.page_errors


def test_check_again_asks_the_gatekeeper_again(dualkey_stack, alice_view):
    acme = dualkey_stack.tenants["acme"]
    before = len(alice_view.health_requests(acme.gatekeeper_url))
    alice_view.check_again()
    assert len(alice_view.health_requests(acme.gatekeeper_url)) == before + 1
    assert alice_view.statuses() == ALL_PASS
    assert alice_view.page.get_by_role("button", name="Check again").is_enabled()


def test_the_portal_never_connects_to_a_gatekeeper(dualkey_stack, alice_view):
    assert dualkey_stack.portal_pid in dualkey_stack.netguard_armed_pids()
    assert dualkey_stack.netguard_attempts() == []


# --- Hooli: a gatekeeper configured wrong ---------------------------------------------------------

def test_a_misconfigured_gatekeeper_fails_with_the_fixes(dualkey_stack, chromium):
    hooli = dualkey_stack.tenants[MISCONFIGURED]
    [active] = signing_keys(dualkey_stack, MISCONFIGURED)["active"]
    context, view = open_settings(chromium, dualkey_stack, hooli.admin)
    try:
        checks = view.checks()
        assert view.statuses() == {
            "reachable": "pass", "protocol": "pass", "gatekeeper_id": "fail", "active_kid": "fail",
            "unknown_kids": "warn", "clock": "pass", "audit": "pass", "enabled": "fail", "storage": "pass",
            "bucket": "pass", "region": "pass", "approvals": "pass", "encryption": "info"}
        assert view.summary().startswith("3 checks failed, 1 warning: see how to fix below.")
        assert view.page.locator("[data-gatekeeper-check]").get_attribute("data-verdict") == "fail"

        assert checks["gatekeeper_id"]["detail"] == f"It calls itself “{MISCONFIGURED_ID}”; these settings say “gk-hooli”."
        assert "wrong_audience" in checks["gatekeeper_id"]["hint"]

        assert active in checks["active_kid"]["detail"] and "refuses every grant" in checks["active_kid"]["detail"]
        assert checks["active_kid"]["hint"] == f"{KEYS_HINT} Show it"
        assert checks["active_kid"]["link"] == "#vendor-keys"
        assert MISCONFIGURED_KID in checks["unknown_kids"]["detail"]

        assert checks["enabled"]["detail"].startswith("Its kill switch is thrown (enabled = false)")
        assert checks["enabled"]["hint"] == "If that is not intended, set enabled = true in its config and restart it."
        assert {checks[c]["badge"] for c in ("gatekeeper_id", "active_kid", "enabled")} == {"Fail"}

        # The fix the hint points to: the block the gatekeeper's config takes, with the active key.
        view.page.locator("[data-check=active_kid] .check-hint a").click()
        assert view.page.url.endswith("/settings/#vendor-keys")
        assert f'{active} = "' in view.page.locator("#vendor-keys-toml").text_content()
        assert view.csp_violations() == [] and not view.page_errors
        # And its storage: the onboarding verification writes a probe object there and reads it back.
        assert csp_directives(view.csp)["connect-src"] == ["'self'", hooli.gatekeeper_url, hooli.storage_origin]
    finally:
        context.close()
    assert dualkey_stack.netguard_attempts() == []


# --- faults faked in the browser --------------------------------------------------------------------

class FakeHealth:
    """Acme's real health answer with some fields changed; `time` is the real
    time plus `skew` seconds when it is not given."""

    def __init__(self, real: dict):
        self.real = real
        self.answer: tuple[int, dict] | str = (200, {})
        self.skew = 0

    def __call__(self, route):
        if isinstance(self.answer, str):
            return route.abort(self.answer)
        status, changes = self.answer
        body = {**self.real, "time": int(time.time()) + self.skew, **changes}
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body),
                      headers={"Access-Control-Allow-Origin": route.request.headers.get("origin", "")})


def test_the_faults_a_gatekeeper_can_report(dualkey_stack, chromium):
    acme = dualkey_stack.tenants["acme"]
    fake = FakeHealth(requests.get(acme.gatekeeper_url + "/v1/health", timeout=10).json())
    context, view = open_settings(chromium, dualkey_stack, "alice",
                                  before_load=lambda page: page.route(acme.gatekeeper_url + "/v1/health", fake))

    def run(answer=(200, {}), skew=0) -> dict[str, dict]:
        fake.answer, fake.skew = answer, skew
        view.check_again()
        return view.checks()

    try:
        assert view.statuses() == ALL_PASS  # the fake's baseline is Acme's real answer

        checks = run(skew=20)
        assert checks["clock"]["status"] == "warn"
        assert checks["clock"]["detail"].startswith("The gatekeeper's clock is ")
        assert "ahead of the portal's" in checks["clock"]["detail"]
        assert "NTP" in checks["clock"]["hint"]
        assert view.summary().startswith("Usable, with 1 warning")

        checks = run(skew=-45)
        assert checks["clock"]["status"] == "fail"
        assert "behind the portal's" in checks["clock"]["detail"]
        assert checks["clock"]["hint"].startswith("More than 30 s apart, it refuses the portal's grants")

        checks = run((200, {"audit": "unavailable", "status": "degraded"}))
        assert checks["audit"]["status"] == "fail" and "fail closed" in checks["audit"]["detail"]
        assert checks["clock"]["status"] == "pass"

        # The gatekeeper whose bucket does not exist: not "all checks passed" (it was, once).
        checks = run((200, {"storage": "unreachable", "storage_problem": "no_such_bucket", "status": "degraded",
                            "encryption": "unknown"}))
        assert checks["storage"]["status"] == "fail"
        assert checks["storage"]["badge"] == "Fail"
        assert "is unreachable from the gatekeeper: S3 says the bucket does not exist." in checks["storage"]["detail"]
        assert checks["storage"]["hint"].startswith("Create the bucket")
        assert view.summary().startswith("1 check failed: see how to fix below.")

        # Another bucket and region than the admin chose here: warnings naming both.
        checks = run((200, {"bucket": "somewhere-else", "region": "eu-central-1"}))
        assert (checks["bucket"]["status"], checks["region"]["status"]) == ("warn", "warn")
        assert checks["bucket"]["detail"] == (f"It uses bucket “somewhere-else”; these settings say "
                                              f"“{acme.bucket}”.")
        assert checks["region"]["detail"] == "It uses region “eu-central-1”; these settings say “us-east-1”."
        assert view.summary().startswith("Usable, with 2 warnings")

        # A protocol-1 gatekeeper (no `features`) still works, and the check says what it lacks.
        checks = run((200, {"protocol": 1, "features": None, "approvers": None, "approvals_required": None}))
        assert (checks["protocol"]["status"], checks["approvals"]["status"]) == ("warn", "warn")
        assert "approvals are not enforced there" in checks["approvals"]["detail"]
        assert checks["active_kid"]["status"] == "pass"

        checks = run((200, {"protocol": 9, "vendor_kids": ["someone-else"]}))
        assert (checks["protocol"]["status"], checks["active_kid"]["status"]) == ("fail", "fail")
        assert checks["active_kid"]["hint"].startswith(KEYS_HINT)

        # What the gatekeeper says is text, never markup.
        checks = run((200, {"gatekeeper_id": '<img src=x data-hostile="1">', "encryption": "<b data-hostile>"}))
        assert checks["gatekeeper_id"]["detail"].startswith('It calls itself “<img src=x data-hostile="1">”')
        assert view.page.locator("[data-hostile]").count() == 0

        checks = run((500, {"error": "internal"}))
        assert checks["reachable"]["status"] == "fail"
        assert checks["reachable"]["detail"] == f"{acme.gatekeeper_url}/v1/health answered HTTP 500."

        checks = run("connectionrefused")
        assert checks["reachable"]["status"] == "fail"
        assert checks["reachable"]["detail"] == f"Could not reach the gatekeeper at {acme.gatekeeper_url}."
        assert "allowed_origins" in checks["reachable"]["hint"]
        assert {c["status"] for id_, c in checks.items() if id_ != "reachable"} == {"skip"}
        assert view.summary().startswith("1 check failed")

        assert view.statuses() != ALL_PASS
        assert run() and view.statuses() == ALL_PASS  # fixed: the next check passes again
        assert view.csp_violations() == [] and not view.page_errors
    finally:
        context.close()


def test_a_gatekeeper_that_does_not_allow_the_portals_origin(dualkey_stack, chromium):
    """The same portal under another origin (localhost, not 127.0.0.1): Acme's
    gatekeeper does not list it, so the browser refuses the answer (CORS)."""
    acme = dualkey_stack.tenants["acme"]
    elsewhere = dualkey_stack.portal_url.replace("127.0.0.1", "localhost")
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(f"{elsewhere}/accounts/login/")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", dualkey_stack.password)
        with page.expect_navigation():
            page.click("[type=submit]")
        page.goto(f"{elsewhere}/settings/")
        view = CheckView(page)
        view.wait()
        checks = view.checks()
        assert checks["reachable"]["status"] == "fail"
        assert checks["reachable"]["detail"] == f"Could not reach the gatekeeper at {acme.gatekeeper_url}."
        assert checks["reachable"]["hint"] == (
            f"It is unreachable from your network, or it does not list this portal ({elsewhere}) "
            "in its allowed_origins.")
        assert view.statuses()["gatekeeper_id"] == "skip"
    finally:
        context.close()


def test_a_missing_previous_key_is_a_warning(chromium, alice_view):
    """After a rotation the gatekeeper should trust the previous key too, for the
    grants it signed that are still alive. (Acme has no previous key; the
    verdicts are a pure function, called here in the page.)"""
    checks = alice_view.page.evaluate("""async () => {
        const { evaluate } = await import("/static/js/settings/checks.js");
        const health = {protocol: 1, gatekeeper_id: "gk-x", vendor_kids: ["new"], time: 0, audit: "ok",
                        enabled: true, encryption: "sse-kms"};
        const expected = {gatekeeperId: "gk-x", activeKid: "new", previousKids: ["old"]};
        const listed = evaluate({...health, vendor_kids: ["new", "old"]}, expected, {portalSkew: 0, browserSkew: 0});
        return {missing: evaluate(health, expected, {portalSkew: 0, browserSkew: 5}),
                listed, noPortalClock: evaluate(health, expected, {portalSkew: null, browserSkew: -12})};
    }""")
    missing = {c["id"]: c for c in checks["missing"]}
    assert missing["previous_kids"]["status"] == "warn"
    assert missing["previous_kids"]["detail"].startswith("It does not trust old: grants signed just before")
    assert missing["active_kid"]["status"] == "pass"
    assert "Your computer's clock is 5 s behind the portal's" in missing["clock"]["detail"]
    assert missing["encryption"]["detail"] == "sse-kms: S3 encrypts each object with your KMS key (SSE-KMS)."
    listed = {c["id"]: c for c in checks["listed"]}
    assert listed["previous_kids"]["status"] == "pass" and "unknown_kids" not in listed
    clock = {c["id"]: c for c in checks["noPortalClock"]}["clock"]
    assert clock["status"] == "warn"
    assert clock["detail"].startswith("The gatekeeper's clock is 12 s behind your computer's.")


def test_staff_get_no_settings_page(dualkey_stack, chromium):
    context, view = open_settings(chromium, dualkey_stack, "bob")
    try:
        assert view.status == 403
        assert view.page.locator("[data-gatekeeper-check]").count() == 0
        assert view.health_requests(dualkey_stack.tenants["acme"].gatekeeper_url) == []
    finally:
        context.close()


# --- key rotation: the switch waits for the gatekeeper to trust the next key ------------------------

ROTOR_ADMIN = "rosa"


@pytest.fixture(scope="module")
def rotor(dualkey_stack):
    """A tenant of its own (rotating Acme's key would break the other tests), served
    by Acme's gatekeeper, whose health answer the test fakes in the browser."""
    acme = dualkey_stack.tenants["acme"]
    code = ("from django.contrib.auth import get_user_model; from tenants.models import Membership, Tenant; "
            "from tenants.services import create_tenant; "
            f"t = create_tenant(slug='rotor', name='Rotor plc', status=Tenant.Status.ACTIVE, region='us-east-1', "
            f"bucket='rotor-reports', gatekeeper_url={acme.gatekeeper_url!r}, gatekeeper_id='gk-acme', "
            f"storage_origin={acme.storage_origin!r}); "
            f"u = get_user_model().objects.create_user({ROTOR_ADMIN!r}, password={dualkey_stack.password!r}); "
            "Membership.objects.create(user=u, tenant=t, role=Membership.Role.ADMIN)")
    dualkey_stack.manage("shell", "-c", code)
    return acme


def test_an_admin_rotates_the_key_once_the_gatekeeper_trusts_the_next_one(dualkey_stack, chromium, rotor):
    fake = FakeHealth(requests.get(rotor.gatekeeper_url + "/v1/health", timeout=10).json())
    [first] = signing_keys(dualkey_stack, "rotor")["active"]
    fake.answer = (200, {"vendor_kids": [first]})
    context, view = open_settings(chromium, dualkey_stack, ROTOR_ADMIN,
                                  before_load=lambda page: page.route(rotor.gatekeeper_url + "/v1/health", fake))
    try:
        assert view.statuses()["active_kid"] == "pass" and "next_kid" not in view.statuses()
        with view.page.expect_navigation():
            view.page.get_by_role("button", name="Make a next key").click()
        view.wait()
        [waiting] = signing_keys(dualkey_stack, "rotor")["next"]
        assert f'{waiting} = "' in view.page.locator("#vendor-keys-toml").text_content()
        switch = view.page.get_by_role("button", name=f"Switch to {waiting}")
        # The gatekeeper does not know the next key yet: the check warns and the switch waits.
        checks = view.checks()
        assert checks["next_kid"]["status"] == "warn"
        assert "Switching now would make it refuse every grant" in checks["next_kid"]["detail"]
        assert switch.is_disabled()
        # The customer pastes the block and restarts the gatekeeper: it now trusts both.
        fake.answer = (200, {"vendor_kids": [first, waiting]})
        view.check_again()
        assert view.checks()["next_kid"]["status"] == "pass"
        assert "unknown_kids" not in view.statuses()
        assert switch.is_enabled()
        view.page.once("dialog", lambda dialog: dialog.accept())  # the switch asks first (lib/page.js)
        with view.page.expect_navigation():
            switch.click()
        view.wait()
        assert signing_keys(dualkey_stack, "rotor") == {"active": [waiting], "next": [], "previous": [first]}
        assert f"Grants are now signed with {waiting}" in view.page.content()
        statuses = view.statuses()
        assert statuses["active_kid"] == "pass" and statuses["previous_kids"] == "pass"
        assert view.csp_violations() == [] and not view.page_errors
    finally:
        context.close()
    assert dualkey_stack.netguard_attempts() == []
