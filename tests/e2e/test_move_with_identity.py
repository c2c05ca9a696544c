"""A move between two of a customer's own locations, carried by the admin's browser,
when both locations' gatekeepers have [identity] (the customer's IdP: every get,
list and delete, and at B every put too, needs the person's ID token), on the real
stack in Chromium with the real OpenID Connect provider (tests/oidc_provider.py).

Globex keeps its tickets at A; its gatekeeper then gets [identity]. Charlie adds
location B (a gatekeeper with [identity] of its own), verifies it, signing in at
the IdP, and cuts over. In a fresh browser (no IdP session) he starts the move: the
page asks him to sign in at the IdP and carries nothing meanwhile; he signs in in
the page's popup, and the move finishes. Then every ticket reads from B, A holds no
version of them, and B's audit log names, beside Charlie, the IdP's subject for
each of his puts (A's for his reads and erasures). A grant the page sent, replayed
without its ID token, is refused by the gatekeeper (identity_required); with it,
signed.

Its own stack (not the session's): a cut over changes where Globex's tickets go."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
import requests

from tests import support
from tests.stack import (
    PAGE_CLIENT_ID,
    audit_log,
    csp_directives,
    cut_over_to,
    identity_toml,
    log_in,
    log_in_with_idp,
    move_progress,
    origin,
    own_stack,
    record_location_health,
    set_portal_idp,
    sign_in_at_idp,
    start_location,
    start_page_idp,
    versions,
    wait_until_loaded,
)

pytestmark = pytest.mark.e2e

CLIENT_ID = PAGE_CLIENT_ID
B_ID = "gk-globex-b"
B_BUCKET = "globex-reports-b"
B_PORT = support.free_port()
B_IDENTITY_OPS = ("get", "list", "put", "delete", "audit")  # A keeps the default (get, list, delete, audit)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from own_stack(tmp_path_factory, "moves-identity", B_PORT)


@pytest.fixture(scope="module")
def idp(stack, tmp_path_factory):
    provider = start_page_idp(stack, tmp_path_factory.mktemp("idp"),
                              {"charlie": {"email": "charlie@example.com", "email_verified": True}})
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def jwks_uri(idp):
    return requests.get(idp.discovery_url, timeout=5).json()["jwks_uri"]


@pytest.fixture(scope="module")
def location_b(stack, idp, jwks_uri, tmp_path_factory):
    # A is at http://localhost:<port>; B at http://127.0.0.1:<port> (the same moto, another origin).
    proc, location = start_location(stack, tmp_path_factory.mktemp("gk-globex-b"), B_ID, B_BUCKET, B_PORT,
                                    stack.storage_url, identity_toml(idp.issuer, CLIENT_ID, jwks_uri, ops=B_IDENTITY_OPS))
    try:
        yield location
    finally:
        support.stop_process(proc)


def replay(request, *, with_token: bool) -> requests.Response:
    """The page's own POST to a gatekeeper, sent again with or without its ID token."""
    headers = {"Authorization": request.headers["authorization"], "Content-Type": "application/json"}
    if with_token:
        headers["X-Identity-Token"] = request.headers["x-identity-token"]
    return requests.post(request.url, data=request.post_data, headers=headers, timeout=10)


