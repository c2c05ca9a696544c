"""Second factors in Chromium, for real.

- A passkey through Chromium's virtual authenticator (the DevTools WebAuthn domain):
  an admin invites someone, the mail reaches the stack's SMTP server, the invitee
  follows the link, sets a password, enrols a passkey, signs out, and signs in
  again with the passkey alone. The portal for these runs at http://localhost:<port>
  (Stack.start_portal): WebAuthn refuses an IP address as the relying party.
- "Require MFA": a tenant admin turns it on; a member who signs in is sent to enrol
  and can open nothing else; they enrol an authenticator app (the test computes the
  codes from the secret the page shows), then sign in with password + code.
"""

import re
import time

import pyotp

from tests.e2e.test_password_reset import wait_for_mail
from tests.stack import log_in

PASSWORD = "a long invitee passphrase 9"


def virtual_authenticator(context, page):
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, added["authenticatorId"]


def sign_out(page):
    with page.expect_navigation():
        page.click("nav button:has-text('Log out')")


def test_invite_then_enrol_a_passkey_then_sign_in_with_it(dualkey_stack, chromium):
    stack = dualkey_stack
    portal = stack.start_portal("localhost")
    admin_context, admin = log_in(chromium, stack, "alice", portal_url=portal)
    try:
        admin.goto(f"{portal}/settings/members/")
        admin.fill("input[name=username]", "pat")
        admin.fill("input[name=email]", "pat@acme.example")
        admin.select_option("select[name=role]", "staff")
        with admin.expect_navigation():
            admin.click("form[action='/settings/members/invite/'] [type=submit]")
    finally:
        admin_context.close()

    body = wait_for_mail(stack, "pat@acme.example").get_body(("plain",)).get_content()
    link = re.search(r"https?://\S+", body).group(0)
    assert link.startswith(f"{portal}/invitations/accept/?token="), link

    context = chromium.new_context()
    page = context.new_page()
    try:
        cdp, authenticator = virtual_authenticator(context, page)
        page.goto(link)
        page.fill("input[name=new_password1]", PASSWORD)
        page.fill("input[name=new_password2]", PASSWORD)
        with page.expect_navigation():
            page.click("[type=submit]")
        assert "/invitations/" not in page.url

        page.goto(f"{portal}/accounts/security/")
        assert page.get_by_test_id("mfa-status").text_content().strip() == "Off"
        with page.expect_navigation(url=re.compile(r"/accounts/security/\?added=passkey")):
            page.get_by_test_id("add-passkey").click()
        assert page.get_by_test_id("mfa-status").text_content().strip() == "On"
        assert page.locator("[data-authenticator=passkey]").count() == 1
        assert len(page.locator("[data-testid=recovery-codes] code").all_text_contents()) == 10
        credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
        assert len(credentials) == 1 and credentials[0]["isResidentCredential"]

        sign_out(page)
        assert page.goto(f"{portal}/tickets/").url.startswith(f"{portal}/accounts/login/")
        with page.expect_navigation(url=re.compile(r"/tickets/")):
            page.get_by_test_id("sign-in-with-passkey").click()
        assert page.locator("nav .who").text_content() == "pat"
        assert page.goto(f"{portal}/tickets/").status == 200
        # The authenticator signed (its counter moved on).
        assert cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"][0]["signCount"] >= 1

        # Password + passkey as the second step works too.
        sign_out(page)
        page.fill("input[name=username]", "pat")
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation(url=re.compile(r"/accounts/mfa/")):
            page.click("main form [type=submit]")
        with page.expect_navigation(url=re.compile(r"/tickets/")):
            page.get_by_test_id("use-passkey").click()
    finally:
        context.close()


def _new_tenant(stack, slug, admin, member):
    stack.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model\n"
        "from tenants.models import Membership, Tenant\n"
        "from tenants.services import create_tenant\n"
        f"t = create_tenant(slug={slug!r}, name={slug.title()!r}, status=Tenant.Status.ACTIVE)\n"
        "U = get_user_model()\n"
        f"Membership.objects.create(tenant=t, role='admin', user=U.objects.create_user({admin!r}, password={stack.password!r}))\n"
        f"Membership.objects.create(tenant=t, role='staff', user=U.objects.create_user({member!r}, password={stack.password!r}))\n"))


def enrol_totp(page, portal) -> str:
    page.goto(f"{portal}/accounts/security/totp/")
    secret = page.get_by_test_id("totp-secret").text_content().strip()
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    with page.expect_navigation():
        page.click("form[action='/accounts/security/totp/'] [type=submit]")
    assert page.get_by_test_id("mfa-status").text_content().strip() == "On"
    return secret


def sign_in_with_code(page, portal, username, password, code) -> None:
    page.goto(f"{portal}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation(url=re.compile(r"/accounts/mfa/")):
        page.click("main form [type=submit]")
    page.fill("input[name=code]", code)
    with page.expect_navigation():
        page.click("main form [type=submit]")


def test_require_mfa_sends_a_member_to_enrol_then_totp_sign_in(dualkey_stack, chromium):
    stack, portal = dualkey_stack, dualkey_stack.portal_url
    # A tenant of its own: "require MFA" must not hold the demo tenants' people other tests sign in as.
    _new_tenant(stack, "umbrella", "umbrella-admin", "umbrella-staff")
    context, page = log_in(chromium, stack, "umbrella-admin")
    try:
        admin_secret = enrol_totp(page, portal)  # an admin requires MFA only once they have it
        page.goto(f"{portal}/settings/sign-in/")
        page.check("input[name=mfa_required]")
        with page.expect_navigation():
            page.click("main form [type=submit]")
        assert page.locator("input[name=mfa_required]").is_checked()
    finally:
        context.close()

    context, page = log_in(chromium, stack, "umbrella-staff")
    try:
        assert page.url.startswith(f"{portal}/accounts/security/")
        assert page.get_by_test_id("mfa-enrol-required").is_visible()
        assert page.goto(f"{portal}/tickets/").url.startswith(f"{portal}/accounts/security/")

        with page.expect_navigation():
            page.get_by_test_id("add-totp").click()
        secret = page.get_by_test_id("totp-secret").text_content().strip()
        page.fill("input[name=code]", pyotp.TOTP(secret).now())
        with page.expect_navigation():
            page.click("form[action='/accounts/security/totp/'] [type=submit]")
        assert page.get_by_test_id("mfa-status").text_content().strip() == "On"
        assert page.goto(f"{portal}/tickets/").url == f"{portal}/tickets/"

        sign_out(page)
        sign_in_with_code(page, portal, "umbrella-staff", stack.password, "000000")
        assert "/accounts/mfa/" in page.url  # refused, asked again
        page.fill("input[name=code]", pyotp.TOTP(secret).at(time.time() + 30))  # a step enrolment did not use
        with page.expect_navigation():
            page.click("main form [type=submit]")
        assert page.goto(f"{portal}/tickets/").url == f"{portal}/tickets/"
    finally:
        context.close()

    # The admin, with password + code, sees the member's MFA on the members page.
    context = chromium.new_context()
    page = context.new_page()
    try:
        sign_in_with_code(page, portal, "umbrella-admin", stack.password, pyotp.TOTP(admin_secret).at(time.time() + 30))
        page.goto(f"{portal}/settings/members/")
        assert page.locator("tr[data-username=umbrella-staff] [data-mfa]").text_content() == "on"
    finally:
        context.close()
