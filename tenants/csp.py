"""Content-Security-Policy: the strict default every response gets, and the
policies that name a tenant's storage locations' origins: the report page's (its
ticket's location's gatekeeper and storage) and that of the pages whose browser
code talks to gatekeepers alone (the audit log, the settings page's checks).

The default lives here, beside the policies built from it, so that tenants/
needs nothing from portal/; portal/csp.py's middleware applies it.

No page has inline script or style, so neither 'unsafe-inline' nor nonces are
needed anywhere.
"""

from __future__ import annotations

from tenants.models import StorageLocation

HEADER = "Content-Security-Policy"

DEFAULT_POLICY: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'",),
    "connect-src": ("'self'",),
    "frame-ancestors": ("'none'",),
    "base-uri": ("'none'",),
    "form-action": ("'self'",),
}


def render_policy(policy: dict[str, tuple[str, ...]]) -> str:
    return "; ".join(f"{directive} {' '.join(sources)}" for directive, sources in policy.items())


def report_policy(*locations: StorageLocation) -> str:
    """The default plus these locations' origins (a report page: its ticket's own
    location; the list: every location its tickets are at): the browser may talk
    to their gatekeepers and storage, and show images from storage or from blob:
    URLs of the bytes it fetched and hashed (no data: URLs: the page makes none)."""
    gatekeepers = [loc.gatekeeper_origin for loc in locations]
    storage = tuple(dict.fromkeys(filter(None, (loc.storage_origin for loc in locations))))
    origins = tuple(dict.fromkeys(filter(None, (*gatekeepers, *storage))))
    policy = dict(DEFAULT_POLICY)
    policy["connect-src"] = ("'self'",) + origins
    policy["img-src"] = ("'self'", "blob:") + storage
    return render_policy(policy)


def set_report_csp(response, *locations: StorageLocation):
    response[HEADER] = report_policy(*locations)
    return response


def gatekeeper_policy(*locations: StorageLocation) -> str:
    """The default plus these locations' gatekeepers in connect-src: the audit
    page searches the log at the active one, the settings page asks each of the
    tenant's locations for its health; neither fetches anything from storage.
    Without a gatekeeper: the default."""
    gatekeepers = tuple(dict.fromkeys(filter(None, (loc.gatekeeper_origin for loc in locations))))
    return render_policy({**DEFAULT_POLICY, "connect-src": ("'self'",) + gatekeepers})


def set_gatekeeper_csp(response, *locations: StorageLocation):
    response[HEADER] = gatekeeper_policy(*locations)
    return response
