"""Nothing the portal answers is stored by a browser or a proxy unless it says so.

Every page and JSON answer here is someone's: a tenant's tickets, its members, a
grant, a one-time secret. A help-desk machine is often shared: after sign-out the
back button, or the disk cache, must not show the last person's ticket list. So
every answer without a Cache-Control of its own gets `no-store`. Static files
(WhiteNoise, outside this middleware) keep their own long caching."""

from __future__ import annotations


class NoStoreByDefaultMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        return response
