"""Customer-approved vendor support access on the real stack, in Chromium: vendor
support asks to read one of Acme's tickets; Acme's admin makes an approver key in
her browser (WebCrypto, non-extractable, IndexedDB), pastes the [approvers] block
into Acme's gatekeeper (the stack restarts it), and approves with that key; support
reads the report, every read in Acme's audit log under the approval id; the
approval ends (its window is signed short: the admin's browser clock is set back,
as Playwright's clock allows) and support is refused, by the portal and by the
gatekeeper. A support grant the vendor mints itself, with a valid vendor
signature and no approval, is refused throughout."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests

from tests.stack import ReportView, log_in, open_view

pytestmark = pytest.mark.e2e

SUPPORT = "victor"
WINDOW = 40  # seconds the approval has left when the admin signs it
LEEWAY = 30  # the gatekeeper's clock_leeway (the demo's default)


def vendor_grant(stack, prefix: str, subject: str) -> str:
    """What a compromised vendor can make: a grant with a valid vendor signature."""
    return stack.manage("mint_grant", "--tenant", "acme", "--prefix", prefix, "--ops", "get,list",
                        "--subject", subject, "--lifetime", "60").stdout.strip()


def sign_at_gatekeeper(gatekeeper_url: str, grant: str, prefix: str, approval: str | None = None):
    headers = {"Authorization": f"Bearer {grant}"}
    if approval:
        headers["X-Approval"] = approval
    return requests.post(gatekeeper_url + "/v1/sign", json={"ops": [{"op": "list", "prefix": prefix}]},
                         headers=headers, timeout=10)


def test_support_reads_with_a_browser_held_approval_until_it_ends(dualkey_stack, chromium):
    stack = dualkey_stack
    acme = stack.tenants["acme"]
    ticket = acme.tickets[0]
    subject = f"support:{stack.user_ids()[SUPPORT]}"

    # Without an approval, the vendor's own signature is not enough.
    refused = sign_at_gatekeeper(acme.gatekeeper_url, vendor_grant(stack, ticket["prefix"], subject),
                                 ticket["prefix"])
    assert (refused.status_code, refused.json()["error"]) == (403, "approval_required")

    # 1. Support asks.
    support_context, support_page = log_in(chromium, stack, SUPPORT)
    admin_context, admin_page = log_in(chromium, stack, acme.admin)
    try:
        support_page.goto(f"{stack.portal_url}/support/tenants/acme/access/")
        support_page.fill("input[name=number]", str(ticket["number"]))
        support_page.select_option("select[name=reason_code]", "customer_asked")
        support_page.fill("textarea[name=reason]", "e2e: the customer asked us to look")
        support_page.fill("input[name=hours]", "1")
        with support_page.expect_navigation():
            support_page.click("[data-testid=support-access-form] [type=submit]")
        row = support_page.locator("[data-testid=support-accesses] tr[data-access-id]").first
        access_id = row.get_attribute("data-access-id")
        assert row.get_attribute("data-state") == "pending"
        assert any("vendor support asked for access" in m["Subject"].lower() for m in stack.mails())

        # 2. The admin makes an approver key in her browser; Acme's gatekeeper gets the block.
        admin_page.goto(f"{stack.portal_url}/settings/")
        admin_page.wait_for_selector("[data-action=make-approver-key]:not([disabled])")
        with admin_page.expect_navigation():
            admin_page.click("[data-action=make-approver-key]")
        held = admin_page.get_by_test_id("browser-key")
        admin_page.wait_for_function(
            "() => document.querySelector('[data-testid=browser-key]').dataset.approverId")
        approver = held.get_attribute("data-approver-id")
        # Non-extractable: the page itself cannot read the private half out.
        assert admin_page.evaluate("""async () => {
          const db = await new Promise((ok) => { const r = indexedDB.open("dualkey-approver"); r.onsuccess = () => ok(r.result); });
          const keys = await new Promise((ok) => { const r = db.transaction("keys").objectStore("keys").getAll(); r.onsuccess = () => ok(r.result); });
          const key = keys.find((k) => k.approverId === %r);
          try { await crypto.subtle.exportKey("jwk", key.privateKey); return "exported"; } catch { return key.privateKey.extractable; }
        }""" % approver) is False
        block = admin_page.get_by_test_id("approvers-toml").text_content()
        assert approver in block
        stack.reconfigure_gatekeeper("acme", block)
        health = requests.get(acme.gatekeeper_url + "/v1/health", timeout=5).json()
        assert (health["features"], health["approvers"]) == (["approvals", "prefixes"], [approver])

        # 3. She approves with it, her browser's clock set back so that the window ends soon.
        admin_context.clock.set_fixed_time(dt.datetime.fromtimestamp(time.time() - 3600 + WINDOW, dt.timezone.utc))
        admin_page.goto(f"{stack.portal_url}/settings/#support-access")
        approve = admin_page.locator(f"tr[data-access-id='{access_id}'] [data-action=approve-in-browser]")
        approve.wait_for(state="visible")
        admin_page.wait_for_selector(f"tr[data-access-id='{access_id}'] [data-action=approve-in-browser]:not([disabled])")
        with admin_page.expect_navigation():
            approve.click()
        signed_at = time.time()
        assert admin_page.locator(f"tr[data-access-id='{access_id}']").get_attribute("data-state") == "approved"

        # 4. Support reads the report: every op audited under the approval id.
        approvals = []
        context, view = open_view(
            ReportView, chromium, stack, SUPPORT, f"/support/access/{access_id}/",
            before_load=lambda page: page.on("request", lambda r: approvals.append(r.headers.get("x-approval"))
                                             if r.url.endswith("/v1/sign") and r.method == "POST" else None))
        try:
            assert view.status == 200
            assert view.banner("error") is None, view.banner("error")
            assert set(view.file_statuses().values()) == {"verified"}, view.file_statuses()
        finally:
            context.close()
        [approval] = [a for a in approvals if a]
        rows = [r for r in stack.audit_rows("acme") if r["sub"] == subject and r["outcome"] == "allow"]
        assert rows and {(r["approval"], r["approvers"]) for r in rows} == {(access_id, approver)}
        assert {r["op"] for r in rows} == {"list", "get"}
        # The admin's audit log page shows the approval beside those reads.
        admin_context.clock.set_fixed_time(dt.datetime.now(dt.timezone.utc))
        admin_page.goto(f"{stack.portal_url}/audit/?sub={subject}&outcome=allow")
        admin_page.wait_for_selector("[data-audit-root][data-loaded=true]", state="attached", timeout=20_000)
        shown = admin_page.get_by_test_id("audit-approval").all_text_contents()
        assert shown and set(shown) == {f"{access_id} ({approver})"}

        # 5. The approval ends: the portal mints no more, and the gatekeeper refuses it.
        time.sleep(max(0.0, signed_at + WINDOW + 1 - time.time()))
        support_page.goto(f"{stack.portal_url}/support/access/")
        assert support_page.locator(f"tr[data-access-id='{access_id}']").get_attribute("data-state") == "expired"
        closed = support_page.goto(f"{stack.portal_url}/support/access/{access_id}/")
        assert closed.status == 403
        assert support_page.get_by_test_id("access-closed").get_attribute("data-state") == "expired"
        time.sleep(max(0.0, signed_at + WINDOW + LEEWAY + 2 - time.time()))
        late = sign_at_gatekeeper(acme.gatekeeper_url, vendor_grant(stack, ticket["prefix"], subject),
                                  ticket["prefix"], approval)
        assert (late.status_code, late.json()["error"]) == (403, "approval_expired")
        [record] = [r for r in stack.audit_rows("acme") if r["request_id"] == late.headers["X-Request-Id"]]
        assert (record["outcome"], record["reason"], record["approval"]) == ("deny", "approval_expired", access_id)
        # Another ticket's prefix with the same approval: never covered.
        other = sign_at_gatekeeper(acme.gatekeeper_url, vendor_grant(stack, "tickets/", subject), "tickets/",
                                   approval)
        assert (other.status_code, other.json()["error"]) == (403, "approval_invalid")
    finally:
        support_context.close()
        admin_context.close()
