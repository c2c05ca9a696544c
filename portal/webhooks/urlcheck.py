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


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: the low 32 bits are the IPv4 address
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # a site's own translator; where it puts the IPv4 varies
COMPATIBLE = ipaddress.ip_network("::/96")  # the deprecated IPv4-compatible ::a.b.c.d


class UnsafeURL(ValueError):
    pass


def _target(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Where a packet to `address` ends up: the IPv4 address an IPv6 one carries (IPv4-mapped
    ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, 6to4 2002:AABB:CCDD::, NAT64 64:ff9b::a.b.c.d),
    which ipaddress's is_global does not look into; the address itself otherwise."""
    if address.version == 4:
        return address
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address in NAT64 or (address in COMPATIBLE and int(address) > 1):  # not :: and ::1
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and address not in NAT64_LOCAL


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
    loopback = all(_target(address).is_loopback for address in addresses)
    if parts.scheme == "http" and not (debug and loopback):
        raise UnsafeURL("the URL must use https (http only to loopback, in debug)")
    for address in addresses:
        target = _target(address)
        if _public(target) or allow_private or (debug and target.is_loopback):
            continue
        carried = f" (which carries {target})" if target != address else ""
        raise UnsafeURL(f"{parts.hostname} resolves to {address}{carried}, a private or reserved address")
    return url
