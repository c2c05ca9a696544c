"""Create (or refresh) the demo tenants, people, signing keys and agent tokens.

Idempotent: running it again updates the same rows. Agent tokens are stored only
as hashes, so each run revokes the previous demo token and prints a new one.
See docs/portal.md for the options and the --json output.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from tenants.models import AgentToken, Membership, Tenant, TenantSigningKey
from tenants.signing import create_signing_key, trusted_public_keys, vendor_keys_toml
from tenants.tokens import issue_agent_token

DEMO_PASSWORD = "dualkey-demo"
DEMO_TOKEN_NAME = "demo agent"
DEFAULT_SPECS = (
    "acme,gk-acme,http://127.0.0.1:9101,acme-reports,http://127.0.0.1:9100",
    "globex,gk-globex,http://127.0.0.1:9102,globex-reports,http://127.0.0.1:9100",
)
# Who works where, and what each demo tenant is. Unknown slugs get one admin.
DEMO_TENANTS = {
    "acme": ("Acme Corp", Tenant.DataLocation.VENDOR, [("alice", "Alice", "admin"), ("bob", "Bob", "staff")]),
    "globex": ("Globex", Tenant.DataLocation.CUSTOMER, [("charlie", "Charlie", "admin")]),
}
SUPPORT_USER = ("victor", "Victor")


@dataclass(frozen=True)
class TenantSpec:
    slug: str
    gatekeeper_id: str
    gatekeeper_url: str
    bucket: str
    storage_origin: str

    @classmethod
    def parse(cls, text: str) -> "TenantSpec":
        parts = [part.strip() for part in text.split(",")]
        if len(parts) != 5 or not all(parts):
            raise CommandError(
                f"--tenant {text!r}: expected SLUG,GATEKEEPER_ID,GATEKEEPER_URL,BUCKET,STORAGE_ORIGIN"
            )
        return cls(*parts)


class Command(BaseCommand):
    help = "Create or refresh the demo tenants (acme, globex), their people, keys and agent tokens."

    def add_arguments(self, parser):
        parser.add_argument(
            "--tenant", action="append", metavar="SLUG,GATEKEEPER_ID,GATEKEEPER_URL,BUCKET,STORAGE_ORIGIN",
            help="a demo tenant (repeatable; default: $DUALKEY_DEMO_TENANTS, ';'-separated, or acme and globex)",
        )
        parser.add_argument("--region", default=os.environ.get("DUALKEY_DEMO_REGION", "us-east-1"))
        parser.add_argument("--password", default=os.environ.get("DUALKEY_DEMO_PASSWORD", DEMO_PASSWORD))
        parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
        parser.add_argument(
            "--allow-production", action="store_true",
            help="run even with DUALKEY_DEBUG off (demo users have a known password)",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["allow_production"]:
            raise CommandError("seed_demo creates users with a known password; refusing with DUALKEY_DEBUG off")
        specs = [TenantSpec.parse(text) for text in self._spec_texts(options["tenant"])]
        with transaction.atomic():
            support = self._person(SUPPORT_USER[0], SUPPORT_USER[1], options["password"], is_staff=True)
            tenants = [self._seed_tenant(spec, options["region"], options["password"]) for spec in specs]
        result = {
            "portal_origin": settings.DUALKEY_PORTAL_ORIGIN,
            "issuer": settings.DUALKEY_PORTAL_ORIGIN,
            "password": options["password"],
            "support": {"username": support.username},
            "tenants": tenants,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
        else:
            self._print_summary(result)

    @staticmethod
    def _spec_texts(given: list[str] | None) -> list[str]:
        if given:
            return given
        from_env = os.environ.get("DUALKEY_DEMO_TENANTS", "")
        return [text for text in from_env.split(";") if text.strip()] or list(DEFAULT_SPECS)

    def _seed_tenant(self, spec: TenantSpec, region: str, password: str) -> dict:
        name, location, people = DEMO_TENANTS.get(
            spec.slug, (spec.slug.title(), Tenant.DataLocation.VENDOR, [(f"{spec.slug}-admin", "Admin", "admin")])
        )
        tenant, _ = Tenant.objects.update_or_create(
            slug=spec.slug,
            defaults={
                "name": name, "status": Tenant.Status.ACTIVE, "data_location": location, "region": region,
                "bucket": spec.bucket, "gatekeeper_id": spec.gatekeeper_id,
                "gatekeeper_url": spec.gatekeeper_url.rstrip("/"), "storage_origin": spec.storage_origin,
            },
        )
        self._validate(tenant)
        if not tenant.signing_keys.filter(status=TenantSigningKey.Status.ACTIVE).exists():
            create_signing_key(tenant)
        users = []
        for username, first_name, role in people:
            user = self._person(username, first_name, password)
            Membership.objects.update_or_create(user=user, defaults={"tenant": tenant, "role": role})
            users.append({"username": username, "role": role})
        return {
            "slug": tenant.slug,
            "name": tenant.name,
            "data_location": tenant.data_location,
            "region": tenant.region,
            "bucket": tenant.bucket,
            "gatekeeper_id": tenant.gatekeeper_id,
            "gatekeeper_url": tenant.gatekeeper_url,
            "storage_origin": tenant.storage_origin,
            "vendor_keys": {key.kid: key.public_key for key in trusted_public_keys(tenant)},
            "vendor_keys_toml": vendor_keys_toml(tenant),
            "agent_token": self._fresh_demo_token(tenant),
            "users": users,
        }

    @staticmethod
    def _validate(tenant: Tenant) -> None:
        try:
            tenant.full_clean()
        except ValidationError as error:
            raise CommandError(f"tenant {tenant.slug}: {error.message_dict}") from None

    @staticmethod
    def _person(username: str, first_name: str, password: str, *, is_staff: bool = False):
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.first_name = first_name
        user.email = f"{username}@example.com"
        user.is_staff = is_staff
        user.set_password(password)
        user.save()
        return user

    @staticmethod
    def _fresh_demo_token(tenant: Tenant) -> str:
        AgentToken.objects.filter(tenant=tenant, name=DEMO_TOKEN_NAME, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        _, plaintext = issue_agent_token(tenant, DEMO_TOKEN_NAME)
        return plaintext

    def _print_summary(self, result: dict) -> None:
        self.stdout.write(f"Demo password for everyone: {result['password']}")
        self.stdout.write(f"Vendor support: {result['support']['username']}")
        for tenant in result["tenants"]:
            people = ", ".join(f"{user['username']} ({user['role']})" for user in tenant["users"])
            self.stdout.write(f"\n{tenant['slug']}: {people}")
            self.stdout.write(f"  gatekeeper {tenant['gatekeeper_id']} at {tenant['gatekeeper_url']}")
            self.stdout.write(f"  agent token: {tenant['agent_token']}")
            self.stdout.write("  " + tenant["vendor_keys_toml"].strip().replace("\n", "\n  "))
