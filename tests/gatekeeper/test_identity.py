"""The customer's identity provider at the gatekeeper, over real HTTP: with
[identity] set, a grant carrying get/list/delete/audit needs X-Identity-Token, an
ID token of the customer's IdP naming the grant's person; every refusal audited
with its own reason; the JWKS fetched from the IdP, refreshed on an unknown kid
at a bounded rate, and failing closed when it cannot be had.

The IdP here is a JWKS served on loopback and tokens signed with its keys (the
real OpenID Connect provider drives the browser tests: tests/e2e/test_identity.py).
Rotation and outage run an in-process gatekeeper behind waitress with an injected
clock, so the refresh interval is tested without waiting for it."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
import requests
import waitress
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from gatekeeper import config as config_module
from gatekeeper.app import Gatekeeper
from gatekeeper.http_server import wsgi_app
from gatekeeper.identity import MAX_KEYS_AGE, REFRESH_EVERY
from tests import support

from .conftest import ORIGIN, base_config, toml_dumps
from .test_approvals import approval, approvers_config
from .test_sign import GET_42, assert_refused

IDP = "https://idp.acme.test"
CLIENT = "dualkey-pages"
BOB = "bob@acme.test"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
ROTATED = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key, kid: str) -> dict:
    algorithm = {rsa.RSAPrivateKey: jwt.algorithms.RSAAlgorithm, ec.EllipticCurvePrivateKey: jwt.algorithms.ECAlgorithm,
                 ed25519.Ed25519PrivateKey: jwt.algorithms.OKPAlgorithm}
    cls = next(a for base, a in algorithm.items() if isinstance(key, base))
    return {**json.loads(cls.to_jwk(key.public_key())), "kid": kid, "use": "sig"}


class JwksServer:
    """The IdP's jwks_uri on loopback: `keys` is what it serves, `down` makes it 503."""

    def __init__(self, keys: list[dict]):
        self.keys, self.down, self.fetches = keys, False, 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.fetches += 1
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(503 if server.down else 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"" if server.down else body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/jwks"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def idp():
    server = JwksServer([public_jwk(RSA_KEY, "rsa-1"), public_jwk(EC_KEY, "ec-1"), public_jwk(ED_KEY, "ed-1")])
    yield server
    server.httpd.shutdown()


def identity_section(jwks_url: str, **extra) -> dict:
    return {"identity": {"issuer": IDP, "audience": CLIENT, "jwks_url": jwks_url, "leeway": 5, "max_age": 3600,
                         **extra}}


@pytest.fixture(scope="module")
def gk(start_gatekeeper, idp):
    return start_gatekeeper({**identity_section(idp.url), **approvers_config()})


def id_token(key=RSA_KEY, kid="rsa-1", alg="RS256", now=None, **claims) -> str:
    now = int(time.time() if now is None else now)
    body = {"iss": IDP, "aud": CLIENT, "sub": "idp-bob-1", "email": BOB, "email_verified": True,
            "iat": now, "exp": now + 300, "auth_time": now - 60, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg, headers={"kid": kid})


def post(gk, grant, token=None, ops=GET_42, path="/v1/sign", body=None, **headers):
    headers = {"Authorization": f"Bearer {grant}", **headers}
    if token is not None:
        headers["X-Identity-Token"] = token
    return requests.post(gk.url + path, json={"ops": ops} if body is None else body, headers=headers, timeout=10)


def bobs_grant(gk, **claims):
    return gk.grant(identity=BOB, **claims)


# --- allowed --------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "kid", "alg"), [(RSA_KEY, "rsa-1", "RS256"), (EC_KEY, "ec-1", "ES256"),
                                                 (ED_KEY, "ed-1", "EdDSA")])
def test_a_token_of_the_grants_person_is_signed_and_its_records_name_the_idp_subject(gk, key, kid, alg):
    response = post(gk, bobs_grant(gk), id_token(key, kid, alg))
    assert response.status_code == 200, response.text
    [row] = gk.audit_rows(response.headers["X-Request-Id"])
    assert (row["outcome"], row["sub"], row["idp_sub"], row["idp_iss"]) == ("allow", "user:7", "idp-bob-1", IDP)


