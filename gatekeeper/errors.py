"""The gatekeeper's exception tree. Each refusal carries its HTTP status, a stable
reason code (machine-readable, recorded in the audit log) and a message that is
safe to show to the caller: never a secret, never a stack trace."""


class GatekeeperError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(GatekeeperError):
    status = 400
    code = "bad_request"


class Unauthorized(GatekeeperError):
    """The vendor's signature is missing, wrong, expired or revoked."""
    status = 401
    code = "invalid_grant"


class Forbidden(GatekeeperError):
    """The grant is genuine but the customer's policy refuses the request."""
    status = 403
    code = "forbidden"


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


class StorageUnavailable(GatekeeperError):
    status = 502
    code = "storage_error"


class ConfigError(Exception):
    """A configuration key is missing or wrong. The message names the key."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"config key {key!r}: {problem}")
        self.key = key
