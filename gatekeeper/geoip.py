"""The optional country database (acl.geoip_db): a MaxMind file read with maxminddb,
which only a customer who configures one needs (gatekeeper/requirements-geoip.txt).
app.py opens it and hands acl.Policy the lookup; the policy decides."""

from __future__ import annotations

from typing import Callable

from .errors import ConfigError
from .paths import IPAddress


def open_database(path: str) -> Callable[[IPAddress], str]:
    """address -> ISO country code, "" when the database does not know it."""
    try:
        import maxminddb
    except ImportError:
        raise ConfigError("acl.geoip_db", "needs the maxminddb package (requirements-geoip.txt)") from None
    try:
        reader = maxminddb.open_database(path)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise ConfigError("acl.geoip_db", f"not a readable MaxMind database: {type(exc).__name__}") from None

    def lookup(address: IPAddress) -> str:
        try:
            record = reader.get(str(address)) or {}
        except ValueError:  # an IPv6 address in an IPv4-only database: not known
            return ""
        country = record.get("country") or record.get("registered_country") or {}
        return str(country.get("iso_code") or "")

    return lookup
