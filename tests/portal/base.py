"""The shared story for portal and tenant tests.

Alice is the admin of tenant A (Alpha), Bob is help-desk staff at A, Charlie is the
admin of tenant B (Beta). Victor is vendor support and belongs to no tenant.
A has one ticket, submitted by A's agent; B has one of its own.
"""

from __future__ import annotations

import hashlib

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import TestCase, override_settings

from gatekeeper_client.grants import b64url_decode
from portal.tickets.services import create_ticket
from tenants.models import Membership, Tenant, TenantSigningKey
from tenants.services import create_tenant
from tenants.tokens import issue_agent_token


def manifest_entry(name="screenshot.png", size=1234, content_type="image/png", data=b"png"):
    return {"name": name, "size": size, "content_type": content_type, "sha256": hashlib.sha256(data).hexdigest()}


def public_key(tenant: Tenant, kid: str) -> Ed25519PublicKey:
    row = TenantSigningKey.objects.get(tenant=tenant, kid=kid)
    return Ed25519PublicKey.from_public_bytes(b64url_decode(row.public_key))


def decode_grant(token: str, tenant: Tenant) -> dict:
    """Verify a grant the way a gatekeeper does: EdDSA only, with this tenant's key."""
    kid = jwt.get_unverified_header(token)["kid"]
    return jwt.decode(
        token,
        public_key(tenant, kid),
        algorithms=["EdDSA"],
        audience=tenant.gatekeeper_id,
        issuer=settings.DUALKEY_PORTAL_ORIGIN,
    )


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
class BaseTestCase(TestCase):
    def setUp(self):
        super().setUp()
        self.tenant_a = create_tenant(
            slug="alpha", name="Alpha Ltd", status=Tenant.Status.ACTIVE, region="eu-west-1",
            bucket="alpha-reports", gatekeeper_url="https://gk.alpha.example/dualkey",
            gatekeeper_id="gk-alpha", storage_origin="https://alpha-reports.s3.eu-west-1.amazonaws.com",
        )
        self.tenant_b = create_tenant(
            slug="beta", name="Beta GmbH", status=Tenant.Status.ACTIVE, region="eu-central-1",
            data_location=Tenant.DataLocation.CUSTOMER, bucket="beta-reports",
            gatekeeper_url="https://gk.beta.example", gatekeeper_id="gk-beta",
            storage_origin="https://beta-reports.s3.eu-central-1.amazonaws.com",
        )
        self.alice = self.make_user("alice", "Alice", self.tenant_a, Membership.Role.ADMIN)
        self.bob = self.make_user("bob", "Bob", self.tenant_a, Membership.Role.STAFF)
        self.charlie = self.make_user("charlie", "Charlie", self.tenant_b, Membership.Role.ADMIN)
        self.victor = get_user_model().objects.create_user("victor", password="password", is_staff=True)

        self.agent_a, self.agent_a_token = issue_agent_token(self.tenant_a, "Alpha help button")
        self.agent_b, self.agent_b_token = issue_agent_token(self.tenant_b, "Beta help button")
        self.ticket = create_ticket(
            self.agent_a,
            [manifest_entry("screenshot.png"), manifest_entry("message.txt", content_type="text/plain", data=b"hi")],
        )
        self.ticket_b = create_ticket(self.agent_b, [manifest_entry("logs.txt", content_type="text/plain")])

    @staticmethod
    def make_user(username, first_name, tenant, role):
        user = get_user_model().objects.create_user(username, password="password", first_name=first_name)
        Membership.objects.create(user=user, tenant=tenant, role=role)
        return user

    def login(self, user):
        self.client.force_login(user)

    def agent_headers(self, token):
        return {"HTTP_AUTHORIZATION": f"Token {token}"}
