"""The passkey JSON endpoints' refusals (their success is Chromium's virtual
authenticator in tests/e2e/test_mfa.py): wrong method, no session or no waiting
challenge, malformed or oversized answers, a credential nobody registered."""

import json

from django.test import Client

from accounts import mfa
from tests.portal.base import BaseTestCase

SIGN_IN_OPTIONS, SIGN_IN = "/accounts/mfa/passkey/options/", "/accounts/mfa/passkey/"
REGISTER_OPTIONS, REGISTER = "/accounts/security/passkeys/options/", "/accounts/security/passkeys/"


class PasskeyEndpointsTestCase(BaseTestCase):
    def post(self, url, body=b"{}", client=None):
        return (client or self.client).post(url, body, content_type="application/json")

    def test_get_is_405_everywhere(self):
        self.client.force_login(self.bob)
        for url in (SIGN_IN_OPTIONS, SIGN_IN, REGISTER_OPTIONS, REGISTER):
            self.assertEqual(self.client.get(url).status_code, 405, url)

    def test_registration_needs_a_session(self):
        for url in (REGISTER_OPTIONS, REGISTER):
            self.assertEqual(self.post(url).status_code, 302, url)

    def test_registration_options_name_the_configured_relying_party(self):
        self.client.force_login(self.bob)
        options = json.loads(self.post(REGISTER_OPTIONS).json()["options"])
        self.assertEqual(options["rp"]["id"], "127.0.0.1")  # settings' DUALKEY_PORTAL_ORIGIN host
        self.assertEqual(options["user"]["name"], "bob")
        self.assertEqual(options["authenticatorSelection"]["residentKey"], "required")

    def test_bad_answers_are_400s_with_reasons(self):
        self.client.force_login(self.bob)
        self.assertIn("no passkey request", self.post(REGISTER, b'{"id": "x"}').json()["error"])
        for body, reason in [(b"not json", "not JSON"), (b"[1]", "malformed"), (b'{"id": 5}', "malformed"),
                             (json.dumps({"id": "x" * 300}).encode(), "malformed"),
                             (b'{"id": "' + b"x" * 20000 + b'"}', "too large")]:
            self.post(REGISTER_OPTIONS)
            r = self.post(REGISTER, body)
            self.assertEqual(r.status_code, 400, body[:20])
            self.assertIn(reason, r.json()["error"])
        self.post(REGISTER_OPTIONS)
        r = self.post(REGISTER, json.dumps({"id": "abc", "rawId": "abc", "type": "public-key",
                                            "response": {"clientDataJSON": "e30", "attestationObject": "oA"}}))
        self.assertEqual(r.status_code, 400)
        self.assertIn("could not be registered", r.json()["error"])
        self.assertFalse(self.bob.authenticators.exists())

    def test_a_challenge_works_once(self):
        session = self.client.session
        mfa._remember_challenge(session, "authenticate:", b"c" * 32)
        self.assertEqual(mfa._take_challenge(session, "authenticate:"), b"c" * 32)
        with self.assertRaises(mfa.MFAError):
            mfa._take_challenge(session, "authenticate:")

    def test_sign_in_with_an_unknown_passkey_is_refused(self):
        self.post(SIGN_IN_OPTIONS)
        r = self.post(SIGN_IN, json.dumps({"id": "nobody", "rawId": "nobody", "type": "public-key", "response": {}}))
        self.assertEqual(r.status_code, 400)
        self.assertIn("not registered here", r.json()["error"])
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_sign_in_options_while_signed_in_are_409(self):
        self.client.force_login(self.bob)
        self.assertEqual(self.post(SIGN_IN_OPTIONS).status_code, 409)
        self.assertEqual(self.post(SIGN_IN).status_code, 409)

    def test_discoverable_sign_in_options_allow_any_passkey_and_need_user_verification(self):
        options = json.loads(self.post(SIGN_IN_OPTIONS, client=Client()).json()["options"])
        self.assertEqual(options.get("allowCredentials", []), [])
        self.assertEqual(options["userVerification"], "required")

    def test_a_malformed_assertion_for_a_real_passkey_is_a_400(self):
        from django.utils import timezone

        from accounts.models import Authenticator

        Authenticator.objects.create(user=self.bob, kind=Authenticator.Kind.PASSKEY, credential_id="bobs",
                                     public_key="AAAA", created_at=timezone.now())
        for response in [{}, {"clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA"}, "x"]:
            self.post(SIGN_IN_OPTIONS)
            r = self.post(SIGN_IN, json.dumps({"id": "bobs", "rawId": "bobs", "type": "public-key",
                                               "response": response}))
            self.assertEqual(r.status_code, 400, response)
        self.assertNotIn("_auth_user_id", self.client.session)
