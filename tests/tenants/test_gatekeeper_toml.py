"""/settings/gatekeeper.toml: a complete configuration for a self-hosted gatekeeper,
which the gatekeeper's own loader (and `check-config`) accepts once its
placeholders are filled in, and refuses, naming the key, while they are not."""

import os
import subprocess
import tempfile
import tomllib
from pathlib import Path

from django.test import override_settings

from gatekeeper import config as gatekeeper_config
from gatekeeper.errors import ConfigError
from tenants.gatekeeper_toml import BUCKET_PLACEHOLDER, JWKS_PLACEHOLDER, REGION_PLACEHOLDER
from tenants.signing import rotate_signing_key, trusted_public_keys
from tests import support
from tests.portal.base import BaseTestCase
from tests.support import set_active_location

URL = "/settings/gatekeeper.toml"
PORTAL = "https://portal.dualkey.example"


@override_settings(DUALKEY_PORTAL_ORIGIN=PORTAL)
class GatekeeperTomlTestCase(BaseTestCase):
    def download(self, user=None) -> str:
        self.login(user or self.alice)
        r = self.client.get(URL)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r["Content-Type"], "application/toml; charset=utf-8")
        self.assertEqual(r["Cache-Control"], "no-store")
        return r.content.decode()

    def write(self, text: str) -> Path:
        handle, name = tempfile.mkstemp(suffix=".toml")
        os.close(handle)
        self.addCleanup(os.unlink, name)
        Path(name).write_text(text)
        return Path(name)

    def load(self, text: str) -> gatekeeper_config.Config:
        """As the gatekeeper reads its file (the environment left out)."""
        return gatekeeper_config.load(str(self.write(text)), env={})

    def test_it_gives_alice_a_config_her_gatekeeper_accepts_as_is(self):
        text = self.download()
        config = self.load(text)
        self.assertEqual(config.gatekeeper_id, "gk-alpha")
        self.assertEqual(config.issuer, PORTAL)
        self.assertEqual(config.allowed_origins, frozenset([PORTAL]))
        self.assertEqual(set(config.vendor_key_ids), {key.kid for key in trusted_public_keys(self.tenant_a)})
        self.assertEqual((config.storage.bucket, config.storage.region), ("alpha-reports", "eu-west-1"))
        self.assertEqual(config.storage.endpoint_url, "")  # AWS: the origin follows from bucket and region
        self.assertEqual(config.storage.encryption, "sse-s3")
        self.assertEqual(config.audit_url, "sqlite:///var/lib/dualkey-gatekeeper/audit.db")
        self.assertEqual([str(n) for n in config.trusted_proxies], ["127.0.0.1/32", "::1/128"])
        self.assertTrue(config.enabled)
        self.assertNotIn("FILL-IN", text.replace("# FILL IN", ""))  # nothing left to fill for Alpha
        self.assertIn("CHOOSE", text)

    def test_the_gatekeeper_cli_checks_it_too(self):
        path = self.write(self.download())
        checked = subprocess.run([support.PYTHON, "-m", "gatekeeper", "check-config", "--config", str(path)],
                                 cwd=support.ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
        self.assertEqual(checked.returncode, 0, checked.stderr)
        self.assertTrue(checked.stdout.startswith("config ok: gatekeeper_id=gk-alpha"))

    def test_its_keys_are_exactly_the_trusted_ones_after_a_rotation(self):
        rotate_signing_key(self.tenant_a)
        keys = tomllib.loads(self.download())["vendor_keys"]
        self.assertEqual(keys, {key.kid: key.public_key for key in trusted_public_keys(self.tenant_a)})
        self.assertEqual(len(keys), 2)

    def test_what_the_portal_does_not_know_is_a_placeholder_refused_until_filled(self):
        set_active_location(self.tenant_a, bucket="", region="", gatekeeper_id="")
        text = self.download()
        with self.assertRaises(ConfigError) as refused:
            self.load(text)
        self.assertEqual(refused.exception.key, "storage.bucket")
        with self.assertRaises(ConfigError) as refused:
            self.load(text.replace(BUCKET_PLACEHOLDER, "alpha-own-bucket"))
        self.assertEqual(refused.exception.key, "storage.region")
        config = self.load(text.replace(BUCKET_PLACEHOLDER, "alpha-own-bucket").replace(REGION_PLACEHOLDER,
                                                                                      "eu-north-1"))
        self.assertEqual((config.storage.bucket, config.storage.region), ("alpha-own-bucket", "eu-north-1"))
        # No id saved yet: one is proposed, and the file says to enter it in the portal too.
        self.assertEqual(config.gatekeeper_id, "gk-alpha")
        self.assertIn("Not saved in the portal yet", text)

    def set_idp(self, issuer: str, client_id: str):
        self.tenant_a.idp_issuer = issuer
        self.tenant_a.idp_client_id = client_id
        self.tenant_a.save()

    def test_without_an_idp_there_is_no_identity_block(self):
        text = self.download()
        self.assertNotIn("[identity]", text)
        self.assertIsNone(self.load(text).identity)
        self.set_idp("https://login.alpha.example/realms/alpha", "")  # half an IdP: still none
        self.assertNotIn("[identity]", self.download())

    def test_a_tenant_with_an_idp_gets_identity_with_the_jwks_url_left_to_fill_in(self):
        issuer = "https://login.alpha.example/realms/alpha"
        self.set_idp(issuer, "dualkey-pages")
        text = self.download()
        self.assertEqual(tomllib.loads(text)["identity"]["jwks_url"], JWKS_PLACEHOLDER)
        # The gatekeeper does not discover the JWKS: the file names where to look, and the
        # loader names the key until it is replaced.
        self.assertIn(f"# {issuer}/.well-known/openid-configuration", text)
        with self.assertRaises(ConfigError) as refused:
            self.load(text)
        self.assertEqual(refused.exception.key, "identity.jwks_url")
        jwks = f"{issuer}/protocol/openid-connect/certs"
        config = self.load(text.replace(JWKS_PLACEHOLDER, jwks))
        identity = config.identity
        self.assertEqual((identity.issuer, identity.audience, identity.jwks_url, identity.jwks_file),
                         (issuer, "dualkey-pages", jwks, ""))
        self.assertEqual((identity.claim, identity.max_age, set(identity.ops)),
                         ("email", 43200, {"get", "list", "delete", "audit"}))
        # The rest of the file is as before.
        self.assertEqual((config.gatekeeper_id, config.storage.bucket), ("gk-alpha", "alpha-reports"))
        # So does the CLI.
        path = self.write(text.replace(JWKS_PLACEHOLDER, jwks))
        checked = subprocess.run([support.PYTHON, "-m", "gatekeeper", "check-config", "--config", str(path)],
                                 cwd=support.ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
        self.assertEqual(checked.returncode, 0, checked.stderr)

    def test_a_jwks_file_instead_of_the_url_loads_too(self):
        self.set_idp("https://login.alpha.example", "dualkey-pages")
        jwks_file = self.write('{"keys": []}')
        text = self.download().replace(f'jwks_url = "{JWKS_PLACEHOLDER}"', f'jwks_file = "{jwks_file}"')
        self.assertEqual(self.load(text).identity.jwks_file, str(jwks_file))

    def test_an_idp_client_id_cannot_break_out_of_its_string(self):
        self.set_idp("https://login.alpha.example", 'x"\nenabled = false\n[identity]\nissuer = "')
        text = self.download()
        self.assertEqual(tomllib.loads(text)["identity"]["audience"], self.tenant_a.idp_client_id)
        self.assertTrue(tomllib.loads(text)["enabled"])

    def test_an_s3_compatible_storage_origin_becomes_its_endpoint_url(self):
        set_active_location(self.tenant_a, storage_origin="https://minio.alpha.example:9000")
        self.assertEqual(self.load(self.download()).storage.endpoint_url, "https://minio.alpha.example:9000")

    def test_a_tenant_name_cannot_break_out_of_its_comment(self):
        self.tenant_a.name = "Alpha\nenabled = false"
        self.tenant_a.save()
        self.assertTrue(self.load(self.download()).enabled)

    def test_it_is_a_download_named_for_the_tenant(self):
        self.login(self.alice)
        r = self.client.get(URL)
        self.assertEqual(r["Content-Disposition"], 'attachment; filename="gatekeeper-alpha.toml"')
        self.assertEqual(self.client.head(URL).status_code, 200)

    def test_charlie_gets_his_own_tenants_and_nothing_of_alphas(self):
        text = self.download(self.charlie)
        config = self.load(text)
        self.assertEqual((config.gatekeeper_id, config.storage.bucket), ("gk-beta", "beta-reports"))
        self.assertEqual(set(config.vendor_key_ids), {key.kid for key in trusted_public_keys(self.tenant_b)})
        for marker in ["alpha", "Alpha", "gk-alpha", *[k.public_key for k in trusted_public_keys(self.tenant_a)]]:
            self.assertNotIn(marker, text)

    def test_it_returns_403_for_staff(self):
        self.login(self.bob)
        r = self.client.get(URL)
        self.assertEqual(r.status_code, 403)
        self.assertNotIn(b"vendor_keys", r.content)

    def test_it_returns_404_for_vendor_support(self):
        self.login(self.victor)
        self.assertEqual(self.client.get(URL).status_code, 404)

    def test_it_requires_login(self):
        self.assertRedirects(self.client.get(URL), f"/accounts/login/?next={URL}")

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(URL).status_code, 405)
        self.assertEqual(self.client.put(URL).status_code, 405)

    def test_the_settings_page_links_to_it(self):
        self.login(self.alice)
        self.assertContains(self.client.get("/settings/"), f'href="{URL}" download')
