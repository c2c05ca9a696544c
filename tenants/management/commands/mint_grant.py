"""Mint a grant for a demo tenant's gatekeeper from the command line.

A development tool: it signs with the tenant's key without any user logging in,
so it refuses to run with DUALKEY_DEBUG off. The demo prints a curl line that
uses it; docs/protocol.md explains what the grant says.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gatekeeper.errors import OPS
from gatekeeper_client.grants import mint_grant
from tenants.models import Tenant
from tenants.signing import active_signing_key

MAX_LIFETIME = 300


class Command(BaseCommand):
    help = "Print a grant for a tenant's gatekeeper (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--prefix", default="tickets/")
        parser.add_argument("--ops", default="list", help=f"comma-separated, among {', '.join(OPS)}")
        parser.add_argument("--subject", default="user:cli")
        parser.add_argument("--lifetime", type=int, default=120)
        parser.add_argument("--identity", default="", help="the identity claim (the person's email address)")

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("mint_grant bypasses logging in; refusing with DUALKEY_DEBUG off")
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant {options['tenant']!r}")
        if not 1 <= options["lifetime"] <= MAX_LIFETIME:
            raise CommandError(f"--lifetime must be 1..{MAX_LIFETIME}")
        ops = [op.strip() for op in options["ops"].split(",") if op.strip()]
        try:
            token = mint_grant(
                active_signing_key(tenant), issuer=settings.DUALKEY_PORTAL_ORIGIN,
                audience=tenant.gatekeeper_id, subject=options["subject"], prefix=options["prefix"],
                ops=ops, lifetime=options["lifetime"], identity=options["identity"] or None,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(token)
