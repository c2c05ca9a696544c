"""Generate realistic demo tickets and submit them the real way.

Like an agent would: through the portal's agent API (over HTTP, to the running
portal), one /v1/sign call at the tenant's gatekeeper, and presigned POSTs
straight to the tenant's storage. The report content never passes through this
process's database: only the manifest the API records.

Where it uploads is pinned the way a customer pins its agents (docs/agent.md):
by an agent configuration file (`--agent-config`) or `--gatekeeper-url` and
`--gatekeeper-id`, never by the tenant's settings in this database, which is
the vendor's. A portal answer naming another gatekeeper is refused.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from gatekeeper_client.agent import ConfigError, SubmitFailed, load_config, submit_demo_reports
from tenants.models import Tenant
from tenants.tokens import issue_agent_token

GENERATOR_TOKEN_NAME = "demo generator"


class Command(BaseCommand):
    help = "Submit generated demo tickets for a tenant through the agent API and its gatekeeper."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--portal", default=None, help="portal base URL (default: the agent configuration's, "
                            "else DUALKEY_PORTAL_ORIGIN)")
        parser.add_argument("--agent-config", help="the customer's agent configuration (TOML: gatekeeper_url, "
                            "gatekeeper_id, portal_url): where uploads may go")
        parser.add_argument("--gatekeeper-url", help="the tenant's own gatekeeper (instead of --agent-config)")
        parser.add_argument("--gatekeeper-id", help="its gatekeeper id")
        parser.add_argument("--count", type=int, default=3)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--marker", help="plant this string in every report (for tests)")
        parser.add_argument("--extra-logs", type=int, default=0, help="extra small log files per report")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant {options['tenant']!r}")
        if not 1 <= options["count"] <= 500:
            raise CommandError("--count must be 1..500")
        # The pin first: a bad one issues no token.
        pin_given = options["gatekeeper_url"] or options["gatekeeper_id"]
        if not options["agent_config"] and not pin_given:
            raise CommandError("say where uploads may go, as a customer's agent configuration does: "
                               "--agent-config FILE, or --gatekeeper-url and --gatekeeper-id")
        try:
            config = load_config(options["agent_config"], env={}, token="-",
                                 portal_url=options["portal"] or (None if options["agent_config"]
                                                                  else settings.DUALKEY_PORTAL_ORIGIN),
                                 gatekeeper_url=options["gatekeeper_url"], gatekeeper_id=options["gatekeeper_id"])
        except ConfigError as bad:
            raise CommandError(str(bad)) from None
        # A token of its own, revoked when done: the generator is an agent like any other.
        row, token = issue_agent_token(tenant, GENERATOR_TOKEN_NAME)
        try:
            submitted = submit_demo_reports(
                config.portal_url, token, pin=config.pin, count=options["count"],
                seed=options["seed"], marker=options["marker"], extra_logs=options["extra_logs"],
            )
        except SubmitFailed as failed:
            raise CommandError(str(failed)) from None
        finally:
            row.revoked_at = timezone.now()
            row.save(update_fields=["revoked_at"])
        for ticket, files in submitted:
            self.stdout.write(f"ticket {ticket['number']} ({ticket['id']}): {len(files)} files, {ticket['status']}")