def test_emails_compare_without_case_and_an_audit_search_shows_the_idp_subject(gk):
    # A get of its own to find: under xdist the other tests' gets may run in another worker.
    assert post(gk, bobs_grant(gk), id_token()).status_code == 200
    response = post(gk, gk.grant(identity="Bob@ACME.test", ops=["audit"]), id_token(email="bob@acme.TEST"),
                    path="/v1/audit/search", body={"limit": 5, "op": "get"})
    assert response.status_code == 200, response.text
    assert response.json()["entries"][0]["idp_sub"] == "idp-bob-1"
    assert response.json()["entries"][0]["idp_iss"] == IDP


def test_an_upload_grant_needs_no_person(gk):
    grant = gk.grant(ops=["put"])
    response = post(gk, grant, ops=[{"op": "put", "key": "tickets/42/a.txt", "size": 3, "content_type": "text/plain"}])
    assert response.status_code == 200, response.text
    assert gk.audit_rows(response.headers["X-Request-Id"])[0]["idp_sub"] == ""


def test_health_lists_identity_and_the_preflight_allows_its_header(gk):
    health = requests.get(gk.url + "/v1/health", timeout=5).json()
    assert "identity" in health["features"] and health["protocol"] == 3
    assert health["identity"] == {"issuer": IDP, "audience": CLIENT, "ops": ["audit", "delete", "get", "list"]}
    preflight = requests.options(gk.url + "/v1/sign", headers={"Origin": ORIGIN}, timeout=5)
    assert "X-Identity-Token" in preflight.headers["Access-Control-Allow-Headers"]


def test_a_support_grant_needs_the_approval_and_the_persons_identity(gk):
    grant = gk.grant(subject="support:9", identity="sam@vendor.test")
    headers = {"X-Approval": approval()}
    assert_refused(gk, post(gk, grant, **headers), 401, "identity_required")
    assert_refused(gk, post(gk, grant, id_token(), **headers), 403, "identity_mismatch", op="request")
    response = post(gk, grant, id_token(email="sam@vendor.test", sub="idp-sam"), **headers)
    assert response.status_code == 200, response.text
    [row] = gk.audit_rows(response.headers["X-Request-Id"])
    assert (row["approval"], row["idp_sub"]) == ("apr-1", "idp-sam")


# --- refused, each audited -------------------------------------------------------------

def test_no_token_is_identity_required(gk):
    assert_refused(gk, post(gk, bobs_grant(gk)), 401, "identity_required")
    assert_refused(gk, post(gk, bobs_grant(gk), ""), 401, "identity_required")


@pytest.mark.parametrize("token", [
    "not-a-jwt",
    "x" * 9000,
    jwt.encode({"iss": IDP, "aud": CLIENT, "sub": "s", "email": BOB}, "secret" * 6, algorithm="HS256",
               headers={"kid": "rsa-1"}),
    jwt.encode({"iss": IDP, "aud": CLIENT, "sub": "s", "email": BOB}, None, algorithm="none", headers={"kid": "rsa-1"}),
    pytest.param("forged", id="forged"),
    pytest.param("alg-swap", id="alg-swap"),
    pytest.param("unknown-kid", id="unknown-kid"),
    pytest.param("other-issuer", id="other-issuer"),
    pytest.param("other-client", id="other-client"),
    pytest.param("no-auth-time", id="no-auth-time"),
    pytest.param("future", id="future"),
])
def test_a_bad_token_is_identity_invalid(gk, token):
    token = {
        "forged": lambda: id_token(ROTATED),  # rsa-1's kid, another key
        "alg-swap": lambda: id_token(EC_KEY, "rsa-1", "ES256"),  # the key's algorithm is RS256
        "unknown-kid": lambda: id_token(kid="nobody"),
        "other-issuer": lambda: id_token(iss="https://evil.test"),
        "other-client": lambda: id_token(aud="another-client"),
        "no-auth-time": lambda: id_token(auth_time=None),
        "future": lambda: id_token(now=time.time() + 600),
    }.get(token, lambda: token)()
    assert_refused(gk, post(gk, bobs_grant(gk), token), 401, "identity_invalid")


