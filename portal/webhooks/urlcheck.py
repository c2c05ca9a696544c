"""Which webhook URLs the portal will send to. The portal makes these requests from
the vendor's network, so a URL must not turn it into a proxy onto that network
(SSRF): https only; every address the host resolves to must be a public one.
Loopback (http too) is allowed where DUALKEY_WEBHOOK_ALLOW_LOOPBACK is on, which it
is by default in debug (the demo, the tests' receivers) and never otherwise;
DUALKEY_WEBHOOK_ALLOW_PRIVATE lets a deployment whose receivers are on a private
network allow private addresses. Checked when an endpoint is added and again
before every delivery (an address may change between the two)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeURL(ValueError):
    pass


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeURL(f"the host {host} does not resolve") from None
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def check_url(url: str, *, debug: bool | None = None, allow_private: bool | None = None) -> str:
    """The URL as given when the portal may send to it; UnsafeURL saying why otherwise.
    `debug`: whether loopback is allowed (DUALKEY_WEBHOOK_ALLOW_LOOPBACK)."""
    debug = settings.DUALKEY_WEBHOOK_ALLOW_LOOPBACK if debug is None else debug
    allow_private = settings.DUALKEY_WEBHOOK_ALLOW_PRIVATE if allow_private is None else allow_private
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise UnsafeURL("not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeURL("the URL must be https://HOST/PATH")
    if parts.username or parts.password:
        raise UnsafeURL("the URL must not carry a user name or password")
    addresses = _addresses(parts.hostname)
    loopback = all(address.is_loopback for address in addresses)
    if parts.scheme == "http" and not (debug and loopback):
        raise UnsafeURL("the URL must use https (http only to loopback, in debug)")
    for address in addresses:
        if address.is_global or allow_private or (debug and address.is_loopback):
            continue
        raise UnsafeURL(f"{parts.hostname} resolves to {address}, a private or reserved address")
    return url
