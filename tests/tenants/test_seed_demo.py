import io
import json
import os
from unittest import mock

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.http import HttpRequest
from django.test import TestCase, override_settings

from gatekeeper_client.grants import b64url_decode
from portal.tickets.grants import read_grant
from portal.tickets.services import create_ticket
from tenants.access import access_agent_token
from tenants.models import AgentToken, Tenant

FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@override_settings(PASSWORD_HASHERS=FAST_HASHER)
class SeedDemoTestCase(TestCase):
    def seed(self, *args):
        out = io.StringIO()
        with self.settings(DEBUG=True):
            call_command("seed_demo", "--json", *args, stdout=out)
        return json.loads(out.getvalue())

    def test_it_creates_the_demo_tenants_and_people(self):
        result = self.seed()
        self.assertEqual([t["slug"] for t in result["tenants"]], ["acme", "globex"])
        acme, globex = result["tenants"]
        self.assertEqual(acme["data_location"], "vendor")
        self.assertEqual(globex["data_location"], "customer")
        self.assertEqual(acme["users"], [{"username": "alice", "role": "admin"}, {"username": "bob", "role": "staff"}])
        self.assertEqual(globex["users"], [{"username": "charlie", "role": "admin"}])
        self.assertEqual(acme["gatekeeper_id"], "gk-acme")
        self.assertEqual(acme["gatekeeper_url"], "http://127.0.0.1:9101")
        self.assertEqual(result["issuer"], "http://127.0.0.1:8000")
        for username in ("alice", "bob", "charlie", "victor"):
            # The sign-in throttle (axes) needs a request; a blank one will do.
            self.assertIsNotNone(authenticate(HttpRequest(), username=username, password="dualkey-demo"))
        self.assertEqual(Tenant.objects.get(slug="acme").status, Tenant.Status.ACTIVE)

    def test_it_prints_working_tokens_and_keys(self):
        acme = self.seed()["tenants"][0]
        token = access_agent_token(acme["agent_token"])
        self.assertEqual(token.tenant.slug, "acme")
        (kid, public), = acme["vendor_keys"].items()
        self.assertEqual(acme["vendor_keys_toml"], f'[vendor_keys]\n{kid} = "{public}"\n')

    def test_it_is_idempotent(self):
        first = self.seed()
        second = self.seed()
        self.assertEqual(Tenant.objects.count(), 2)
        self.assertEqual(first["tenants"][0]["vendor_keys"], second["tenants"][0]["vendor_keys"])
        # The old demo token is revoked; one live demo token per tenant remains.
        self.assertIsNone(access_agent_token(first["tenants"][0]["agent_token"]))
        self.assertIsNotNone(access_agent_token(second["tenants"][0]["agent_token"]))
        self.assertEqual(AgentToken.objects.filter(revoked_at__isnull=True).count(), 2)

    def test_it_takes_tenant_specs(self):
        result = self.seed("--tenant", "acme,gk-a,http://127.0.0.1:7001,acme-bucket,http://127.0.0.1:7000",
                           "--tenant", "initech,gk-i,https://gk.initech.example,initech-bucket,"
                           "https://initech-bucket.s3.us-east-1.amazonaws.com")
        acme, initech = result["tenants"]
        self.assertEqual(acme["gatekeeper_url"], "http://127.0.0.1:7001")
        self.assertEqual(acme["storage_origin"], "http://127.0.0.1:7000")
        self.assertEqual(initech["users"], [{"username": "initech-admin", "role": "admin"}])

    def test_it_takes_specs_from_the_environment(self):
        spec = "globex,gk-g,http://127.0.0.1:7002,globex-bucket,http://127.0.0.1:7000"
        with mock.patch.dict(os.environ, {"DUALKEY_DEMO_TENANTS": spec}):
            result = self.seed()
        self.assertEqual([t["gatekeeper_id"] for t in result["tenants"]], ["gk-g"])

    def test_it_rejects_a_malformed_spec(self):
        with self.assertRaisesMessage(CommandError, "SLUG,GATEKEEPER_ID"):
            self.seed("--tenant", "acme,gk-acme")

    def test_it_rejects_invalid_values(self):
        with self.assertRaisesMessage(CommandError, "storage_origin"):
            self.seed("--tenant", "acme,gk-acme,http://127.0.0.1:9101,acme-reports,http://evil.example/x")

    def test_it_refuses_to_run_in_production(self):
        with self.settings(DEBUG=False), self.assertRaisesMessage(CommandError, "DUALKEY_DEBUG"):
            call_command("seed_demo", stdout=io.StringIO())

    def test_grants_for_a_seeded_tenant_verify_with_the_printed_key(self):
        result = self.seed()
        acme = result["tenants"][0]
        agent = access_agent_token(acme["agent_token"])
        ticket = create_ticket(agent, [{"name": "a.txt", "size": 1, "content_type": "text/plain", "sha256": "0" * 64}])
        grant = read_grant(ticket, get_user_model().objects.get(username="bob")).token
        (public,) = acme["vendor_keys"].values()
        key = Ed25519PublicKey.from_public_bytes(b64url_decode(public))
        claims = jwt.decode(grant, key, algorithms=["EdDSA"], audience="gk-acme", issuer=result["issuer"])
        self.assertEqual(claims["name"], "Bob")

