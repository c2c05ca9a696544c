import tomllib

from gatekeeper import config as gatekeeper_config
from tenants.signing import rotate_signing_key
from tests.portal.base import BaseTestCase

URL = "/settings/"


class SettingsPageTestCase(BaseTestCase):
    def test_it_shows_the_tenants_settings_to_its_admin(self):
        self.login(self.alice)
        r = self.client.get(URL)
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, "https://gk.alpha.example/dualkey")
        self.assertContains(r, "alpha-reports")
        self.assertContains(r, "Alpha help button")
        self.assertContains(r, self.agent_a.prefix)
        self.assertNotContains(r, self.agent_a_token)  # shown once, at creation only
        self.assertNotContains(r, "Beta")

    def test_it_shows_the_vendor_key_in_the_gatekeepers_toml_form(self):
        key = self.tenant_a.signing_keys.get()
        self.login(self.alice)
        r = self.client.get(URL)
        toml = r.context["vendor_keys_toml"]
        self.assertEqual(toml, f'[vendor_keys]\n{key.kid} = "{key.public_key}"\n')
        self.assertContains(r, f"{key.kid} = &quot;{key.public_key}&quot;")

    def test_the_toml_is_accepted_by_the_gatekeepers_config_loader(self):
        rotate_signing_key(self.tenant_a)
        self.login(self.alice)
        toml = self.client.get(URL).context["vendor_keys_toml"]
        keys = tomllib.loads(toml)["vendor_keys"]
        self.assertEqual(len(keys), 2)  # the active key and the one it replaced
        flat = {f"vendor_keys.{kid}": value for kid, value in keys.items()}
        self.assertEqual(set(gatekeeper_config._vendor_keys(flat)), set(keys))

    def test_it_returns_403_for_staff(self):
        self.login(self.bob)
        self.assertEqual(self.client.get(URL).status_code, 403)

    def test_it_shows_charlie_his_own_tenant(self):
        self.login(self.charlie)
        r = self.client.get(URL)
        self.assertContains(r, "https://gk.beta.example")
        self.assertNotContains(r, "alpha")

    def test_it_returns_404_for_vendor_support(self):
        self.login(self.victor)
        self.assertEqual(self.client.get(URL).status_code, 404)

    def test_it_requires_login(self):
        self.assertRedirects(self.client.get(URL), f"/accounts/login/?next={URL}")

    def test_it_rejects_a_wrong_method(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(URL).status_code, 405)