def test_a_move_between_two_locations_with_the_customers_idp_at_both(stack, idp, jwks_uri, location_b, chromium):
    globex = stack.tenants["globex"]
    tickets = list(globex.tickets) + stack.submit("globex", count=2, seed=11)
    s3 = stack.s3()
    assert all(versions(s3, globex.bucket, t["prefix"]) for t in tickets)
    # Now A's gatekeeper gets [identity] too (its default ops: the agent's puts need no token).
    stack.reconfigure_gatekeeper("globex", identity_toml(idp.issuer, CLIENT_ID, jwks_uri))
    for url, ops in [(globex.gatekeeper_url, ["audit", "delete", "get", "list"]),
                     (location_b["url"], sorted(B_IDENTITY_OPS))]:
        health = requests.get(url + "/v1/health", timeout=5).json()
        assert health["identity"] == {"issuer": idp.issuer, "audience": CLIENT_ID, "ops": ops}, url
    record_location_health(stack, "globex", globex.gatekeeper_url)  # A's [identity], as "Connect" records it
    charlie = f"user:{stack.user_ids()['charlie']}"

    # The cut over: B's verification in the browser signs in at the IdP.
    context, page = log_in(chromium, stack, "charlie")
    set_portal_idp(stack, "globex", idp.issuer, CLIENT_ID)
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        cut_over_to(page, stack, location_b, idp_login="charlie")
    finally:
        context.close()

    # The move, in a fresh browser: no IdP session, no token yet.
    context, page = log_in_with_idp(chromium, stack, "charlie", idp.issuer, CLIENT_ID)
    seen = []  # every request of the context, the provider's popup included
    context.on("request", lambda r: seen.append(r))
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{stack.portal_url}/settings/moves/")
        page.locator("[name=source]").select_option(index=0)
        page.locator("[name=concurrency]").fill("2")
        with page.expect_navigation():
            page.get_by_test_id("move-submit").click()
        url = page.url.rstrip("/") + "/progress"
        total = move_progress(page, url)["objects"]["total"]
        assert total == sum(t["file_count"] for t in tickets)

        # Before Charlie signs in: the page asks for the IdP's sign-in, and carries nothing.
        banner = page.get_by_test_id("identity-banner")
        banner.wait_for(timeout=20_000)
        assert urlsplit(idp.issuer).netloc in banner.text_content()
        time.sleep(3)
        waiting = move_progress(page, url)
        assert waiting["state"] == "running" and waiting["objects"]["done"] == 0
        gatekeepers = (origin(globex.gatekeeper_url), origin(location_b["url"]))
        assert not [r.url for r in seen if origin(r.url) in gatekeepers and r.method == "POST"]

        # He signs in in the page's popup: the move goes on, and finishes.
        sign_in_at_idp(page, "charlie")
        page.get_by_test_id("carrier-status").filter(has_text="Finished").wait_for(timeout=180_000)
        done = move_progress(page, url)
        assert done["state"] == "finished" and done["objects"] == {"done": total, "total": total}
        assert done["tickets"]["done"] == len(tickets) and done["failures"] == []
        assert errors == []

        # One token for the page's life, sent to both gatekeepers.
        signs = [r for r in seen if r.method == "POST" and r.url in (globex.gatekeeper_url + "/v1/sign",
                                                                      location_b["url"] + "/v1/sign")]
        assert {origin(r.url) for r in signs} == set(gatekeepers)
        tokens = {r.headers.get("x-identity-token") for r in signs}
        assert len(tokens) == 1 and None not in tokens
        token = tokens.pop()
        assert not [r for r in seen if r.url.startswith(stack.portal_url) and token in
                    r.url + repr(r.headers) + (r.post_data or "")]  # never to the portal

        # The refusal: a grant the page sent to B (a read back), without the ID token.
        read_back = [r for r in signs if r.url.startswith(location_b["url"]) and '"op":"get"' in r.post_data][-1]
        refused = replay(read_back, with_token=False)
        assert (refused.status_code, refused.json()["error"]) == (401, "identity_required")
        [row] = [r for r in audit_log(location_b["audit"]) if r["request_id"] == refused.headers["X-Request-Id"]]
        assert (row["outcome"], row["reason"], row["idp_sub"]) == ("deny", "identity_required", "")
        signed = replay(read_back, with_token=True)
        assert signed.status_code == 200, signed.text

        # A ticket's report page reads it from B (its own sign-in: the IdP remembers him).
        response = page.goto(f"{stack.portal_url}/tickets/{tickets[0]['id']}/")
        connect = csp_directives(response.headers["content-security-policy"])["connect-src"]
        assert location_b["url"] in connect and origin(globex.gatekeeper_url) not in connect
        before = len(seen)
        with page.expect_popup():
            page.get_by_test_id("identity-sign-in").click()
        wait_until_loaded(page)
        statuses = page.locator("[data-manifest-file] [data-file-status] .badge").evaluate_all(
            "badges => badges.map(b => b.dataset.status)")
        assert statuses and set(statuses) == {"verified"}, statuses
        reads = {origin(r.url) for r in seen[before:] if r.method == "POST" and origin(r.url) in gatekeepers}
        assert reads == {origin(location_b["url"])}
    finally:
        context.close()
        set_portal_idp(stack, "globex", "", "")

    # A holds no version of them; B holds each, put by Charlie as the IdP names him.
    rows = audit_log(location_b["audit"])
    puts = [r for r in rows if r["op"] == "put" and r["outcome"] == "allow" and not r["key"].startswith("tickets/_probe/")]
    assert {(r["sub"], r["idp_sub"], r["idp_iss"]) for r in puts} == {(charlie, "charlie", idp.issuer)}
    for ticket in tickets:
        assert versions(s3, globex.bucket, ticket["prefix"]) == [], ticket
        stored = {o["Key"] for o in s3.list_objects_v2(Bucket=B_BUCKET, Prefix=ticket["prefix"])["Contents"]}
        assert len(stored) == ticket["file_count"] and stored <= {r["key"] for r in puts}
    # A's audit log: Charlie read the objects there and erased them, as the IdP names him.
    at_a = [r for r in stack.audit_rows("globex") if r["op"] in ("get", "delete") and r["outcome"] == "allow"]
    assert {(r["sub"], r["idp_sub"], r["idp_iss"]) for r in at_a} == {(charlie, "charlie", idp.issuer)}
    # Erased key by key, exactly the moved keys: never a prefix, never anything else.
    moved = {o["Key"] for t in tickets for o in s3.list_objects_v2(Bucket=B_BUCKET, Prefix=t["prefix"])["Contents"]}
    assert {r["key"] for r in at_a if r["op"] == "delete" and not r["key"].startswith("tickets/_probe/")} == moved
