"""The AWS deployment: API Gateway HTTP API (payload 2.0) and Lambda function URL
events, both the same shape. Configuration comes from GATEKEEPER_* environment
variables; the Gatekeeper (and its boto3 clients) is built once per container."""

from __future__ import annotations

import base64
import binascii
import logging
import os

from . import config as config_module
from .app import MAX_BODY_BYTES, Gatekeeper, Request

log = logging.getLogger("gatekeeper")
_gatekeeper: Gatekeeper | None = None
INTERNAL_ERROR = {"statusCode": 500, "headers": {"Content-Type": "application/json"},
                  "body": '{"error":"internal","message":"internal error"}'}


def _instance() -> Gatekeeper:
    global _gatekeeper
    if _gatekeeper is None:
        _gatekeeper = Gatekeeper(config_module.load(os.environ.get("GATEKEEPER_CONFIG") or None))
    return _gatekeeper


def to_request(event: dict) -> Request:
    http = event.get("requestContext", {}).get("http", {})
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw[: (MAX_BODY_BYTES + 3) * 4 // 3 + 4])
        except (binascii.Error, ValueError):
            body = b"\xff"  # undecodable: reported as malformed JSON
    else:
        body = raw.encode("utf-8", "surrogatepass")[: MAX_BODY_BYTES + 1]
    return Request(
        method=str(http.get("method", "")).upper(),
        path=event.get("rawPath") or http.get("path", ""),
        headers=headers,
        body=body,
        peer=str(http.get("sourceIp", "")),
    )


def handler(event: dict, context: object = None, *, gatekeeper: Gatekeeper | None = None) -> dict:
    try:
        response = (gatekeeper or _instance()).handle(to_request(event))
    except Exception:  # a bug of ours: log it, answer without details
        log.exception("unhandled error")
        return dict(INTERNAL_ERROR)
    headers: dict[str, str] = {}
    for name, value in response.headers:
        headers[name] = value
    return {
        "statusCode": response.status,
        "headers": headers,
        "body": response.encoded().decode("utf-8"),
        "isBase64Encoded": False,
    }
