"""Vendor support's tool for a tenant's signing keys (the settings page is the admin's).

    manage.py signing_keys TENANT                  show the keys and the [vendor_keys] block
    manage.py signing_keys TENANT --prepare        make and publish a next key (step 1)
    manage.py signing_keys TENANT --activate KID   sign with the next key KID (step 2)
    manage.py signing_keys TENANT --rotate-now     both at once: the active key stops
                                                   signing now (a suspected compromise);
                                                   grants fail until the gatekeeper
                                                   trusts the new key
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tenants.models import Tenant
from tenants.signing import (
    RotationError,
    activate_next_key,
    prepare_next_key,
    rotate_signing_key,
    trusted_public_keys,
    vendor_keys_toml,
)


class Command(BaseCommand):
    help = "Show or rotate a tenant's signing keys."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="tenant slug")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--prepare", action="store_true", help="make and publish a next key")
        action.add_argument("--activate", metavar="KID", help="switch to the next key KID")
        action.add_argument("--rotate-now", action="store_true",
                            help="make a new key and sign with it at once (for a compromised key)")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant {options['tenant']!r}")
        try:
            if options["prepare"]:
                key = prepare_next_key(tenant)
                self.stdout.write(f"next key {key.kid}: add it to the gatekeeper, then --activate {key.kid}")
            elif options["activate"]:
                key = activate_next_key(tenant, options["activate"])
                self.stdout.write(f"grants are now signed with {key.kid}")
            elif options["rotate_now"]:
                key = rotate_signing_key(tenant)
                self.stdout.write(f"grants are now signed with {key.kid}; the gatekeeper refuses them "
                                  "until its [vendor_keys] lists it")
        except RotationError as error:
            raise CommandError(str(error)) from None
        for key in trusted_public_keys(tenant):
            self.stdout.write(f"  {key.kid}  {key.status}")
        self.stdout.write(vendor_keys_toml(tenant), ending="")
