"""The customer's identity provider at the gatekeeper: a key the vendor cannot forge.

With [identity] set, a request whose grant carries one of `identity.ops` must also
carry `X-Identity-Token`: an OpenID Connect ID token that the customer's IdP gave
the person in the browser (the portal's pages fetch it straight from the IdP; the
portal never sees it). One verify path, the time the caller's: the algorithm the
IdP's key names (RS256, ES256 or EdDSA; never `none` or HMAC), the signature
against the IdP's JWKS, exact `iss`, `aud` naming the customer's client (and `azp`
that client, when present or `aud` names several), `exp`, `iat`, `nbf` and
`auth_time` (at most `max_age` ago), with `leeway`, and `email_verified` true when
the claim is `email`; then the token's `claim` must equal the grant's `identity`
(who the vendor says the person is).

The JWKS is cached, fetched again on an unknown `kid` at most every REFRESH_EVERY
seconds, and trusted for MAX_KEYS_AGE after its last good fetch; when it cannot be
had, nothing verifies (503 identity_unavailable): fail closed.

Why not PyJWT's PyJWKClient (PyJWT 2.15, already the grants' verifier): it bounds
refetches on an unknown `kid` only after a successful fetch, so while the IdP is down
every request past the cache's lifespan waits on a new fetch (up to its timeout);
here a fetch is tried at most every REFRESH_EVERY, success or not, and requests in
between are answered at once. It reads time.monotonic() itself, where this module
takes the caller's time (the tests drive expiry and outages with it). The keys
themselves are PyJWT's PyJWK; the cache is these rules and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import urllib.request
from dataclasses import dataclass
from typing import Callable

import jwt

from .config import IdentityConfig
from .errors import Forbidden, IdentityUnavailable, Unauthorized
from .grants import Grant
from .paths import is_int, same_text

log = logging.getLogger("gatekeeper.identity")

ALGORITHMS = ("RS256", "ES256", "EdDSA")
MAX_TOKEN_CHARS = 8192
MAX_JWKS_BYTES = 256 * 1024
FETCH_TIMEOUT = 3  # seconds; a JWKS fetch holds up identity requests at most this long
REFRESH_EVERY = 30  # at most one JWKS fetch per this many seconds, whatever kids tokens name
MAX_KEYS_AGE = 3600  # a fetched JWKS is trusted this long; then it must be fetched again
MAX_VERIFIED = 4096  # tokens whose signature is remembered; emptied when full
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "auth_time"]


@dataclass(frozen=True, slots=True)
class Identity:
    sub: str  # the person as the customer's IdP names them, for the audit record
    issuer: str
    claim: str  # the value of `identity.claim`; "" when absent


def fetch_jwks(config: IdentityConfig) -> object:
    """The IdP's JWKS, from jwks_file or jwks_url; OSError or ValueError if not had."""
    if config.jwks_file:
        with open(config.jwks_file, "rb") as fh:
            data = fh.read(MAX_JWKS_BYTES + 1)
    else:
        request = urllib.request.Request(config.jwks_url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # noqa: S310 (_url: http(s))
            data = response.read(MAX_JWKS_BYTES + 1)
    if len(data) > MAX_JWKS_BYTES:
        raise ValueError("the JWKS is too large")
    return json.loads(data)


def usable_keys(jwks: object) -> dict[str, jwt.PyJWK]:
    """kid -> key, for the signing keys of ALGORITHMS; ValueError if there is none."""
    keys = {}
    for jwk in jwks.get("keys") if isinstance(jwks, dict) and isinstance(jwks.get("keys"), list) else []:
        try:
            key = jwt.PyJWK(jwk)
        except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError, ValueError):
            continue
        if key.algorithm_name in ALGORITHMS and isinstance(key.key_id, str) and jwk.get("use", "sig") == "sig":
            keys[key.key_id] = key
    if not keys:
        raise ValueError("the JWKS holds no RS256, ES256 or EdDSA signing key")
    return keys



def _invalid(message: str) -> Unauthorized:
    return Unauthorized(message, code="identity_invalid")


