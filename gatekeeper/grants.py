"""Verifying the vendor's signature: one path, EdDSA only.

PyJWT checks the Ed25519 signature, `aud` and `iss`; the time checks are ours so
that `now` can be injected (PyJWT reads the wall clock) and so the maximum
lifetime, the revocation cut-off and the clock leeway are applied in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from .config import Config
from .errors import BadRequest, Unauthorized
from .paths import check_path

ALGORITHM = "EdDSA"
OPS = frozenset({"get", "list", "put", "delete", "audit"})
SINGLE_USE_OPS = frozenset({"put", "delete"})
MAX_GRANT_CHARS = 4096
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti"]


@dataclass(frozen=True, slots=True)
class Grant:
    kid: str
    jti: str
    sub: str
    name: str
    iat: int
    exp: int
    prefix: str
    ops: frozenset[str]

    @property
    def single_use(self) -> bool:
        return bool(self.ops & SINGLE_USE_OPS)


class GrantVerifier:
    def __init__(self, config: Config):
        self._config = config
        self._keys = dict(config.vendor_keys)
        # Decoding options: signature, aud and iss by PyJWT; times by us.
        self._options = {
            "require": REQUIRED_CLAIMS,
            "verify_exp": False,
            "verify_iat": False,
            "verify_nbf": False,
        }

    def verify(self, token: str, now: float) -> Grant:
        if not token or len(token) > MAX_GRANT_CHARS:
            raise Unauthorized("grant missing or too long", code="malformed_grant")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthorized("grant is not a JWT", code="malformed_grant") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthorized("only EdDSA grants are accepted", code="algorithm_refused")
        key = self._keys.get(header.get("kid")) if isinstance(header.get("kid"), str) else None
        if key is None:
            raise Unauthorized("grant signed with an unknown key", code="unknown_kid")
        try:
            claims = jwt.decode(
                token, key, algorithms=[ALGORITHM], audience=self._config.gatekeeper_id,
                issuer=self._config.issuer, options=self._options,
            )
        except jwt.InvalidSignatureError:
            raise Unauthorized("grant signature does not verify", code="bad_signature") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("grant is for another gatekeeper", code="wrong_audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("grant has the wrong issuer", code="wrong_issuer") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("grant is malformed or lacks a claim", code="malformed_grant") from None
        return self._check_claims(header["kid"], claims, now)

    def _check_claims(self, kid: str, claims: dict, now: float) -> Grant:
        config = self._config
        # PyJWT accepts a list `aud` containing ours; a grant names exactly one gatekeeper.
        if claims["aud"] != config.gatekeeper_id:
            raise Unauthorized("grant is for another gatekeeper", code="wrong_audience")
        iat, exp = claims["iat"], claims["exp"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)) or exp <= iat:
            raise Unauthorized("grant times are malformed", code="malformed_grant")
        for name in ("sub", "jti"):
            if not isinstance(claims[name], str) or not claims[name] or len(claims[name]) > 256:
                raise Unauthorized(f"grant claim {name} is malformed", code="malformed_grant")
        if exp - iat > config.max_grant_lifetime:
            raise Unauthorized("grant lifetime exceeds this gatekeeper's maximum", code="too_long_lived")
        if now > exp + config.clock_leeway:
            raise Unauthorized("grant has expired", code="expired")
        if iat > now + config.clock_leeway:
            raise Unauthorized("grant is not valid yet", code="not_yet_valid")
        if iat < config.not_before or claims["sub"] in config.revoked_subjects:
            raise Unauthorized("grant has been revoked", code="revoked")
        prefix, ops = _scope(claims.get("scope"))
        name = claims.get("name")
        return Grant(
            kid=kid, jti=claims["jti"], sub=claims["sub"],
            name=name[:200] if isinstance(name, str) else "",
            iat=iat, exp=exp, prefix=prefix, ops=ops,
        )


def _scope(scope: object) -> tuple[str, frozenset[str]]:
    if not isinstance(scope, dict):
        raise Unauthorized("grant scope is missing", code="malformed_grant")
    prefix, ops = scope.get("prefix"), scope.get("ops")
    if not isinstance(ops, list) or not ops or not all(isinstance(op, str) and op in OPS for op in ops):
        raise Unauthorized("grant scope ops are malformed", code="malformed_grant")
    try:
        check_path(prefix, "grant prefix", trailing_slash=True)
    except BadRequest:
        raise Unauthorized("grant scope prefix is malformed", code="malformed_grant") from None
    return prefix, frozenset(ops)
