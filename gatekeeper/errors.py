"""The gatekeeper's vocabulary and exception tree.

The op names and reason codes are listed here once: the gatekeeper, the vendor's
client (gatekeeper_client), the portal's audit filter and the report page's hint
table are all checked against these lists. Each refusal carries its HTTP status,
a stable reason code (machine-readable, recorded in the audit log) and a message
that is safe to show to the caller: never a secret, never a stack trace."""

from __future__ import annotations

# What a grant's scope may name, and what a /v1/sign batch may ask for (less audit).
OPS = ("get", "list", "put", "delete", "audit")
# Grants carrying one of these are good for one request.
SINGLE_USE_OPS = frozenset({"put", "delete"})
# What a scope naming several prefixes may carry (protocol 2): reads only.
MULTI_PREFIX_OPS = frozenset({"get", "list"})
# The `op` of an audit record: an op, or "request" for a refusal that happened
# before any op could be named (bad body, bad grant, refused address).
REQUEST_OP = "request"
AUDIT_OPS = OPS + (REQUEST_OP,)
OUTCOMES = ("allow", "deny")

# Every reason code a gatekeeper answers with, and the HTTP status it comes with.
REASONS: dict[str, int] = {
    # 400: the request is malformed
    **dict.fromkeys(("bad_request", "malformed_json", "empty_batch", "batch_too_large", "bad_op",
                     "unknown_op", "bad_key", "bad_filter", "body_too_large", "bad_client_address",
                     "bad_forwarded_for"), 400),
    # 401: the vendor's signature is missing, wrong, expired or revoked
    **dict.fromkeys(("invalid_grant", "missing_grant", "malformed_grant", "algorithm_refused",
                     "unknown_kid", "bad_signature", "wrong_audience", "wrong_issuer", "too_long_lived",
                     "expired", "not_yet_valid", "revoked"), 401),
    # 401/403: the customer's IdP token (identity.py) missing, bad or expired; or another person's
    **dict.fromkeys(("identity_required", "identity_invalid", "identity_expired"), 401), "identity_mismatch": 403,
    # 403: the grant is genuine but the customer's policy refuses
    **dict.fromkeys(("forbidden", "kill_switch", "address_denied", "country_denied", "op_not_granted",
                     "op_disabled", "out_of_scope", "grant_reused", "origin_not_allowed"), 403),
    # 403: a support grant without the customer's valid approval (approvals.py)
    **dict.fromkeys(("approval_required", "approval_invalid", "approval_expired", "approval_revoked"), 403),
    "not_found": 404, "method_not_allowed": 405, "too_large": 413, "internal": 500,
    "storage_error": 502, "storage_credentials": 502, "audit_unavailable": 503, "misconfigured": 503,
    "identity_unavailable": 503,
}


class GatekeeperError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:  # one of REASONS, with this class's status (a test checks)
            self.code = code


class BadRequest(GatekeeperError):
    status = 400
    code = "bad_request"


class Unauthorized(GatekeeperError):
    """The vendor's signature is missing, wrong, expired or revoked. `claimed` is
    who the refused grant names, for its audit record (grants.Claimed)."""
    status = 401
    code = "invalid_grant"
    claimed: object = None


class Forbidden(GatekeeperError):
    """The grant is genuine but the customer's policy refuses the request. An
    approval refused after its signatures verified is `approval`, for the record."""
    status = 403
    code = "forbidden"
    approval: object = None


class NotFound(GatekeeperError):
    status = 404
    code = "not_found"


class MethodNotAllowed(GatekeeperError):
    status = 405
    code = "method_not_allowed"


class PayloadTooLarge(GatekeeperError):
    status = 413
    code = "too_large"


class AuditUnavailable(GatekeeperError):
    """Fail closed: nothing is signed unless its audit record was written."""
    status = 503
    code = "audit_unavailable"


class IdentityUnavailable(GatekeeperError):
    """Fail closed: the customer's IdP keys (JWKS) cannot be had, so no token verifies."""
    status = 503
    code = "identity_unavailable"


class StorageUnavailable(GatekeeperError):
    status = 502
    code = "storage_error"


class ConfigError(Exception):
    """A configuration key is missing or wrong. The message names the key."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"config key {key!r}: {problem}")
        self.key = key
