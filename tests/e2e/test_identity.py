"""The customer's identity provider at the gatekeeper, in Chromium against the real
OpenID Connect provider (npm's oidc-provider, tests/oidc_provider.py) with a public
client (PKCE, no secret): Globex's gatekeeper gets [identity], its JWKS fetched
from the provider; the report page gets the person's ID token straight from the
provider (code + PKCE in a popup) and renders. Refused without a token, with
another person's, with an expired one, and for a grant the portal mints for a
person the IdP does not know; the portal never saw the token (no request to it,
not its database, not its logs)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from tests.oidc_provider import Client, start_oidc_provider
from tests.stack import (
    identity_toml,
    log_in,
    log_in_with_idp,
    record_location_health,
    set_portal_idp,
    sign_in_at_idp,
    wait_until_loaded,
)

pytestmark = pytest.mark.e2e

CLIENT_ID = "dualkey-pages"
TOKEN_TTL = 25  # the provider's ID tokens live this long; the gatekeeper's leeway is 0
USERS = {"charlie": {"email": "charlie@example.com", "email_verified": True},
         "mallory": {"email": "mallory@elsewhere.example", "email_verified": True}}


@pytest.fixture(scope="module")
def idp(dualkey_stack, tmp_path_factory):
    client = Client(CLIENT_ID, "", [dualkey_stack.portal_url + "/identity/callback/"],
                    {"token_endpoint_auth_method": "none", "require_auth_time": True})
    provider = start_oidc_provider(tmp_path_factory.mktemp("idp"), [client], USERS, ttl={"IdToken": TOKEN_TTL})
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def globex(dualkey_stack, idp):
    """Globex's gatekeeper with [identity] (restored afterwards, for the other tests)."""
    stack, globex = dualkey_stack, dualkey_stack.tenants["globex"]
    original = globex.config_path.read_text()
    jwks_uri = requests.get(idp.discovery_url, timeout=5).json()["jwks_uri"]
    stack.reconfigure_gatekeeper("globex", identity_toml(idp.issuer, CLIENT_ID, jwks_uri))
    health = requests.get(globex.gatekeeper_url + "/v1/health", timeout=5).json()
    assert "identity" in health["features"] and health["identity"]["audience"] == CLIENT_ID
    record_location_health(stack, "globex", globex.gatekeeper_url)  # the pages send it the token from now on
    stack.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model\n"
        "from tenants.models import Membership, Tenant\n"
        "U = get_user_model()\n"
        f"u = U.objects.create_user('dave', email='dave@example.com', password={stack.password!r})\n"
        "Membership.objects.create(tenant=Tenant.objects.get(slug='globex'), role='staff', user=u)\n"))
    yield globex
    set_portal_idp(stack, "globex", "", "")
    globex.config_path.write_text(original)
    stack.reconfigure_gatekeeper("globex", "")
    record_location_health(stack, "globex", globex.gatekeeper_url)


def banner(page, kind: str) -> str:
    locator = page.get_by_test_id(f"{kind}-banner")
    return "" if locator.is_hidden() else locator.text_content()


def grant_for(stack, ticket: dict, username: str) -> str:
    """The grant the portal itself mints for `username` to read `ticket`."""
    return stack.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model\n"
        "from portal.tickets.grants import read_grant\n"
        "from portal.tickets.models import Ticket\n"
        f"print(read_grant(Ticket.objects.get(pk={ticket['id']!r}), "
        f"get_user_model().objects.get(username={username!r})).token)")).stdout.strip().splitlines()[-1]


