"""Grant verification in-process, with time injected (no clock patching), and the
test vector published in docs/protocol.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gatekeeper import config as config_module
from gatekeeper.errors import Unauthorized
from gatekeeper.grants import GrantVerifier
from gatekeeper_client.grants import SigningKey, mint_grant, private_key_from_seed

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
SEED = bytes(range(32))
IAT = 1767225600  # 2026-01-01T00:00:00Z
KEY = SigningKey("k1", private_key_from_seed(SEED))


def verifier(**env) -> GrantVerifier:
    base = {
        "GATEKEEPER_GATEKEEPER_ID": "gk-acme", "GATEKEEPER_ISSUER": "https://portal.example",
        "GATEKEEPER_VENDOR_KEYS": f"k1:{KEY.public_b64}", "GATEKEEPER_STORAGE_BUCKET": "acme-reports",
        "GATEKEEPER_STORAGE_REGION": "us-east-1",
    }
    return GrantVerifier(config_module.load(None, env={**base, **env}))


def vector() -> str:
    return mint_grant(KEY, issuer="https://portal.example", audience="gk-acme", subject="user:7",
                      name="Bob Staff", prefix="tickets/42/", ops=["get", "list"], lifetime=120,
                      now=IAT, jti="vector-1")


def test_the_documented_vector_is_what_we_mint_and_verify():
    text = DOCS.read_text()
    documented_key = re.search(r"public key \(base64url\): `([^`]+)`", text).group(1)
    documented_grant = re.search(r"```\n(eyJ[^\n]+)\n```", text).group(1)
    assert documented_key == KEY.public_b64
    assert documented_grant == vector()  # Ed25519 signatures are deterministic
    grant = verifier().verify(documented_grant, now=IAT + 10)
    assert (grant.sub, grant.name, grant.jti, grant.prefix) == ("user:7", "Bob Staff", "vector-1", "tickets/42/")
    assert grant.ops == {"get", "list"} and not grant.single_use


@pytest.mark.parametrize("now,ok", [
    (IAT - 30, True),   # issuer clock slightly ahead: within the leeway
    (IAT - 31, False),  # not yet valid
    (IAT + 120 + 30, True),
    (IAT + 120 + 31, False),  # expired
])
def test_the_leeway_is_applied_at_both_ends(now, ok):
    if ok:
        verifier().verify(vector(), now=now)
    else:
        with pytest.raises(Unauthorized) as caught:
            verifier().verify(vector(), now=now)
        assert caught.value.code in ("not_yet_valid", "expired")


def test_the_maximum_lifetime_is_the_customers():
    with pytest.raises(Unauthorized, match="lifetime"):
        verifier(GATEKEEPER_MAX_GRANT_LIFETIME="60").verify(vector(), now=IAT)


def test_key_rotation_accepts_both_listed_keys():
    new = SigningKey("k2", private_key_from_seed(bytes(range(5, 37))))
    both = verifier(GATEKEEPER_VENDOR_KEYS=f"k1:{KEY.public_b64},k2:{new.public_b64}")
    token = mint_grant(new, issuer="https://portal.example", audience="gk-acme", subject="user:7",
                       prefix="tickets/42/", ops=["get"], now=IAT)
    assert both.verify(token, now=IAT).kid == "k2"
    assert both.verify(vector(), now=IAT).kid == "k1"


@pytest.mark.parametrize("scope", [
    None, {"prefix": "tickets/42", "ops": ["get"]}, {"prefix": "../", "ops": ["get"]},
    {"prefix": "tickets/42/", "ops": []}, {"prefix": "tickets/42/", "ops": ["sudo"]},
    {"prefix": "tickets/42/", "ops": [["get"]]},
])
def test_a_malformed_scope_is_refused(scope):
    import jwt

    claims = {"iss": "https://portal.example", "aud": "gk-acme", "sub": "u", "iat": IAT,
              "exp": IAT + 60, "jti": "j", "scope": scope}
    token = jwt.encode(claims, KEY.private_key, algorithm="EdDSA", headers={"kid": "k1"})
    with pytest.raises(Unauthorized) as caught:
        verifier().verify(token, now=IAT)
    assert caught.value.code == "malformed_grant"


@pytest.mark.parametrize("iss", ["https://portal.exampl", "portal.example", "", ["https://portal.example"]])
def test_the_issuer_must_be_exactly_ours(iss):
    # PyJWT 2.10.0 matched `iss` as a substring (CVE-2024-53861): pinned past it,
    # and this keeps it so.
    import jwt

    claims = {"iss": iss, "aud": "gk-acme", "sub": "u", "iat": IAT, "exp": IAT + 60, "jti": "j",
              "scope": {"prefix": "tickets/42/", "ops": ["get"]}}
    # Signed as a raw JWS: PyJWT's encoder refuses a list issuer; its decoder must too.
    token = jwt.api_jws.encode(json.dumps(claims).encode(), KEY.private_key, algorithm="EdDSA",
                               headers={"kid": "k1"})
    with pytest.raises(Unauthorized) as caught:
        verifier().verify(token, now=IAT)
    assert caught.value.code in ("wrong_issuer", "malformed_grant")


def _signed(claims: dict, kid: str = "k1") -> str:
    import jwt

    base = {"iss": "https://portal.example", "aud": "gk-acme", "sub": "user:7", "iat": IAT,
            "exp": IAT + 60, "jti": "j", "scope": {"prefix": "tickets/42/", "ops": ["get"]}}
    return jwt.encode({**base, **claims}, KEY.private_key, algorithm="EdDSA", headers={"kid": kid})


@pytest.mark.parametrize("now,ok", [(IAT + 10, False), (IAT + 29, False), (IAT + 30, True)])
def test_nbf_is_honoured_with_the_leeway(now, ok):
    token = _signed({"nbf": IAT + 60, "exp": IAT + 120})
    if ok:
        assert verifier().verify(token, now=now).sub == "user:7"
    else:
        with pytest.raises(Unauthorized) as caught:
            verifier().verify(token, now=now)
        assert caught.value.code == "not_yet_valid"


@pytest.mark.parametrize("nbf", ["soon", 1.5, True, None])
def test_a_malformed_nbf_is_refused(nbf):
    with pytest.raises(Unauthorized) as caught:
        verifier().verify(_signed({"nbf": nbf}), now=IAT)
    assert caught.value.code == "malformed_grant"


def test_a_refusal_names_only_what_is_known():
    # Verified signature: who it was, for the audit record.
    with pytest.raises(Unauthorized) as caught:
        verifier(GATEKEEPER_REVOCATION_SUBJECTS="user:7").verify(vector(), now=IAT)
    assert caught.value.code == "revoked"
    assert (caught.value.claimed.kid, caught.value.claimed.sub, caught.value.claimed.jti,
            caught.value.claimed.name) == ("k1", "user:7", "vector-1", "Bob Staff")
    # Unknown kid: the claimed kid, bounded; no claims.
    with pytest.raises(Unauthorized) as caught:
        verifier().verify(_signed({}, kid="x" * 1000), now=IAT)
    assert caught.value.code == "unknown_kid" and caught.value.claimed.kid == "x" * 64
    assert caught.value.claimed.sub == caught.value.claimed.jti == ""
    # Not a JWT at all: nothing.
    with pytest.raises(Unauthorized) as caught:
        verifier().verify("garbage", now=IAT)
    assert caught.value.claimed.kid == ""


# --- protocol 2: a scope with several prefixes ------------------------------------

def _multi(prefixes, ops=("get",)) -> str:
    return _signed({"scope": {"prefixes": prefixes, "ops": list(ops)}})


def test_a_scope_may_name_several_prefixes_for_reads():
    prefixes = [f"tickets/{i}/" for i in range(50)]
    grant = verifier().verify(_multi(prefixes, ("get", "list")), now=IAT)
    assert grant.prefixes == tuple(prefixes)
    assert grant.prefix == ""  # no single prefix: whatever reads `prefix` alone finds none
    assert grant.ops == {"get", "list"}


def test_a_one_prefix_grant_has_it_in_both_forms():
    grant = verifier().verify(vector(), now=IAT)
    assert (grant.prefix, grant.prefixes) == ("tickets/42/", ("tickets/42/",))


@pytest.mark.parametrize("scope", [
    {"prefixes": [], "ops": ["get"]},                                          # none
    {"prefixes": [f"tickets/{i}/" for i in range(51)], "ops": ["get"]},       # over 50
    {"prefixes": ["tickets/1/", "tickets/1/"], "ops": ["get"]},               # repeated
    {"prefixes": ["tickets/1/", "tickets/2"], "ops": ["get"]},                # no trailing '/'
    {"prefixes": ["tickets/1/", "../"], "ops": ["get"]},                      # key rules
    {"prefixes": ["tickets/1/", "tickets/a\u202eb/"], "ops": ["get"]},        # key rules
    {"prefixes": ["tickets/1/", 7], "ops": ["get"]},
    {"prefixes": "tickets/1/", "ops": ["get"]},                               # not a list
    {"prefixes": ["tickets/1/", "tickets/2/"], "ops": ["get", "put"]},        # writes: one prefix only
    {"prefixes": ["tickets/1/"], "ops": ["delete"]},
    {"prefixes": ["tickets/1/"], "ops": ["audit"]},
    {"prefix": "tickets/1/", "prefixes": ["tickets/2/"], "ops": ["get"]},     # both
    {"ops": ["get"]},                                                         # neither
])
def test_a_malformed_multi_prefix_scope_is_refused(scope):
    with pytest.raises(Unauthorized) as caught:
        verifier().verify(_signed({"scope": scope}), now=IAT)
    assert caught.value.code == "malformed_grant"


def test_mint_grant_signs_several_prefixes_and_refuses_what_the_gatekeeper_would():
    token = mint_grant(KEY, issuer="https://portal.example", audience="gk-acme", subject="user:7",
                       prefixes=["tickets/1/", "tickets/2/"], ops=["get"], now=IAT)
    assert verifier().verify(token, now=IAT).prefixes == ("tickets/1/", "tickets/2/")
    for bad in (dict(prefixes=["tickets/1/"], ops=["put"]), dict(prefixes=["a/"] * 2, ops=["get"]),
                dict(prefixes=[f"t/{i}/" for i in range(51)], ops=["get"]),
                dict(prefix="a/", prefixes=["b/"], ops=["get"]), dict(ops=["get"])):
        with pytest.raises(ValueError):
            mint_grant(KEY, issuer="i", audience="a", subject="s", **bad)