@pytest.mark.parametrize(("claims", "reason"), [
    ({"email_verified": None}, "not verified the person's email"),  # absent: not verified
    ({"email_verified": False}, "not verified the person's email"),
    ({"email_verified": "true"}, "not verified the person's email"),
    ({"nbf": "soon"}, "times or subject are malformed"),
    ({"aud": [CLIENT, "another-client"]}, "for another client"),  # several audiences, no azp
    ({"aud": [CLIENT, "another-client"], "azp": "another-client"}, "for another client"),
    ({"azp": "another-client"}, "for another client"),
])
def test_an_unverified_email_a_bad_nbf_or_another_azp_is_identity_invalid(gk, claims, reason):
    response = post(gk, bobs_grant(gk), id_token(**claims))
    assert_refused(gk, response, 401, "identity_invalid")
    assert reason in response.json()["message"]


def test_nbf_is_honoured_with_the_leeway(gk):
    now = int(time.time())
    response = post(gk, bobs_grant(gk), id_token(nbf=now + 60))
    assert_refused(gk, response, 401, "identity_invalid")
    assert "not valid yet" in response.json()["message"]
    assert post(gk, bobs_grant(gk), id_token(nbf=now + 2)).status_code == 200  # within the leeway (5 s)


def test_several_audiences_with_azp_naming_the_client_or_a_matching_azp_are_allowed(gk):
    for claims in ({"aud": ["another-client", CLIENT], "azp": CLIENT}, {"azp": CLIENT}):
        response = post(gk, bobs_grant(gk), id_token(**claims))
        assert response.status_code == 200, (claims, response.text)


def test_an_expired_token_or_an_old_sign_in_is_identity_expired(gk):
    assert_refused(gk, post(gk, bobs_grant(gk), id_token(now=time.time() - 400)), 401, "identity_expired")
    assert_refused(gk, post(gk, bobs_grant(gk), id_token(auth_time=int(time.time()) - 3700)), 401,
                   "identity_expired")


def test_another_persons_token_or_a_grant_naming_nobody_is_identity_mismatch(gk):
    rows = assert_refused(gk, post(gk, bobs_grant(gk), id_token(email="alice@acme.test", sub="idp-alice")), 403,
                          "identity_mismatch")
    assert rows[0]["idp_sub"] == "idp-alice"  # the token verified: its person is named
    assert_refused(gk, post(gk, gk.grant(), id_token()), 403, "identity_mismatch")  # a grant of an older portal


def test_a_jwks_that_cannot_be_had_is_identity_unavailable(start_gatekeeper):
    gk = start_gatekeeper(identity_section(f"http://127.0.0.1:{support.free_port()}/jwks"))
    assert_refused(gk, post(gk, bobs_grant(gk), id_token()), 503, "identity_unavailable")


def test_a_bad_identity_config_refuses_to_start_naming_the_key():
    base = {"GATEKEEPER_GATEKEEPER_ID": "gk", "GATEKEEPER_ISSUER": "https://portal.test",
            "GATEKEEPER_VENDOR_KEYS": "k1:" + "A" * 43, "GATEKEEPER_STORAGE_BUCKET": "reports",
            "GATEKEEPER_STORAGE_REGION": "us-east-1"}
    for extra, key in [({"GATEKEEPER_IDENTITY_ISSUER": IDP}, "identity.audience"),
                       ({"GATEKEEPER_IDENTITY_AUDIENCE": CLIENT}, "identity.issuer"),
                       ({"GATEKEEPER_IDENTITY_ISSUER": IDP, "GATEKEEPER_IDENTITY_AUDIENCE": CLIENT}, "identity.jwks_url"),
                       ({"GATEKEEPER_IDENTITY_ISSUER": "http://idp.example"}, "identity.issuer"),
                       ({"GATEKEEPER_IDENTITY_OPS": "get,sing"}, "identity.ops"),
                       ({"GATEKEEPER_IDENTITY_MAX_AGE": "5"}, "identity.max_age"),
                       ({"GATEKEEPER_IDENTITY_JWKS_FILE": "/nonexistent.json"}, "identity.jwks_file")]:
        with pytest.raises(config_module.ConfigError) as refused:
            config_module.load(None, env={**base, **extra})
        assert refused.value.key == key, extra