def sign(gatekeeper_url: str, grant: str, prefix: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {grant}", **({"X-Identity-Token": token} if token else {})}
    return requests.post(gatekeeper_url + "/v1/sign", json={"ops": [{"op": "list", "prefix": prefix}]},
                         headers=headers, timeout=10)


def audited(stack, response) -> dict:
    [row] = [r for r in stack.audit_rows("globex") if r["request_id"] == response.headers["X-Request-Id"]]
    return row


def test_a_report_renders_after_the_pkce_flow_and_is_refused_otherwise(dualkey_stack, chromium, idp, globex):
    stack = dualkey_stack
    ticket = globex.tickets[0]
    report = f"{stack.portal_url}/tickets/{ticket['id']}/"

    # Without a token (the portal names no IdP yet): the gatekeeper refuses, audited.
    context, page = log_in(chromium, stack, "charlie")
    try:
        page.goto(report)
        wait_until_loaded(page)
        assert "identity_required" in banner(page, "error")
        assert any(r["reason"] == "identity_required" and r["outcome"] == "deny" for r in stack.audit_rows("globex"))
    finally:
        context.close()

    # The tenant names its IdP: the page signs in there (code + PKCE) and the report renders.
    context, page = log_in_with_idp(chromium, stack, "charlie", idp.issuer, CLIENT_ID)
    seen = []  # every request of the context, the provider's popup included
    context.on("request", lambda r: seen.append(r))
    try:
        page.goto(report)
        sign_in_at_idp(page, "charlie")
        wait_until_loaded(page)
        assert banner(page, "error") == "", banner(page, "error")
        statuses = page.locator("[data-manifest-file] [data-file-status] .badge").evaluate_all(
            "badges => badges.map(b => b.dataset.status)")
        assert statuses and set(statuses) == {"verified"}, statuses
        signs = [r for r in seen if r.url == globex.gatekeeper_url + "/v1/sign" and r.method == "POST"]
        token = signs[0].headers["x-identity-token"]
        assert len({r.headers.get("x-identity-token") for r in signs}) == 1  # one sign-in for the page's life
        authorize = next(r for r in seen if r.url.startswith(idp.issuer) and "code_challenge=" in r.url)
        assert "code_challenge_method=S256" in authorize.url and "response_mode=fragment" in authorize.url
        rows = [r for r in stack.audit_rows("globex") if r["outcome"] == "allow" and r["idp_sub"]]
        assert {(r["idp_sub"], r["idp_iss"]) for r in rows} == {("charlie", idp.issuer)}

        # A grant the portal mints for a person the IdP does not know (dave): refused,
        # with Charlie's genuine token and without one.
        dave = grant_for(stack, ticket, "dave")
        refused = sign(globex.gatekeeper_url, dave, ticket["prefix"], token)
        assert (refused.status_code, refused.json()["error"]) == (403, "identity_mismatch")
        assert audited(stack, refused)["reason"] == "identity_mismatch"
        refused = sign(globex.gatekeeper_url, dave, ticket["prefix"])
        assert (refused.status_code, refused.json()["error"]) == (401, "identity_required")

        # The portal never saw the token: not in any request to it, its database or its logs.
        portal_requests = [r for r in seen if r.url.startswith(stack.portal_url)]
        assert portal_requests
        for request in portal_requests:
            sent = request.url + repr(request.headers) + (request.post_data or "")
            assert token not in sent, request.url
        assert not re.search(r"[?&](code|id_token)=", " ".join(r.url for r in portal_requests))
        stored = page.evaluate("() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage),"
                               " document.cookie])")
        assert token not in stored  # in the page's memory only
        database = Path(stack.database_url.removeprefix("sqlite:///"))
        kept = [p for p in (database, Path(f"{database}-wal")) if p.exists()] if database.exists() else []
        for path in kept + stack.portal_log_files():
            assert token.encode() not in path.read_bytes(), path

        # An expired token, sent from the page itself: refused (leeway 0).
        claims = page.evaluate("t => JSON.parse(atob(t.split('.')[1].replace(/-/g,'+').replace(/_/g,'/')))", token)
        assert claims["aud"] == CLIENT_ID and claims["email"] == "charlie@example.com"
        time.sleep(max(0.0, claims["exp"] + 1.5 - time.time()))
        late = page.evaluate("""async ([url, grant, token, prefix]) => {
          const r = await fetch(url + "/v1/sign", {method: "POST", mode: "cors", credentials: "omit",
            headers: {Authorization: `Bearer ${grant}`, "X-Identity-Token": token, "Content-Type": "application/json"},
            body: JSON.stringify({ops: [{op: "list", prefix}]})});
          return [r.status, (await r.json()).error];
        }""", [globex.gatekeeper_url, grant_for(stack, ticket, "charlie"), token, ticket["prefix"]])
        assert late == [401, "identity_expired"]

        # The audit log page gets its own token (the IdP remembers the sign-in: the popup
        # returns at once) and shows the IdP's subject beside each read.
        page.goto(f"{stack.portal_url}/audit/?outcome=allow")
        with page.expect_popup():
            page.get_by_test_id("identity-sign-in").click()
        page.wait_for_selector("[data-audit-root][data-loaded=true]", state="attached", timeout=20_000)
        assert "charlie" in page.get_by_test_id("audit-idp").all_text_contents()
        searches = [r for r in seen if r.url == globex.gatekeeper_url + "/v1/audit/search" and r.method == "POST"]
        assert searches and searches[-1].headers["x-identity-token"] != token  # a fresh one, this page's
    finally:
        context.close()

    # Another person's token: Charlie's portal account, Mallory at the IdP.
    context, page = log_in_with_idp(chromium, stack, "charlie", idp.issuer, CLIENT_ID)
    try:
        page.goto(report)
        sign_in_at_idp(page, "mallory")
        wait_until_loaded(page)
        assert "identity_mismatch" in banner(page, "error")
        assert any(r["reason"] == "identity_mismatch" and r["idp_sub"] == "mallory" for r in stack.audit_rows("globex"))
    finally:
        context.close()
