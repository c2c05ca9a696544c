"""The Content-Security-Policy middleware: every response gets the strict
default unless its view set a tenant's policy (tenants/csp.py holds them all)."""

from __future__ import annotations

from tenants.csp import DEFAULT_POLICY, HEADER, render_policy

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
