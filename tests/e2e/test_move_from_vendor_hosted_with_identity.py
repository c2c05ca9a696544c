"""A move out of VENDOR-HOSTED storage into the customer's own location B whose
gatekeeper has [identity] (the customer's OpenID Connect IdP; B asks the person's
ID token for put and get too), on the real stack in Chromium with the real
provider (tests/oidc_provider.py).

Acme's tickets are in vendor-hosted storage (its location A: the gatekeeper the
vendor runs, on the vendor's bucket; no [identity] there). Alice, its admin, adds
B, verifies it (signing in at the IdP) and cuts over. The vendor's Celery worker
carries moves out of vendor-hosted storage, but it has no ID token, so it could
neither write to B nor read its copies back: services.mode_for must choose the
admin's browser. In a fresh browser (no IdP session) Alice starts the move: the
job's mode is browser, its page carries it, asking her to sign in at the IdP and
carrying nothing meanwhile; she signs in in the page's popup and the move finishes
(every object done, no failure). Then B's audit log names, beside Alice, the IdP's
subject and issuer for each of her puts; the vendor's bucket holds no version under
the tickets' prefixes; and a ticket's report page reads it from B alone.

Its own stack (not the session's): a cut over changes where Acme's tickets go."""

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
    set_portal_idp,
    sign_in_at_idp,
    start_location,
    start_page_idp,
    versions,
    wait_until_loaded,
)

pytestmark = pytest.mark.e2e

SLUG, ADMIN = "acme", "alice"  # the stack's vendor-hosted tenant, and its admin
CLIENT_ID = PAGE_CLIENT_ID
B_ID = "gk-acme-own"
B_BUCKET = "acme-reports-own"
B_PORT = support.free_port()
B_IDENTITY_OPS = ("get", "list", "put", "delete", "audit")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from own_stack(tmp_path_factory, "moves-vendor-identity", B_PORT)


@pytest.fixture(scope="module")
def idp(stack, tmp_path_factory):
    provider = start_page_idp(stack, tmp_path_factory.mktemp("idp"),
                              {ADMIN: {"email": "alice@example.com", "email_verified": True}})
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def location_b(stack, idp, tmp_path_factory):
    # A (vendor-hosted) signs for http://127.0.0.1:<moto>; B for http://localhost:<moto>:
    # the same moto, another origin, so that each CSP has its own storage to name.
    jwks_uri = requests.get(idp.discovery_url, timeout=5).json()["jwks_uri"]
    storage = stack.storage_url.replace("127.0.0.1", "localhost")
    proc, location = start_location(stack, tmp_path_factory.mktemp("gk-acme-own"), B_ID, B_BUCKET, B_PORT, storage,
                                    identity_toml(idp.issuer, CLIENT_ID, jwks_uri, ops=B_IDENTITY_OPS), slug=SLUG)
    try:
        yield location
    finally:
        support.stop_process(proc)


