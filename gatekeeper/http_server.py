"""The self-hosted deployment: a WSGI adapter around Gatekeeper.handle, served by
waitress (pure Python, no C extensions to audit, HTTP/1.1 keep-alive)."""

from __future__ import annotations

import logging
from http import HTTPStatus

import waitress

from .app import MAX_BODY_BYTES, READ_LIMIT, Gatekeeper, Request, Response, plain_error

log = logging.getLogger("gatekeeper")

# Waitress itself refuses (413, text/plain, not audited) a body this large or
# larger, without reading it; a smaller one over MAX_BODY_BYTES gets our audited 400.
TRANSPORT_BODY_LIMIT = MAX_BODY_BYTES + 8 * 1024


def wsgi_app(gatekeeper: Gatekeeper):
    def application(environ, start_response):
        try:
            body = _start(gatekeeper.handle(_request(environ)), start_response)
        except Exception:  # a bug of ours: log it, answer without details
            log.exception("unhandled error")
            body = _start(plain_error(500, "internal", "internal error"), start_response)
        # A HEAD answer has the GET headers and no body (RFC 9110), and waitress
        # sends whatever we return: a body here would be read as the start of the
        # next response on a kept-alive connection.
        return [b""] if environ["REQUEST_METHOD"].upper() == "HEAD" else [body]

    return application


def _start(response: Response, start_response) -> bytes:
    """Send the status line and headers; the body to return."""
    body = response.encoded()
    headers = response.headers + [("Content-Length", str(len(body)))]
    start_response(f"{response.status} {HTTPStatus(response.status).phrase}", headers)
    return body


def _request(environ) -> Request:
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items() if key.startswith("HTTP_")
    }
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(min(max(length, 0), READ_LIMIT)) if length else b""
    return Request(
        method=environ["REQUEST_METHOD"].upper(),
        path=environ.get("PATH_INFO", ""),
        headers=headers,
        body=body,
        peer=environ.get("REMOTE_ADDR", ""),
    )


def serve(gatekeeper: Gatekeeper, host: str, port: int, threads: int = 8) -> None:
    # Waitress must pass X-Forwarded-For through untouched: which hops to believe is
    # decided by the gatekeeper's own trusted_proxies (acl.py), in one place.
    waitress.serve(
        wsgi_app(gatekeeper), host=host, port=port, threads=threads, ident="gatekeeper",
        max_request_body_size=TRANSPORT_BODY_LIMIT, clear_untrusted_proxy_headers=False,
        channel_timeout=30,
    )
