"""Content-Security-Policy: the strict default every response gets, and the
policies that name one tenant's origins: the report page's (its gatekeeper and
storage), that of the audit log, whose browser code talks to the tenant's
gatekeeper alone, and the settings page's (its gatekeeper check and the
onboarding verification's probe object: gatekeeper and storage).

The default lives here, beside the policies built from it, so that tenants/
needs nothing from portal/; portal/csp.py's middleware applies it.

No page has inline script or style, so neither 'unsafe-inline' nor nonces are
needed anywhere.
"""

from __future__ import annotations

from tenants.models import Tenant
from tenants.validators import origin_of

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


def report_policy(tenant: Tenant) -> str:
    """The default plus this tenant's origins: the browser may talk to its
    gatekeeper and its storage, and show images from storage or from blob: URLs
    of the bytes it fetched and hashed (no data: URLs: the page makes none)."""
    origins = tuple(dict.fromkeys(filter(None, (tenant.gatekeeper_origin, tenant.storage_origin,
                                                 idp_origin(tenant)))))
    storage = (tenant.storage_origin,) if tenant.storage_origin else ()
    policy = dict(DEFAULT_POLICY)
    policy["connect-src"] = ("'self'",) + origins
    policy["img-src"] = ("'self'", "blob:") + storage
    return render_policy(policy)


def idp_origin(tenant: Tenant) -> str:
    """The customer's IdP, when its gatekeeper has [identity]: the pages fetch its
    discovery document and exchange the code for the ID token there (PKCE)."""
    return origin_of(tenant.idp_issuer) if tenant.idp_issuer and tenant.idp_client_id else ""


def set_report_csp(response, tenant: Tenant):
    response[HEADER] = report_policy(tenant)
    return response


def gatekeeper_policy(tenant: Tenant) -> str:
    """The default plus this tenant's gatekeeper in connect-src: the audit page
    searches the log there and fetches nothing from storage. Without a
    gatekeeper: the default. The tenant's IdP too, when it names one (idp_origin)."""
    gatekeeper = tuple(filter(None, (tenant.gatekeeper_origin, idp_origin(tenant))))
    return render_policy({**DEFAULT_POLICY, "connect-src": ("'self'",) + gatekeeper})


def set_gatekeeper_csp(response, tenant: Tenant):
    response[HEADER] = gatekeeper_policy(tenant)
    return response


def verification_policy(gatekeeper_origin: str, storage_origin: str, idp: str = "") -> str:
    """The settings page's: its verification writes a probe object to storage with
    a presigned POST and reads it back, so storage joins the gatekeeper in
    connect-src (no img-src: the probe is text, never shown); and the tenant's IdP
    (`idp`, idp_origin), which its check asks from the browser."""
    origins = tuple(dict.fromkeys(filter(None, (gatekeeper_origin, storage_origin, idp))))
    return render_policy({**DEFAULT_POLICY, "connect-src": ("'self'",) + origins})