def test_a_move_out_of_vendor_hosted_storage_to_a_gatekeeper_with_identity_runs_in_the_browser(
        stack, idp, location_b, chromium):
    acme = stack.tenants[SLUG]
    assert acme.seeded["data_location"] == "vendor"
    tickets = list(acme.tickets) + stack.submit(SLUG, count=2, seed=21)
    s3 = stack.s3()
    assert all(versions(s3, acme.bucket, t["prefix"]) for t in tickets)
    # A, the vendor's gatekeeper, asks no ID token; B asks it for put and get among others.
    health_a = requests.get(acme.gatekeeper_url + "/v1/health", timeout=5).json()
    assert health_a["identity"] is None and health_a["storage_origin"] == acme.storage_origin
    health_b = requests.get(location_b["url"] + "/v1/health", timeout=5).json()
    assert health_b["identity"] == {"issuer": idp.issuer, "audience": CLIENT_ID, "ops": sorted(B_IDENTITY_OPS)}
    assert origin(acme.storage_origin) != origin(location_b["storage_origin"])
    alice = f"user:{stack.user_ids()[ADMIN]}"

    # The cut over to B: its verification in the browser signs in at the IdP. Verified
    # before it is connected, B is not yet named as taking the token (no health
    # recorded): the verification sends it there because B's health just asked.
    context, page = log_in(chromium, stack, ADMIN)
    set_portal_idp(stack, SLUG, idp.issuer, CLIENT_ID)
    page.on("dialog", lambda dialog: dialog.accept())
    verifying = []
    context.on("request", lambda r: verifying.append(r))
    try:
        cut_over_to(page, stack, location_b, idp_login=ADMIN, verify_first=True)
        assert page.locator("meta[name=dualkey-idp]").get_attribute("data-gatekeepers") == origin(location_b["url"])
    finally:
        context.close()
    probes = [r for r in verifying if r.method == "POST" and r.url == location_b["url"] + "/v1/sign"]
    assert probes and all(r.headers.get("x-identity-token") for r in probes)

    # The move, in a fresh browser: no IdP session, no token yet.
    context, page = log_in_with_idp(chromium, stack, ADMIN, idp.issuer, CLIENT_ID, slug=SLUG)
    seen = []  # every request of the context, the provider's popup included
    context.on("request", lambda r: seen.append(r))
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    gatekeepers = (origin(acme.gatekeeper_url), origin(location_b["url"]))
    try:
        page.goto(f"{stack.portal_url}/settings/moves/")
        source = page.locator("[name=source]")
        assert source.locator("option").count() == 1  # A, the vendor-hosted location, alone holds tickets
        assert acme.seeded["gatekeeper_id"] in source.locator("option").first.text_content()
        source.select_option(index=0)
        page.locator("[name=concurrency]").fill("2")
        with page.expect_navigation():
            page.get_by_test_id("move-submit").click()
        url = page.url.rstrip("/") + "/progress"
        started = move_progress(page, url)
        # Not the vendor's worker (it has no ID token for B): the admin's browser carries it.
        assert started["mode"] == "browser", started
        assert page.get_by_test_id("move-carrier").count() == 1
        carrier = page.get_by_test_id("move-carrier")
        assert (carrier.get_attribute("data-source-gatekeeper"), carrier.get_attribute("data-destination-gatekeeper")) \
            == (acme.gatekeeper_url, location_b["url"])
        total = started["objects"]["total"]
        assert total == sum(t["file_count"] for t in tickets)

        # Before Alice signs in: the page asks for the IdP's sign-in (at B's first put), and
        # carries nothing; it may have read at A (the vendor's: no token asked, none sent).
        banner = page.get_by_test_id("identity-banner")
        banner.wait_for(timeout=20_000)
        assert urlsplit(idp.issuer).netloc in banner.text_content()
        time.sleep(2)
        waiting = move_progress(page, url)
        assert waiting["state"] == "running" and waiting["objects"]["done"] == 0
        assert not [r.url for r in seen if origin(r.url) == origin(location_b["url"]) and r.method == "POST"]

        # She signs in in the page's popup: the move goes on, and finishes.
        sign_in_at_idp(page, ADMIN)
        page.get_by_test_id("carrier-status").filter(has_text="Finished").wait_for(timeout=180_000)
        done = move_progress(page, url)
        assert done["state"] == "finished" and done["mode"] == "browser"
        assert done["objects"] == {"done": total, "total": total}
        assert done["tickets"]["done"] == len(tickets) and done["failures"] == []
        assert errors == []

        # The browser signed at both gatekeepers: reads and erasures at A, puts and read-backs at B.
        signs = [r for r in seen if r.method == "POST" and r.url in (acme.gatekeeper_url + "/v1/sign",
                                                                      location_b["url"] + "/v1/sign")]
        at_b = [r for r in signs if r.url.startswith(location_b["url"])]
        assert {origin(r.url) for r in signs} == set(gatekeepers)
        assert all(r.headers.get("x-identity-token") for r in at_b)
        assert any('"op":"put"' in r.post_data for r in at_b) and any('"op":"get"' in r.post_data for r in at_b)
        tokens = {r.headers["x-identity-token"] for r in at_b}
        assert len(tokens) == 1
        token = tokens.pop()
        assert not [r for r in seen if r.url.startswith(stack.portal_url) and token in
                    r.url + repr(r.headers) + (r.post_data or "")]  # never to the portal
        # Nor to the vendor's gatekeeper A, which never asked for it: with grants the vendor
        # signs itself, a token it held would open B.
        to_a = [r for r in seen if origin(r.url) == origin(acme.gatekeeper_url)]
        assert to_a and not [r.url for r in to_a if "x-identity-token" in r.headers or token in
                             r.url + repr(r.headers) + (r.post_data or "")]

        # A ticket's report page reads it from B (its own sign-in: the IdP remembers her).
        response = page.goto(f"{stack.portal_url}/tickets/{tickets[0]['id']}/")
        connect = csp_directives(response.headers["content-security-policy"])["connect-src"]
        assert location_b["url"] in connect and location_b["storage_origin"] in connect
        assert origin(acme.gatekeeper_url) not in connect and origin(acme.storage_origin) not in connect
        before = len(seen)
        with page.expect_popup():
            page.get_by_test_id("identity-sign-in").click()
        wait_until_loaded(page)
        statuses = page.locator("[data-manifest-file] [data-file-status] .badge").evaluate_all(
            "badges => badges.map(b => b.dataset.status)")
        assert statuses and set(statuses) == {"verified"}, statuses
        reads = {origin(r.url) for r in seen[before:] if r.method == "POST" and origin(r.url) in gatekeepers}
        assert reads == {origin(location_b["url"])}
        assert not [r.url for r in seen if origin(r.url) == origin(acme.gatekeeper_url)
                    and "x-identity-token" in r.headers]
        assert errors == []
    finally:
        context.close()
        set_portal_idp(stack, SLUG, "", "")

    # B holds each object, put by Alice as the IdP names her.
    rows = audit_log(location_b["audit"])
    puts = [r for r in rows if r["op"] == "put" and r["outcome"] == "allow" and not r["key"].startswith("tickets/_probe/")]
    assert {(r["sub"], r["idp_sub"], r["idp_iss"]) for r in puts} == {(alice, ADMIN, idp.issuer)}
    for ticket in tickets:
        # The vendor-hosted copies are gone: no version, no delete marker left under the prefix.
        assert versions(s3, acme.bucket, ticket["prefix"]) == [], ticket
        stored = {o["Key"] for o in s3.list_objects_v2(Bucket=B_BUCKET, Prefix=ticket["prefix"])["Contents"]}
        assert len(stored) == ticket["file_count"] and stored <= {r["key"] for r in puts}
    # The vendor's gatekeeper (A) signed Alice's reads and erasures there, in her name.
    at_a = [r for r in stack.audit_rows(SLUG) if r["op"] in ("get", "delete") and r["outcome"] == "allow"
            and r["sub"] == alice]
    # Erased key by key, exactly the moved keys: never a prefix, never anything else.
    moved = {o["Key"] for t in tickets for o in s3.list_objects_v2(Bucket=B_BUCKET, Prefix=t["prefix"])["Contents"]}
    assert {r["key"] for r in at_a if r["op"] == "delete" and not r["key"].startswith("tickets/_probe/")} == moved
    assert {r["key"] for r in at_a if r["op"] == "get"} >= {k for t in tickets for k in
                                                            {o["Key"] for o in s3.list_objects_v2(
                                                                Bucket=B_BUCKET, Prefix=t["prefix"])["Contents"]}}
