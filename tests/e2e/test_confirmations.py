"""Revoking an agent token asks first, in a real browser: Cancel sends nothing,
OK revokes (the form's data-confirm, lib/page.js)."""

from __future__ import annotations

import pytest

from tests.stack import log_in

pytestmark = pytest.mark.e2e


def test_revoking_a_token_asks_and_cancel_keeps_it(dualkey_stack, chromium):
    context, page = log_in(chromium, dualkey_stack, "alice")
    try:
        page.goto(f"{dualkey_stack.portal_url}/settings/")
        page.fill("form[action$='/settings/tokens/'] input[name=name]", "Confirm probe")
        with page.expect_navigation():
            page.click("form[action$='/settings/tokens/'] button[type=submit]")
        row = page.locator("tr", has_text="Confirm probe")
        asked = []

        def dismiss(dialog):
            asked.append(dialog.message)
            dialog.dismiss()

        page.once("dialog", dismiss)
        row.locator("button.danger").click()
        page.wait_for_timeout(300)
        assert asked and asked[0].startswith("Revoke the agent token Confirm probe?")
        assert row.locator("button.danger").count() == 1  # still active: nothing was sent

        page.once("dialog", lambda dialog: dialog.accept())
        with page.expect_navigation():
            row.locator("button.danger").click()
        assert page.locator("tr", has_text="Confirm probe").locator("button.danger").count() == 0
        assert "revoked" in page.locator("tr", has_text="Confirm probe").text_content()
    finally:
        context.close()
