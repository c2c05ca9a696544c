"""Sign out everywhere, in Chromium: two browsers signed in as one person; one
presses the button on the Security page, and both are signed out."""

from tests.stack import log_in


def test_sign_out_everywhere_ends_the_other_browsers_session(dualkey_stack, chromium):
    stack = dualkey_stack
    stack.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model\n"
        "from tenants.models import Membership, Tenant\n"
        "u = get_user_model().objects.create_user('traveller', password=" + repr(stack.password) + ")\n"
        "Membership.objects.create(tenant=Tenant.objects.get(slug='acme'), user=u, role='staff')\n"))
    laptop_context, laptop = log_in(chromium, stack, "traveller")
    phone_context, phone = log_in(chromium, stack, "traveller")
    try:
        assert phone.goto(f"{stack.portal_url}/tickets/").url == f"{stack.portal_url}/tickets/"
        laptop.goto(f"{stack.portal_url}/accounts/security/")
        with laptop.expect_navigation():
            laptop.get_by_test_id("sign-out-everywhere").click()
        assert "signed out on every device" in laptop.locator(".messages").text_content()
        phone.goto(f"{stack.portal_url}/tickets/")
        assert phone.url.startswith(f"{stack.portal_url}/accounts/login/")
        assert "signed out on every device" in phone.locator(".messages").text_content()
    finally:
        laptop_context.close()
        phone_context.close()
