"""Shapes: object keys taken literally, client addresses, integers.

A key is never URL-decoded a second time, never normalised: what the grant's
prefix covers is decided on the exact bytes the caller sent. Anything that could
be read two ways (dot segments, empty segments, backslashes, control characters,
`${`, which S3 reads as `${filename}` in an upload) or shown as something else
(format and line-separator characters such as U+202E, U+FEFF, U+2028) is refused
rather than interpreted.
"""

from __future__ import annotations

import hmac
import ipaddress
import unicodedata

from .errors import BadRequest, Forbidden

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_KEY_BYTES = 1024
# Unicode categories refused in keys: controls (C0, DEL, C1), format characters
# (bidi overrides, zero-width characters, BOM), surrogates, line and paragraph separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _refuse(what: str, reason: str) -> BadRequest:
    return BadRequest(f"{what} refused: {reason}", code="bad_key")


def check_path(text: object, what: str = "key", *, prefix: bool = False) -> str:
    """Validate the shape of a key or, with prefix=True, of a prefix: the same
    rules, except that a prefix may end with '/'."""
    if not isinstance(text, str) or not text:
        raise _refuse(what, "must be a non-empty string")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise _refuse(what, "not valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise _refuse(what, f"over {MAX_KEY_BYTES} bytes")
    if text.startswith("/"):
        raise _refuse(what, "leading '/'")
    if "\\" in text:
        raise _refuse(what, "backslash")
    if "${" in text:  # S3 replaces ${filename} in an upload's key with the file's name
        raise _refuse(what, "'${'")
    # isprintable() is False for every refused category (and for some allowed ones):
    # a quick pass for the usual key, the exact test otherwise.
    if not text.isprintable() and any(unicodedata.category(ch) in REFUSED_CATEGORIES for ch in text):
        raise _refuse(what, "control, format or separator character")
    segments = text.split("/")
    if prefix and segments[-1] == "":
        segments.pop()
    for segment in segments:
        if segment in ("", ".", ".."):
            raise _refuse(what, "empty, '.' or '..' segment")
    return text


def check_in_scope(text: str, prefixes: tuple[str, ...], what: str = "key") -> None:
    """One of the grant's prefixes covers the key: a plain byte-wise prefix test
    (each prefix ends with '/', so 'tickets/4/' never covers 'tickets/42/')."""
    if not any(text.startswith(prefix) for prefix in prefixes):
        raise Forbidden(f"{what} is outside the grant's prefix", code="out_of_scope")


def parse_ip(text: str) -> IPAddress:
    """An address as rules and the audit log compare it; ValueError if it is none."""
    address = ipaddress.ip_address(text.strip())
    if isinstance(address, ipaddress.IPv6Address):
        # A zone id ("fe80::1%eth0") names an interface of whoever saw the address,
        # and may be any text: rules and the audit log use the address alone.
        address = ipaddress.IPv6Address(int(address))
        # ::ffff:10.0.0.1 is 10.0.0.1: an IPv4 deny rule must not be sidestepped.
        if address.ipv4_mapped:
            return address.ipv4_mapped
    return address


def is_int(value: object) -> bool:
    """An int that is not a bool: True seconds or bytes is a bug, not a number."""
    return isinstance(value, int) and not isinstance(value, bool)


def same_text(a: object, b: str) -> bool:
    """`a` is the string `b`, compared in constant time (claims are the caller's words)."""
    return isinstance(a, str) and hmac.compare_digest(a.encode("utf-8", "surrogatepass"),
                                                      b.encode("utf-8", "surrogatepass"))
