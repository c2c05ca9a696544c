"""HEAD answers without a body. Django leaves that to the server (runserver and the
test client drop it), and waitress sends it: a browser then reads the body as the
start of the next answer on that keep-alive connection and fails it
(net::ERR_INVALID_HTTP_RESPONSE). The settings page's script HEADs the page for
the portal's clock and then POSTs for probe grants, so it met this."""

from __future__ import annotations


class HeadWithoutBodyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method == "HEAD" and not response.streaming:
            # The length a GET would have, as HTTP says; waitress expects no bytes for HEAD.
            length = len(response.content)
            response.content = b""
            response["Content-Length"] = str(length)
        return response
