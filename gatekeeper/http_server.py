"""The self-hosted deployment: a WSGI adapter around Gatekeeper.handle, served by
waitress (pure Python, no C extensions to audit, HTTP/1.1 keep-alive)."""

from __future__ import annotations

import logging
import resource
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
        # Routed on the request's own path: PATH_INFO is percent-decoded, and would
        # serve /v1/%73ign or /v1/audit%2Fsearch as real endpoints (they are 404).
        path=environ.get("REQUEST_URI", "").partition("?")[0],
        headers=headers,
        body=body,
        peer=environ.get("REMOTE_ADDR", ""),
    )


# Slow clients (connections opened and left idle, or sending a request a byte
# at a time) must not take every connection: waitress reads requests on its
# main loop and hands only complete ones to the threads, so what bounds it is
# the number of connections it keeps (100 by default: 110 slow clients blocked
# everyone) and select()'s 1,024 descriptors. bench/bench_slow_clients.py
# measures these settings (docs/operations.md): /v1/health within 1 s while
# 1,000 slow connections are held open, at the throughput of before.
CONNECTION_LIMIT = 4000
WAITRESS_SETTINGS = {
    "connection_limit": CONNECTION_LIMIT,
    "asyncore_use_poll": True,  # poll(): no 1,024-descriptor ceiling
    "backlog": 2048,
    "channel_timeout": 10,  # seconds a connection may send nothing before it is closed
    "cleanup_interval": 5,  # how often that is checked
}
# Descriptors beyond the connections: the listening socket, the audit store,
# storage clients, waitress's trigger pipe, logs.
SPARE_DESCRIPTORS = 64


def raise_descriptor_limit(wanted: int = CONNECTION_LIMIT + SPARE_DESCRIPTORS) -> None:
    """Raise the soft limit on open files towards `wanted` (the hard limit caps
    it): a service manager's usual 1,024 would refuse connections long before
    CONNECTION_LIMIT."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def serve(gatekeeper: Gatekeeper, host: str, port: int, threads: int = 8) -> None:
    raise_descriptor_limit()
    # Waitress must pass X-Forwarded-For through untouched: which hops to believe is
    # decided by the gatekeeper's own trusted_proxies (acl.py), in one place.
    waitress.serve(
        wsgi_app(gatekeeper), host=host, port=port, threads=threads, ident="gatekeeper",
        max_request_body_size=TRANSPORT_BODY_LIMIT, clear_untrusted_proxy_headers=False,
        **WAITRESS_SETTINGS,
    )
