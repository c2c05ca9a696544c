"""The AWS deployment: API Gateway HTTP API (payload 2.0) and Lambda function URL
events, both the same shape. Configuration comes from GATEKEEPER_* environment
variables; the Gatekeeper (and its connection to DynamoDB) is built once per
container, and while its configuration or audit store is refused every request is
answered 503."""

from __future__ import annotations

import base64
import binascii
import logging
import os

from . import config as config_module
from .app import READ_LIMIT, Gatekeeper, Request, Response, plain_error
from .errors import ConfigError

log = logging.getLogger("gatekeeper")
_gatekeeper: Gatekeeper | None = None
# Base64 characters that decode to one byte over the body limit, in whole
# 4-character groups: a cut mid-group would make a big body look malformed.
BASE64_CHARS_OVER_LIMIT = (READ_LIMIT + 2) // 3 * 4


def _instance() -> Gatekeeper:
    global _gatekeeper
    if _gatekeeper is None:
        gatekeeper = Gatekeeper(config_module.load(os.environ.get(config_module.ENV_CONFIG_PATH) or None))
        gatekeeper.audit.check()  # a missing table refuses to serve, as bad config does
        _gatekeeper = gatekeeper
    return _gatekeeper


def to_request(event: dict) -> Request:
    request_context = event.get("requestContext") or {}
    http = request_context.get("http") or {}
    path = str(event.get("rawPath") or http.get("path", ""))
    # On a named API Gateway stage the path starts with it: "/prod/v1/sign".
    stage = str(request_context.get("stage") or "$default")
    if stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1:]
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw[:BASE64_CHARS_OVER_LIMIT])
        except (binascii.Error, ValueError):
            body = b"\xff"  # undecodable: reported as malformed JSON
    else:
        body = raw.encode("utf-8", "surrogatepass")[:READ_LIMIT]
    return Request(
        method=str(http.get("method", "")).upper(),
        path=path,
        headers=headers,
        body=body,
        peer=str(http.get("sourceIp", "")),
    )


def handler(event: dict, context: object = None, *, gatekeeper: Gatekeeper | None = None) -> dict:
    try:
        request = to_request(event)
        response = (gatekeeper or _instance()).handle(request)
    except ConfigError as refused:  # the operator's to fix: named in the log, not to the caller
        log.error("gatekeeper: refusing to serve: %s", refused)
        return _answer(plain_error(503, "misconfigured", "this gatekeeper's configuration is refused; see its log"))
    except Exception:  # a bug of ours: log it, answer without details
        log.exception("unhandled error")
        return _answer(plain_error(500, "internal", "internal error"))
    return _answer(response, head=request.method == "HEAD")


def _answer(response: Response, head: bool = False) -> dict:
    return {
        "statusCode": response.status,
        "headers": dict(response.headers),
        "body": "" if head else response.encoded().decode("utf-8"),
        "isBase64Encoded": False,
    }