# --- rotation and outage: in process, behind waitress, with an injected clock -----------

class Clock:
    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


@pytest.fixture
def served(tmp_path, moto_url, s3):
    """(url, clock, jwks server, audit rows) of an in-process gatekeeper over HTTP."""
    idp = JwksServer([public_jwk(RSA_KEY, "rsa-1")])
    bucket = f"identity-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    s3.create_bucket(Bucket=bucket)
    config = {**base_config(moto_url, bucket, f"sqlite:///{tmp_path}/audit.db"), **identity_section(idp.url)}
    (tmp_path / "gk.toml").write_text(toml_dumps(config))
    clock = Clock()
    gatekeeper = Gatekeeper(config_module.load(str(tmp_path / "gk.toml"), env={}), clock=clock)
    server = waitress.create_server(wsgi_app(gatekeeper), host="127.0.0.1", port=0)
    threading.Thread(target=server.run, daemon=True).start()
    yield f"http://127.0.0.1:{server.effective_port}", clock, idp, gatekeeper
    server.close()
    idp.httpd.shutdown()


class Served:
    def __init__(self, url, gatekeeper):
        self.url, self.gatekeeper = url, gatekeeper

    def status(self, token, now) -> tuple[int, str]:
        from .conftest import ISSUER, VENDOR_KEY
        from gatekeeper_client.grants import mint_grant
        grant = mint_grant(VENDOR_KEY, issuer=ISSUER, audience="gk-test", subject="user:7", prefix="tickets/42/",
                           ops=["get"], identity=BOB, now=now)
        response = post(self, grant, token)
        return response.status_code, response.json().get("error", "")


def test_a_rotated_key_is_fetched_on_its_unknown_kid_at_a_bounded_rate(served):
    url, clock, idp, gatekeeper = served
    gk = Served(url, gatekeeper)
    first = id_token(now=clock.now)
    assert gk.status(first, clock.now) == (200, "")
    assert idp.fetches == 1
    idp.keys = [public_jwk(ROTATED, "rsa-2")]  # the IdP rotates
    clock.now += 1
    for _ in range(3):  # within REFRESH_EVERY: no fetch, whatever kids tokens name
        assert gk.status(id_token(ROTATED, "rsa-2", now=clock.now), clock.now) == (401, "identity_invalid")
    assert idp.fetches == 1
    assert gk.status(id_token(now=clock.now), clock.now) == (200, "")  # the cached key still works
    clock.now += REFRESH_EVERY
    assert gk.status(id_token(ROTATED, "rsa-2", now=clock.now), clock.now) == (200, "")
    assert idp.fetches == 2
    assert gk.status(id_token(now=clock.now), clock.now) == (401, "identity_invalid")  # rotated out
    assert gk.status(first, clock.now) == (401, "identity_invalid")  # and a token it signed, seen before


def test_an_outage_keeps_the_fetched_keys_for_an_hour_then_fails_closed_then_recovers(served):
    url, clock, idp, gatekeeper = served
    gk = Served(url, gatekeeper)
    assert gk.status(id_token(now=clock.now), clock.now) == (200, "")
    idp.down = True
    clock.now += MAX_KEYS_AGE  # still within the hour: the cached keys
    assert gk.status(id_token(now=clock.now), clock.now) == (200, "")
    clock.now += 1  # past it: fetched again, refused, and nothing verifies
    assert gk.status(id_token(now=clock.now), clock.now) == (503, "identity_unavailable")
    fetches = idp.fetches
    assert gk.status(id_token(now=clock.now), clock.now) == (503, "identity_unavailable")
    assert idp.fetches == fetches  # a dead IdP is asked at most every REFRESH_EVERY
    idp.down = False
    clock.now += REFRESH_EVERY
    assert gk.status(id_token(now=clock.now), clock.now) == (200, "")
