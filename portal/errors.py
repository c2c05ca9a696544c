"""Django's error views, with JSON for the API.

Most API errors are DRF's, already `{"detail": "…"}`. These are the ones Django
answers before or outside DRF: a path the URL patterns do not match (such as
`/api/v1/tickets/not-a-uuid`), a request Django refuses while reading it, and a
server error. Pages keep Django's views and our templates.
"""

from django.http import JsonResponse
from django.shortcuts import render
from django.views import defaults

API_PREFIX = "/api/"


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def bad_request(request, exception):
    if _is_api(request):
        return JsonResponse({"detail": "bad request"}, status=400)
    return defaults.bad_request(request, exception)


def not_found(request, exception):
    if _is_api(request):
        return JsonResponse({"detail": "not found"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return JsonResponse({"detail": "server error"}, status=500)
    return defaults.server_error(request)


class MethodNotAllowedPageMiddleware:
    """Django's 405 is an empty page. A person who opens a form's address (a GET on
    a POST-only URL, a reloaded or bookmarked form target) gets a page that says
    what the address is for; the API keeps its JSON, the status and `Allow` stay."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 405 or _is_api(request) or response.content or request.method == "HEAD":
            return response
        allowed = [m.strip() for m in response.get("Allow", "").split(",") if m.strip()]
        page = render(request, "405.html", {"allowed": allowed, "method": request.method}, status=405)
        page["Allow"] = response.get("Allow", "")
        return page
