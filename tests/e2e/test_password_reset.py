"""Reset by mail, for real: Chromium asks for a reset, the portal mails the link over
SMTP to the stack's aiosmtpd server (tests/smtp_sink.py), the test reads the delivered
message, follows its link in Chromium, sets a new password and signs in with it."""

import re
import time

NEW = "a brand new passphrase 7"


def wait_for_mail(stack, to: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in stack.mails():
            if message["To"] == to:
                return message
        time.sleep(0.1)
    raise AssertionError(f"no mail to {to} within {timeout}s")


def sign_in(page, stack, username, password) -> bool:
    page.goto(f"{stack.portal_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("[type=submit]")
    return "/accounts/login/" not in page.url


def test_reset_by_mail_then_sign_in_with_the_new_password(dualkey_stack, chromium):
    stack = dualkey_stack
    # An account of its own: the demo logins other tests use keep their password.
    stack.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_user('resetter', 'resetter@example.com', {stack.password!r})"))
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(f"{stack.portal_url}/accounts/login/")
        with page.expect_navigation():
            page.click("text=Forgot your password?")
        page.fill("input[name=email]", "resetter@example.com")
        with page.expect_navigation():
            page.click("[type=submit]")
        assert page.locator("[data-testid=password-reset-sent]").is_visible()

        message = wait_for_mail(stack, "resetter@example.com")
        body = message.get_body(("plain",)).get_content()
        link = re.search(r"https?://\S+", body).group(0)
        assert link.startswith(stack.portal_url + "/accounts/password/reset/"), link

        page.goto(link)
        page.fill("input[name=new_password1]", NEW)
        page.fill("input[name=new_password2]", NEW)
        with page.expect_navigation():
            page.click("[type=submit]")
        assert page.locator("[data-testid=password-reset-complete]").is_visible()

        # The link worked once.
        assert page.goto(link).status == 404
        context.clear_cookies()
        assert not sign_in(page, stack, "resetter", stack.password)
        assert sign_in(page, stack, "resetter", NEW)
    finally:
        context.close()
    # The token reached the mail, never the portal's log.
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert all(token not in path.read_text(errors="replace") for path in stack.portal_log_files())
