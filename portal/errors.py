"""Django's error views, with JSON for the API.

Most API errors are DRF's, already `{"detail": "…"}`. These are the ones Django
answers before or outside DRF: a path the URL patterns do not match (such as
`/api/v1/tickets/not-a-uuid`), a request Django refuses while reading it, and a
server error. Pages keep Django's views and our templates.
"""

from django.http import JsonResponse
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
