"""The customer's access policy: who the client is, and whether it may come in.

The client address is the socket peer. Only when the peer is one of the
customer's trusted proxies do we read X-Forwarded-For, and then from the right:
each proxy appends the address it saw, so the right-most hop that is not a
trusted proxy is the first one nobody but the client could have written. The
left-most hop is whatever the client chose to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .config import AclConfig, Config
from .errors import BadRequest, Forbidden
from .paths import IPAddress, Network, parse_ip

MAX_FORWARDED_HOPS = 32


def _in_any(address: IPAddress, networks: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


@dataclass(frozen=True, slots=True)
class Client:
    ip: str
    country: str  # ISO code, "" when unknown


class Policy:
    def __init__(self, config: Config, country_of: Callable[[IPAddress], str] | None = None):
        """`country_of`: the country database's lookup (geoip.py), when acl.geoip_db is set."""
        self._config = config
        self._geoip = country_of

    def identify(self, peer: str, forwarded_for: str | None, country_header: str | None) -> Client:
        try:
            address = parse_ip(peer)
        except ValueError:
            raise BadRequest("client address is not an IP address", code="bad_client_address") from None
        trusted = _in_any(address, self._config.trusted_proxies)
        if trusted and forwarded_for:
            address = self._rightmost_untrusted(forwarded_for, address)
        return Client(str(address), self._country(address, trusted, country_header))

    def _rightmost_untrusted(self, header: str, peer: IPAddress) -> IPAddress:
        hops = header.split(",")
        if len(hops) > MAX_FORWARDED_HOPS:
            raise BadRequest("X-Forwarded-For has too many hops", code="bad_forwarded_for")
        address = peer
        for hop in reversed(hops):
            try:
                address = parse_ip(hop)
            except ValueError:
                raise BadRequest("X-Forwarded-For is malformed", code="bad_forwarded_for") from None
            if not _in_any(address, self._config.trusted_proxies):
                return address
        return address  # every hop was a proxy of ours: the left-most is the client

    def _country(self, address: IPAddress, trusted: bool, header: str | None) -> str:
        if self._geoip is not None:
            return self._geoip(address)
        if trusted and header and self._config.country_header:
            code = header.strip().upper()
            if len(code) == 2 and code.isascii() and code.isalpha():
                return code
        return ""

    def check(self, client: Client, upload: bool) -> None:
        """Deny beats allow; an address must be allowed explicitly. Uploads (agents
        everywhere) have their own lists; the country list guards reads."""
        lists: AclConfig = self._config.upload_acl if upload else self._config.acl
        address = parse_ip(client.ip)
        if _in_any(address, lists.deny) or not _in_any(address, lists.allow):
            raise Forbidden("your address is not allowed", code="address_denied")
        if not upload and self._config.countries and client.country not in self._config.countries:
            raise Forbidden("your country is not allowed", code="country_denied")

    def check_any(self, client: Client) -> None:
        """Refuse a client that no op could be allowed for: refused for uploads and
        for reads (with the reads' reason)."""
        try:
            self.check(client, upload=True)
        except Forbidden:
            self.check(client, upload=False)

