"""Verifying the vendor's signature: one path, EdDSA only.

PyJWT checks the Ed25519 signature and that the required claims are present; the
claims are checked here: exact `aud` and `iss`, and the times with an injected
`now` (PyJWT reads the wall clock), so that the maximum lifetime, the revocation
cut-off and the clock leeway are applied in one place. A refusal says what its
audit record may name (`Claimed`): never a claim whose signature did not verify.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from .config import Config
from .errors import MULTI_PREFIX_OPS, OPS, SINGLE_USE_OPS, BadRequest, Unauthorized
from .paths import check_path, is_int, same_text

ALGORITHM = "EdDSA"
MAX_GRANT_CHARS = 4096
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti"]
# A scope may name several prefixes (a list page reading many tickets' summaries
# in one request), for reads only: a write or an audit grant names one prefix.
MAX_SCOPE_PREFIXES = 50
MAX_KID_CHARS = 64  # as config.KID_RE: a longer one names no key of ours


@dataclass(frozen=True, slots=True)
class Grant:
    kid: str
    jti: str
    sub: str
    name: str
    iat: int
    exp: int
    prefix: str  # the scope's one prefix; "" when it names several (`prefixes` holds them all)
    ops: frozenset[str]
    prefixes: tuple[str, ...] = ()
    identity: str = ""  # the person as the customer's IdP names them (the `identity` claim, protocol 3)

    @property
    def single_use(self) -> bool:
        return bool(self.ops & SINGLE_USE_OPS)


@dataclass(frozen=True, slots=True)
class Claimed:
    """Who a refused grant names, for its audit record: the header's `kid` (the
    client's claim, recorded as such), and `sub`, `jti`, `name` only once the
    signature verified: an unverified token's claims are anyone's words."""
    kid: str = ""
    sub: str = ""
    jti: str = ""
    name: str = ""


class GrantVerifier:
    def __init__(self, config: Config):
        self._config = config
        self._keys = dict(config.vendor_keys)
        # PyJWT: the signature and the presence of claims; everything else is ours.
        self._options = {"require": REQUIRED_CLAIMS, **dict.fromkeys(
            ("verify_aud", "verify_iss", "verify_exp", "verify_iat", "verify_nbf"), False)}

    def verify(self, token: str, now: float) -> Grant:
        """The grant, or Unauthorized whose `claimed` is what its record may name."""
        claimed = Claimed()
        try:
            header = _header(token)
            kid = header.get("kid", "")  # PyJWT refuses a kid that is not a string
            claimed = Claimed(kid[:MAX_KID_CHARS])
            claims = self._signed_claims(token, header.get("alg"), kid)
            claimed = Claimed(claimed.kid, _text(claims.get("sub")), _text(claims.get("jti")),
                              _text(claims.get("name"), 200))
            return self._check_claims(kid, claims, now)
        except Unauthorized as refusal:
            refusal.claimed = claimed
            raise

    def _signed_claims(self, token: str, alg: object, kid: str) -> dict:
        if alg != ALGORITHM:
            raise Unauthorized("only EdDSA grants are accepted", code="algorithm_refused")
        key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("grant signed with an unknown key", code="unknown_kid")
        try:
            return jwt.decode(token, key, algorithms=[ALGORITHM], options=self._options)
        except jwt.InvalidSignatureError:
            raise Unauthorized("grant signature does not verify", code="bad_signature") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("grant is malformed or lacks a claim", code="malformed_grant") from None

    def _check_claims(self, kid: str, claims: dict, now: float) -> Grant:
        config = self._config
        # Exact strings: a list `aud` naming ours too is refused; a grant names one gatekeeper.
        if not same_text(claims["aud"], config.gatekeeper_id):
            raise Unauthorized("grant is for another gatekeeper", code="wrong_audience")
        if not same_text(claims["iss"], config.issuer):
            raise Unauthorized("grant has the wrong issuer", code="wrong_issuer")
        iat, exp, nbf = claims["iat"], claims["exp"], claims.get("nbf", claims["iat"])
        if not all(is_int(v) for v in (iat, exp, nbf)) or exp <= iat:
            raise Unauthorized("grant times are malformed", code="malformed_grant")
        for name in ("sub", "jti"):
            if not isinstance(claims[name], str) or not claims[name] or len(claims[name]) > 256:
                raise Unauthorized(f"grant claim {name} is malformed", code="malformed_grant")
        if exp - iat > config.max_grant_lifetime:
            raise Unauthorized("grant lifetime exceeds this gatekeeper's maximum", code="too_long_lived")
        if now > exp + config.clock_leeway:
            raise Unauthorized("grant has expired", code="expired")
        if max(iat, nbf) > now + config.clock_leeway:  # `nbf` is optional (RFC 7519)
            raise Unauthorized("grant is not valid yet", code="not_yet_valid")
        if iat < config.not_before or claims["sub"] in config.revoked_subjects:
            raise Unauthorized("grant has been revoked", code="revoked")
        prefixes, ops = _scope(claims.get("scope"))
        return Grant(
            kid=kid, jti=claims["jti"], sub=claims["sub"], name=_text(claims.get("name"), 200),
            iat=iat, exp=exp, prefix=prefixes[0] if len(prefixes) == 1 else "", ops=ops, prefixes=prefixes,
            identity=_text(claims.get("identity")),
        )


def _header(token: str) -> dict:
    if not token or len(token) > MAX_GRANT_CHARS:
        raise Unauthorized("grant missing or too long", code="malformed_grant")
    try:
        return jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise Unauthorized("grant is not a JWT", code="malformed_grant") from None


def _text(value: object, limit: int = 256) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _scope(scope: object) -> tuple[tuple[str, ...], frozenset[str]]:
    """`{"prefix": P, "ops": [...]}`, or `{"prefixes": [P, ...], "ops": [...]}` (protocol
    1.1: at most MAX_SCOPE_PREFIXES distinct prefixes, get and list only). Each prefix
    is a valid key prefix ending with '/'."""
    if not isinstance(scope, dict):
        raise Unauthorized("grant scope is missing", code="malformed_grant")
    ops = scope.get("ops")
    if not isinstance(ops, list) or not ops or not all(isinstance(op, str) and op in OPS for op in ops):
        raise Unauthorized("grant scope ops are malformed", code="malformed_grant")
    if ("prefix" in scope) == ("prefixes" in scope):
        raise Unauthorized("grant scope names either prefix or prefixes", code="malformed_grant")
    if "prefix" in scope:
        prefixes = [scope["prefix"]]
    else:
        prefixes = scope["prefixes"]
        if (not isinstance(prefixes, list) or not 1 <= len(prefixes) <= MAX_SCOPE_PREFIXES
                or not set(ops) <= MULTI_PREFIX_OPS):
            raise Unauthorized(f"grant scope prefixes: 1 to {MAX_SCOPE_PREFIXES}, for get and list only",
                               code="malformed_grant")
        if len(set(map(str, prefixes))) != len(prefixes):
            raise Unauthorized("grant scope prefixes repeat", code="malformed_grant")
    for prefix in prefixes:
        if not isinstance(prefix, str) or not prefix.endswith("/"):
            raise Unauthorized("grant scope prefix must end with '/'", code="malformed_grant")
        try:
            check_path(prefix, "grant prefix", prefix=True)
        except BadRequest:
            raise Unauthorized("grant scope prefix is malformed", code="malformed_grant") from None
    return tuple(prefixes), frozenset(ops)
