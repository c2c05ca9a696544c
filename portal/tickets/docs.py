"""The API docs page: Swagger UI from drf-spectacular-sidecar's static files, so
it works offline, with its init script served as a file so our CSP holds."""

from drf_spectacular.views import SpectacularSwaggerSplitView

from tenants.csp import DEFAULT_POLICY, HEADER, render_policy

# Swagger UI's stylesheet draws its icons with data: URLs.
DOCS_POLICY = render_policy({**DEFAULT_POLICY, "img-src": ("'self'", "data:")})

_swagger = SpectacularSwaggerSplitView.as_view(url_name="api-schema", permission_classes=[], authentication_classes=[])


def api_docs(request, *args, **kwargs):
    response = _swagger(request, *args, **kwargs)
    response[HEADER] = DOCS_POLICY
    return response
