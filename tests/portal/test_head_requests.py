"""portal/head.py: a HEAD answer has the GET's length and no body, whoever made it.
(The test client drops HEAD bodies by itself, so the middleware is called directly;
tests/e2e/test_onboarding_verify.py meets waitress, which does not.)"""

from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory, SimpleTestCase

from portal.head import HeadWithoutBodyMiddleware


class HeadWithoutBodyTestCase(SimpleTestCase):
    def answer(self, method, response):
        return HeadWithoutBodyMiddleware(lambda request: response)(RequestFactory().generic(method, "/settings/"))

    def test_a_head_answer_keeps_its_length_and_drops_its_body(self):
        response = self.answer("HEAD", HttpResponse(b"<html>the page</html>"))
        self.assertEqual(response.content, b"")
        self.assertEqual(response["Content-Length"], "21")

    def test_a_get_answer_is_left_alone(self):
        self.assertEqual(self.answer("GET", HttpResponse(b"<html>the page</html>")).content, b"<html>the page</html>")

    def test_a_streaming_answer_is_left_to_its_server(self):
        response = self.answer("HEAD", StreamingHttpResponse(iter([b"x"])))
        self.assertTrue(response.streaming)
