"""Content-Security-Policy: one strict default for every response, the report
page's policy, which names exactly its tenant's gatekeeper and storage origins,
and the policy of the pages whose browser code talks to the tenant's gatekeeper
alone (the audit log, the settings page's gatekeeper check), which names exactly
that gatekeeper.

No page has inline script or style, so neither 'unsafe-inline' nor nonces are
needed anywhere.
"""

from __future__ import annotations

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


def report_policy(tenant) -> str:
    """The default plus this tenant's origins: the browser may talk to its
    gatekeeper and its storage, and show images from storage or from blob: URLs
    of the bytes it fetched and hashed (no data: URLs: the page makes none)."""
    origins = tuple(dict.fromkeys(filter(None, (tenant.gatekeeper_origin, tenant.storage_origin))))
    storage = (tenant.storage_origin,) if tenant.storage_origin else ()
    policy = dict(DEFAULT_POLICY)
    policy["connect-src"] = ("'self'",) + origins
    policy["img-src"] = ("'self'", "blob:") + storage
    return render_policy(policy)


def set_report_csp(response, tenant):
    response[HEADER] = report_policy(tenant)
    return response


def gatekeeper_policy(tenant) -> str:
    """The default plus this tenant's gatekeeper in connect-src: the audit page
    searches the log there, the settings page asks it for its health; neither
    fetches anything from storage. Without a gatekeeper: the default."""
    gatekeeper = (tenant.gatekeeper_origin,) if tenant.gatekeeper_origin else ()
    return render_policy({**DEFAULT_POLICY, "connect-src": ("'self'",) + gatekeeper})


def set_gatekeeper_csp(response, tenant):
    response[HEADER] = gatekeeper_policy(tenant)
    return response


DEFAULT_HEADER = render_policy(DEFAULT_POLICY)


class ContentSecurityPolicyMiddleware:
    """Adds the default policy unless the view already set its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = DEFAULT_HEADER
        return response
