"""The customer's approval of vendor support access: a key the vendor cannot forge.

A grant whose `sub` is a support subject (`support:…`) names someone the vendor
alone chose. It is honoured only with `X-Approval`: one compact JWS (ES256) per
approver, comma-separated, each signed by a key in the customer's
[approvers.keys], all naming one approval id (`jti`), and each covering the
grant: this gatekeeper (`aud`), the grant's subject (`sub`), a prefix the
grant's lies within and every op the grant carries (`scope`), and a window
(`nbf`..`exp`) holding the request's time and the grant's lifetime.
`approvers.required` distinct approvers must sign. One verify path; the time is
the caller's. The approver's side (the claims it signs, and the signature) is
the CLI's: `python -m gatekeeper approvers` (cli.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from .config import Config
from .errors import Forbidden
from .grants import Grant
from .paths import is_int, same_text

SUPPORT_PREFIX = "support:"
ALGORITHM = "ES256"
APPROVABLE_OPS = ("get", "list")  # support reads; it never writes, deletes or searches the log
MAX_APPROVAL_LIFETIME = 7 * 86400
MAX_APPROVALS = 4  # JWS in one header: more than two approvers sign nothing more
MAX_APPROVAL_CHARS = 2048  # each
REQUIRED_CLAIMS = ["aud", "sub", "jti", "nbf", "exp", "scope"]


@dataclass(frozen=True, slots=True)
class Approval:
    id: str  # the approval id (`jti`), shared by every approver's JWS
    approvers: tuple[str, ...]  # the approver ids whose signatures verified, sorted


def is_support(sub: str) -> bool:
    return sub.startswith(SUPPORT_PREFIX)



def _invalid(message: str) -> Forbidden:
    return Forbidden(message, code="approval_invalid")


class ApprovalVerifier:
    def __init__(self, config: Config):
        self._config = config
        self._keys = dict(config.approver_keys)
        # PyJWT: the signature and the presence of claims; everything else is ours.
        self._options = {"require": REQUIRED_CLAIMS, **dict.fromkeys(
            ("verify_aud", "verify_iss", "verify_exp", "verify_iat", "verify_nbf", "verify_sub",
             "verify_jti"), False)}

    def verify(self, header: str | None, grant: Grant, now: float) -> Approval:
        """The approval covering `grant` at `now`, or Forbidden; a refusal after the
        signatures verified carries the approval (`refusal.approval`) for its record."""
        if not header or not header.strip():
            raise Forbidden("a support grant needs the customer's approval (X-Approval)", code="approval_required")
        tokens = [token.strip() for token in header.split(",")]
        if len(tokens) > MAX_APPROVALS:
            raise _invalid(f"at most {MAX_APPROVALS} approvals per request")
        signed = [self._signed(token) for token in tokens]
        ids = {claims["jti"] for _, claims in signed}
        if len(ids) != 1:
            raise _invalid("the approvals name different approval ids")
        approval = Approval(ids.pop(), tuple(sorted({approver for approver, _ in signed})))
        try:
            if any(same_text(approval.id, revoked) for revoked in self._config.revoked_approvals):
                raise Forbidden("this approval has been revoked by the customer", code="approval_revoked")
            for _, claims in signed:
                self._check_covers(claims, grant, now)
            required = self._config.approvers_required
            if len(approval.approvers) < required:
                raise Forbidden(f"this gatekeeper needs {required} distinct approvers, "
                                f"{len(approval.approvers)} signed", code="approval_required")
        except Forbidden as refusal:
            refusal.approval = approval
            raise
        return approval

    def _signed(self, token: str) -> tuple[str, dict]:
        """(approver id, claims) of one JWS whose ES256 signature verifies."""
        if not token or len(token) > MAX_APPROVAL_CHARS:
            raise _invalid("an approval is missing or too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _invalid("an approval is not a compact JWS") from None
        if header.get("alg") != ALGORITHM:
            raise _invalid("only ES256 approvals are accepted")
        approver = header.get("kid")
        key = self._keys.get(approver) if isinstance(approver, str) else None
        if key is None:
            raise _invalid("an approval is signed by a key this gatekeeper does not list")
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], options=self._options)
        except jwt.InvalidSignatureError:
            raise _invalid("an approval's signature does not verify") from None
        except jwt.InvalidTokenError:
            raise _invalid("an approval is malformed or lacks a claim") from None
        if not isinstance(claims["jti"], str) or not 0 < len(claims["jti"]) <= 128:
            raise _invalid("an approval's id is malformed")
        return approver, claims

    def _check_covers(self, claims: dict, grant: Grant, now: float) -> None:
        leeway = self._config.clock_leeway
        if not same_text(claims["aud"], self._config.gatekeeper_id):
            raise _invalid("the approval is for another gatekeeper")
        if not same_text(claims["sub"], grant.sub):
            raise _invalid("the approval is for another person")
        scope = claims["scope"]
        prefix, ops = (scope.get("prefix"), scope.get("ops")) if isinstance(scope, dict) else (None, None)
        # Every prefix the grant names (one, or a scope's `prefixes`) must lie under the
        # approval's: a multi-prefix grant gets no wider reach through an approval.
        granted = grant.prefixes or (grant.prefix,)
        if not isinstance(prefix, str) or not prefix.endswith("/") \
                or not all(p and p.startswith(prefix) for p in granted):
            raise _invalid("the approval does not cover the grant's prefix")
        if not isinstance(ops, list) or not all(op in APPROVABLE_OPS for op in ops) or not grant.ops <= set(ops):
            raise _invalid("the approval does not cover the grant's ops")
        nbf, exp = claims["nbf"], claims["exp"]
        if not all(is_int(t) for t in (nbf, exp)) \
                or not 0 < exp - nbf <= MAX_APPROVAL_LIFETIME:
            raise _invalid(f"the approval's window is malformed or over {MAX_APPROVAL_LIFETIME} s")
        if now > exp + leeway or grant.exp > exp + leeway:
            raise Forbidden("the approval has ended (or ends before the grant)", code="approval_expired")
        if nbf > now + leeway or grant.iat < nbf - leeway:
            raise _invalid("the approval is not valid yet (or the grant predates it)")
