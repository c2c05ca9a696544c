"""Single sign-on in Chromium against a real OpenID Connect provider (npm's
oidc-provider, tests/oidc_provider.py): a tenant admin configures it on
/settings/sign-in/, people sign in through the whole authorization-code flow
(the provider's own login and consent pages) and join just in time — with the
default role, or as admins by the IdP's group claim; with "SSO required" the
password form refuses the tenant's members."""

import re

from tests.e2e.test_mfa import _new_tenant
from tests.oidc_provider import PORTAL_CLIENT_ID, PORTAL_CLIENT_SECRET, oidc_provider_fixture
from tests.stack import log_in

oidc_provider = oidc_provider_fixture()


def configure_sso(page, portal, provider, **extra):
    page.goto(f"{portal}/settings/sign-in/")
    page.check("input[name=sso_enabled]")
    page.fill("input[name=issuer]", provider.issuer)
    page.fill("input[name=client_id]", PORTAL_CLIENT_ID)
    page.fill("input[name=client_secret]", PORTAL_CLIENT_SECRET)
    page.fill("textarea[name=email_domains]", "stark.example")
    page.select_option("select[name=default_role]", "staff")
    page.fill("input[name=admin_group]", "portal-admins")
    for name in extra:
        page.check(f"input[name={name}]")
    with page.expect_navigation():
        page.click("main form [type=submit]")
    assert page.locator("main .errors").count() == 0, page.locator("main").text_content()


def sso_sign_in(page, portal, provider, address, login):
    page.goto(f"{portal}/accounts/login/")
    with page.expect_navigation():
        page.get_by_test_id("sso-link").click()
    page.fill("input[name=identifier]", address)
    with page.expect_navigation(url=re.compile(re.escape(provider.issuer) + "/interaction/")):
        page.click("main form [type=submit]")
    # The provider's own pages: login, then consent.
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "anything")
    with page.expect_navigation(url=re.compile(re.escape(provider.issuer))):
        page.click("button[type=submit]")
    with page.expect_navigation(url=re.compile(re.escape(portal))):
        page.click("button[type=submit]")


def member_role(stack, username):
    code = ("from tenants.models import Membership; "
            f"m = Membership.objects.select_related('tenant').get(user__username={username!r}); "
            "print(m.tenant.slug, m.role)")
    return stack.manage("shell", "-c", code).stdout.strip().splitlines()[-1]


def test_sso_sign_in_with_just_in_time_membership_then_sso_required(dualkey_stack, chromium, oidc_provider):
    stack, portal = dualkey_stack, dualkey_stack.portal_url
    _new_tenant(stack, "stark", "stark-admin", "stark-staff")
    context, page = log_in(chromium, stack, "stark-admin")
    try:
        configure_sso(page, portal, oidc_provider)
    finally:
        context.close()

    # Sam is new to the portal: an account and a staff membership, just in time.
    context = chromium.new_context()
    page = context.new_page()
    try:
        sso_sign_in(page, portal, oidc_provider, "sam@stark.example", "sam")
        assert page.url.startswith(f"{portal}/tickets/"), page.url
        assert page.locator("nav .who").text_content() == "sam@stark.example"
        assert "Stark" in page.locator("nav").text_content()
    finally:
        context.close()
    assert member_role(stack, "sam@stark.example") == "stark staff"

    # Tony is in the IdP's admin group: he joins as admin and sees the members page.
    context = chromium.new_context()
    page = context.new_page()
    try:
        sso_sign_in(page, portal, oidc_provider, "stark", "tony")  # by the tenant's slug this time
        assert page.goto(f"{portal}/settings/members/").status == 200
        assert page.locator("tr[data-username='sam@stark.example']").count() == 1
    finally:
        context.close()
    assert member_role(stack, "tony@stark.example") == "stark admin"

    # An IdP account outside the tenant's domains is refused, and no account is made.
    context = chromium.new_context()
    page = context.new_page()
    try:
        sso_sign_in(page, portal, oidc_provider, "stark", "mallory")
        assert "does not sign in people with that address" in page.get_by_test_id("sso-error").text_content()
        assert page.goto(f"{portal}/tickets/").url.startswith(f"{portal}/accounts/login/")
    finally:
        context.close()

    # SSO required: the password form refuses Stark's members.
    context, page = log_in(chromium, stack, "stark-admin")
    try:
        configure_sso(page, portal, oidc_provider, sso_required=True)
    finally:
        context.close()
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(f"{portal}/accounts/login/")
        page.fill("input[name=username]", "stark-staff")
        page.fill("input[name=password]", stack.password)
        with page.expect_navigation() as navigation:
            page.click("main form [type=submit]")
        assert navigation.value.status == 403
        assert "signs in with single sign-on" in page.locator("main div.errors").text_content()
        assert page.goto(f"{portal}/tickets/").url.startswith(f"{portal}/accounts/login/")
        # ...while SSO still signs them in.
        sso_sign_in(page, portal, oidc_provider, "sam@stark.example", "sam")
        assert page.url.startswith(f"{portal}/tickets/")
    finally:
        context.close()
