"""Generate realistic demo tickets and submit them the real way.

Like an agent would: through the portal's agent API (over HTTP, to the running
portal), one /v1/sign call at the tenant's gatekeeper, and presigned POSTs
straight to the tenant's storage. The report content never passes through this
process's database: only the manifest the API records.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from gatekeeper_client.agent import SubmitFailed, submit_demo_reports
from tenants.models import Tenant
from tenants.tokens import issue_agent_token

GENERATOR_TOKEN_NAME = "demo generator"


class Command(BaseCommand):
    help = "Submit generated demo tickets for a tenant through the agent API and its gatekeeper."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--portal", default=None, help="portal base URL (default: DUALKEY_PORTAL_ORIGIN)")
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
        # A token of its own, revoked when done: the generator is an agent like any other.
        row, token = issue_agent_token(tenant, GENERATOR_TOKEN_NAME)
        try:
            submitted = submit_demo_reports(
                options["portal"] or settings.DUALKEY_PORTAL_ORIGIN, token, count=options["count"],
                seed=options["seed"], marker=options["marker"], extra_logs=options["extra_logs"],
            )
        except SubmitFailed as failed:
            raise CommandError(str(failed)) from None
        finally:
            row.revoked_at = timezone.now()
            row.save(update_fields=["revoked_at"])
        for ticket, files in submitted:
            self.stdout.write(f"ticket {ticket['number']} ({ticket['id']}): {len(files)} files, {ticket['status']}")
