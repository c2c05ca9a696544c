"""make_demo_tickets submits as a customer's agent does: pinned to a gatekeeper
that the command is told about, never one it reads from the portal's database.
(The pinned path itself runs in tests/test_demo.py, against real processes.)"""

from django.core.management import CommandError, call_command

from tenants.models import AgentToken
from tests.portal.base import BaseTestCase


class MakeDemoTicketsTests(BaseTestCase):
    def tokens(self):
        return AgentToken.objects.filter(tenant=self.tenant_a, name="demo generator").count()

    def test_it_refuses_to_run_without_a_pin_and_issues_no_token(self):
        # The tenant has a gatekeeper in the portal's settings: that is not a pin.
        self.assertTrue(self.tenant_a.has_gatekeeper)
        with self.assertRaisesMessage(CommandError, "--agent-config FILE, or --gatekeeper-url and --gatekeeper-id"):
            call_command("make_demo_tickets", "--tenant", "alpha", "--portal", "http://127.0.0.1:9")
        self.assertEqual(self.tokens(), 0)

    def test_it_refuses_a_half_or_insecure_pin(self):
        for args, message in (
            (["--gatekeeper-url", "https://gk.alpha.example"], "no gatekeeper_id"),
            (["--gatekeeper-url", "http://gk.alpha.example", "--gatekeeper-id", "gk-a"], "must use https"),
        ):
            with self.subTest(args=args), self.assertRaisesMessage(CommandError, message):
                call_command("make_demo_tickets", "--tenant", "alpha", "--portal", "http://127.0.0.1:9", *args)
        self.assertEqual(self.tokens(), 0)

    def test_an_unreadable_agent_configuration_is_a_clear_error(self):
        with self.assertRaisesMessage(CommandError, "cannot read the agent configuration /nonexistent/agent.toml"):
            call_command("make_demo_tickets", "--tenant", "alpha", "--agent-config", "/nonexistent/agent.toml")
        self.assertEqual(self.tokens(), 0)
