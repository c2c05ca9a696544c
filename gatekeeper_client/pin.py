"""The agent's pin: the one gatekeeper (URL and id) the customer's own agent
configuration names, and the checks that keep uploads there whatever the portal
answers (docs/agent.md).

The portal is the vendor's. If it could name the gatekeeper an agent sends its
grant to, or the URLs it uploads to, a compromised portal would receive report
files and the customer's audit log would show nothing. So the agent:

- sends its grant only to the pinned gatekeeper, and refuses a portal answer
  naming another one (URL, compared after normalising, or id, in the answer or
  in the grant's audience);
- asks the pinned gatekeeper where its storage is (`storage_origin` in
  /v1/health) and uploads only to presigned URLs on that origin;
- needs HTTPS for both, except on loopback.

Pure functions and one small value: no HTTP here.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
GATEKEEPER_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")  # tenants/validators.py, used with fullmatch


class PinError(ValueError):
    """A URL or id that cannot be pinned, or a destination outside the pin. The
    message names the offending value (URLs and ids are not secrets) and the rule."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: the only hosts plain HTTP is allowed to."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == 4 and address in ipaddress.ip_network("127.0.0.0/8") or \
        address == ipaddress.ip_address("::1")


def normalise_url(url: str, *, what: str, path_allowed: bool = True) -> str:
    """scheme://host[:port][/path] with scheme and host lower case, no default
    port and no trailing "/"; HTTPS unless the host is loopback. Raises PinError.

    Two spellings of one gatekeeper (`HTTPS://GK.example:443/dk/`,
    `https://gk.example/dk`) compare equal; `localhost` and `127.0.0.1` do not
    (nothing is resolved)."""
    if not isinstance(url, str) or not url or any(c.isspace() or ord(c) < 32 for c in url):
        raise PinError(f"{what} must be a URL like https://gk.example.com, not {url!r}")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise PinError(f"{what} {url!r} has an invalid port") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise PinError(f"{what} must be a URL like https://gk.example.com, not {url!r}")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment \
            or url.endswith(("?", "#")):
        raise PinError(f"{what} {url!r} must not carry user info, a query or a fragment")
    path = parts.path.rstrip("/")
    if path and not path_allowed:
        raise PinError(f"{what} {url!r} must be an origin (scheme://host[:port]), without a path")
    host = parts.hostname  # urlsplit lower-cases it and drops IPv6 brackets
    if scheme != "https" and not is_loopback(host):
        raise PinError(f"{what} {url!r} must use https (plain http only on loopback)")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{path}"


def origin_of(url: str, *, what: str) -> str:
    """The normalised origin of a URL (its path, query and fragment dropped)."""
    if not isinstance(url, str):
        raise PinError(f"{what} is not a URL")
    parts = urlsplit(url)
    return normalise_url(f"{parts.scheme}://{parts.netloc}", what=what, path_allowed=False)


def grant_audience(grant: str) -> str | None:
    """The `aud` claim of a grant, read without verifying it (the agent holds no
    vendor key; the gatekeeper verifies). None when it cannot be read."""
    try:
        payload = grant.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (AttributeError, IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        return None
    audience = claims.get("aud") if isinstance(claims, dict) else None
    return audience if isinstance(audience, str) else None


@dataclass(frozen=True)
class Pin:
    """The gatekeeper the customer pinned: `url` normalised, `id` as configured."""

    url: str
    id: str

    @classmethod
    def of(cls, gatekeeper_url: str, gatekeeper_id: str) -> Pin:
        url = normalise_url(gatekeeper_url, what="gatekeeper_url")
        if not isinstance(gatekeeper_id, str) or not GATEKEEPER_ID_RE.fullmatch(gatekeeper_id):
            raise PinError(f"gatekeeper_id must be 1-64 letters, digits, '.', '_' or '-', not {gatekeeper_id!r}")
        return cls(url, gatekeeper_id)

    def check_answer(self, answer: dict) -> None:
        """Refuse a portal answer (a ticket's creation, a put grant) that names
        another gatekeeper than this one, by URL, by id, or in its grant's audience."""
        named_url = answer.get("gatekeeper_url")
        try:
            same_url = normalise_url(named_url, what="the portal's gatekeeper_url") == self.url
        except PinError:
            same_url = False
        named_id = answer.get("gatekeeper_id", self.id)  # an older portal does not name it
        audience = grant_audience(answer.get("grant"))
        if not same_url or named_id != self.id or audience != self.id:
            raise PinError(
                f"the portal names gatekeeper {_shown(named_url)} (id {_shown(named_id)}, grant for "
                f"{_shown(audience)}), not the pinned {self.url} (id {self.id})")

    def check_health(self, health: dict) -> str:
        """The pinned gatekeeper's own word on who it is and where its storage is;
        returns the storage origin (normalised)."""
        if health.get("gatekeeper_id") != self.id:
            raise PinError(f"the gatekeeper at {self.url} says it is {_shown(health.get('gatekeeper_id'))}, "
                           f"not the pinned {self.id}")
        origin = health.get("storage_origin")
        if not origin:
            raise PinError(f"the gatekeeper at {self.url} does not report its storage_origin "
                           "(it predates the agent pin: upgrade it)")
        return normalise_url(origin, what="its storage_origin", path_allowed=False)


def check_upload_target(result: dict, key: str, storage_origin: str) -> None:
    """One `put` result of /v1/sign: a presigned POST for exactly `key`, on the
    pinned gatekeeper's storage origin (HTTPS unless loopback)."""
    url = result.get("url")
    fields = result.get("fields")
    if result.get("method") != "POST" or not isinstance(fields, dict) or fields.get("key") != key:
        raise PinError(f"the upload for {key} is not a presigned POST of that key")
    if origin_of(url, what=f"the upload URL for {key}") != storage_origin:
        raise PinError(f"the upload URL for {key} is on {_shown(origin_of_unchecked(url))}, "
                       f"not the pinned gatekeeper's storage {storage_origin}")


def origin_of_unchecked(url: object) -> str:
    """scheme://netloc of whatever was given, for messages only (never a path or
    query: a presigned URL's query carries its signature)."""
    if not isinstance(url, str):
        return repr(url)
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text[:200]) if not text.isprintable() else text[:200]