class IdentityVerifier:
    def __init__(self, config: IdentityConfig, fetch: Callable[[IdentityConfig], object] = fetch_jwks):
        self._config = config
        self._fetch = fetch
        self._keys: dict[str, jwt.PyJWK] = {}
        self._verified: dict[bytes, dict] = {}  # sha256(token) -> its signed claims, for this JWKS
        self._fetched = self._tried = -math.inf  # the last good fetch, the last attempt
        self._lock = threading.Lock()
        # PyJWT: the signature and the presence of claims; everything else is ours.
        self._options = {"require": REQUIRED_CLAIMS, **dict.fromkeys(
            ("verify_aud", "verify_iss", "verify_exp", "verify_iat", "verify_nbf"), False)}

    def needed(self, grant: Grant) -> bool:
        return bool(grant.ops & self._config.ops)

    def verify(self, token: str | None, now: float) -> Identity:
        config = self._config
        if not token or not token.strip():
            raise Unauthorized("this gatekeeper needs the person's ID token from the customer's identity "
                               "provider (X-Identity-Token)", code="identity_required")
        token = token.strip()
        if len(token) > MAX_TOKEN_CHARS:
            raise _invalid("the identity token is too long")
        # A page sends one token for its life: its signature is checked once per
        # JWKS (the cache is emptied when the keys are fetched); its times every time.
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        self._keyset(now)  # fails closed once the keys are too old, cached tokens too
        claims = self._verified.get(digest)
        if claims is None:
            claims = self._signed_claims(token, now)
            if len(self._verified) >= MAX_VERIFIED:
                self._verified.clear()
            self._verified[digest] = claims
        exp, iat, auth_time, nbf = claims["exp"], claims["iat"], claims["auth_time"], claims.get("nbf", 0)
        if now > exp + config.leeway:
            raise Unauthorized("the identity token has expired", code="identity_expired")
        if now - auth_time > config.max_age + config.leeway:
            raise Unauthorized("the person signed in at the identity provider too long ago: sign in again",
                               code="identity_expired")
        if max(iat, auth_time, nbf) > now + config.leeway:
            raise _invalid("the identity token is not valid yet")
        value = claims.get(config.claim)
        return Identity(claims["sub"][:256], claims["iss"][:256], value[:256] if isinstance(value, str) else "")

    def _signed_claims(self, token: str, now: float) -> dict:
        """The claims of a token whose signature, issuer, audience and claim types are right."""
        config = self._config
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _invalid("the identity token is not a JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise _invalid("only RS256, ES256 and EdDSA identity tokens are accepted")
        key = self._keyset(now, kid).get(kid) if isinstance(kid, str) else None
        if key is None or key.algorithm_name != alg:
            raise _invalid("the identity token is signed with a key its IdP does not list")
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], options=self._options)
        except jwt.InvalidSignatureError:
            raise _invalid("the identity token's signature does not verify") from None
        except jwt.InvalidTokenError:
            raise _invalid("the identity token is malformed or lacks a claim") from None
        if not same_text(claims["iss"], config.issuer):
            raise _invalid("the identity token is from another issuer")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if not any(same_text(aud, config.audience) for aud in audiences) or (
                (len(audiences) > 1 or "azp" in claims) and not same_text(claims.get("azp"), config.audience)):
            raise _invalid("the identity token is for another client")  # OIDC Core 3.1.3.7: azp if several
        if not all(is_int(claims.get(t, 0)) for t in ("exp", "iat", "auth_time", "nbf")) \
                or not isinstance(claims["sub"], str):
            raise _invalid("the identity token's times or subject are malformed")
        if config.claim == "email" and claims.get("email_verified") is not True:
            raise _invalid("the identity provider has not verified the person's email address")
        return claims

    def check_person(self, identity: Identity, grant: Grant) -> None:
        """The IdP's person is the grant's: a vendor that mints a grant for someone
        else, or for a person the IdP does not know, is refused."""
        fold = str.lower if self._config.claim == "email" else str
        if not identity.claim or not grant.identity or not same_text(fold(identity.claim), fold(grant.identity)):
            raise Forbidden("the identity token names another person than the grant", code="identity_mismatch")

    def _keyset(self, now: float, kid: str | None = None) -> dict[str, jwt.PyJWK]:
        """The IdP's keys, fetched again when older than MAX_KEYS_AGE or lacking `kid`
        (at most every REFRESH_EVERY); IdentityUnavailable when none fresh enough are had."""
        with self._lock:
            wanted = now - self._fetched > MAX_KEYS_AGE or (kid is not None and kid not in self._keys)
            if wanted and now - self._tried >= REFRESH_EVERY:
                self._tried = now
                try:
                    self._keys, self._fetched = usable_keys(self._fetch(self._config)), now
                    self._verified.clear()  # a key rotated out takes its tokens with it
                except (OSError, ValueError) as exc:  # urllib's errors are OSErrors; bad JSON a ValueError
                    log.warning("identity: the IdP's JWKS cannot be had: %s", type(exc).__name__)
            if now - self._fetched > MAX_KEYS_AGE:
                raise IdentityUnavailable("the customer's identity provider keys cannot be had")
            return self._keys
