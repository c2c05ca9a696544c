"""The report page downloads no more than the manifest says was submitted.

A ticket is submitted the way an agent does; then its object is replaced in
storage by a much larger one behind everyone's back (talking to moto directly,
as only a test may). Bob (staff at Acme) opens it.

- Storage's listing (signed in the same /v1/sign batch as the gets) shows the
  real size: the page does not request the object at all.
- The listing lags (it still shows the submitted size) and storage sends more:
  the page stops the stream past the manifest's size. Storage here is a small
  server of this test's, which sends slowly and counts what it sent before the
  browser let go.

Either way the page says why, once, in the warning banner.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from gatekeeper_client.demo_report import build_demo_report
from tests.stack import open_report_view

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
OVERSIZED = 8 * MiB
REPORT_SECTIONS = ["message", "details", "resources", "processes", "events", "system"]
WHY = "Not downloaded, larger in storage than the manifest says: "


@pytest.fixture(scope="module")
def acme(dualkey_stack):
    return dualkey_stack.tenants["acme"]


def manifest_size(ticket: dict, name: str) -> int:
    return next(f["size"] for f in ticket["files"] if f["name"] == name)


def shown(n: int) -> str:
    """A size as the page shows it (lib/dom.js formatBytes, en-US)."""
    units, i = ["bytes", "KB", "MB", "GB"], 0
    while n >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:,.1f}".removesuffix(".0") + f" {units[i]}" if i else f"{n:,} bytes"


def bytes_received(view, url_path: str) -> int:
    """What the browser received for requests to `url_path` (bodies, as Playwright measures them)."""
    return sum(size for path, size in view.page.received if path == url_path)


def record_bodies(page) -> None:
    page.received = []

    def finished(request):
        page.received.append((urlsplit(request.url).path, request.sizes()["responseBodySize"]))

    page.on("requestfinished", finished)


# --- the listing shows the real size: nothing is requested ---------------------------------------

@pytest.fixture(scope="module")
def listed_view(dualkey_stack, chromium, acme):
    ticket = dualkey_stack.submit_files("acme", build_demo_report(71))
    key = ticket["prefix"] + "report.json"
    dualkey_stack.s3().put_object(Bucket=acme.bucket, Key=key, Body=b"{" + b" " * (OVERSIZED - 2) + b"}")
    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket, before_load=record_bodies)
    yield view, ticket
    context.close()


def test_an_object_listed_larger_than_its_manifest_entry_is_not_downloaded(acme, listed_view):
    view, ticket = listed_view
    path = f"/{acme.bucket}/{ticket['prefix']}report.json"
    storage_gets = [urlsplit(u).path for u in view.requests_to(acme.storage_origin, "GET")]
    assert path not in storage_gets, "the 8 MiB report.json was requested"
    assert bytes_received(view, path) == 0
    # The other files are fetched as usual.
    assert len(storage_gets) == len(ticket["files"]) - 1
    assert view.file_statuses()["report.json"] == "oversized"


def test_the_page_says_once_why_the_report_was_not_downloaded(listed_view):
    view, ticket = listed_view
    banner = view.banner("warning")
    assert banner is not None
    size = manifest_size(ticket, "report.json")
    assert f"{WHY}report.json (8 MB in storage; the manifest lists {shown(size)})." in banner, banner
    text = view.page.locator("[data-report-root]").text_content()
    assert text.count("larger in storage") == 1
    for name in REPORT_SECTIONS:
        body = view.page.locator(f"[data-section={name}] .section-body").text_content()
        assert body == "report.json was not downloaded: see the warning above."
    # The attachments, which the manifest decides, still show.
    assert view.page.get_by_test_id("screenshot").count() == 2
    assert view.page.get_by_test_id("log").count() == 2
    assert view.banner("error") is None and view.page_errors == []


# --- the listing lags: the stream is stopped past the manifest's size -------------------------------

class TricklingStorage(ThreadingHTTPServer):
    """Sends OVERSIZED bytes, 64 KiB every 10 ms, with no Content-Length (so
    only reading tells how long the body is); counts what it got to send before
    the client closed the connection."""

    daemon_threads = True
    allow_origin = ""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), TricklingHandler)
        self.sent = 0
        self.done = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/object"


class TricklingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection does

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Access-Control-Allow-Origin", self.server.allow_origin)
        self.end_headers()
        chunk = b"x" * (64 * 1024)
        try:
            while self.server.sent < OVERSIZED:
                self.wfile.write(chunk)
                self.wfile.flush()
                self.server.sent += len(chunk)
                time.sleep(0.01)
        except OSError:
            pass  # the browser let go
        finally:
            self.server.done.set()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def streamed_view(dualkey_stack, chromium, acme):
    ticket = dualkey_stack.submit_files("acme", build_demo_report(72))
    name = "application.log"
    key = ticket["prefix"] + name
    storage = TricklingStorage()
    storage.allow_origin = dualkey_stack.portal_url
    threading.Thread(target=storage.serve_forever, daemon=True).start()

    def lagging_listing(route):
        # The gatekeeper's real answer, except that the listing still shows the
        # submitted size and the get leads to the trickling storage.
        if route.request.method != "POST":
            return route.continue_()
        response = route.fetch()
        body = response.json()
        for result in body["results"]:
            for entry in result.get("objects", []):
                if entry["key"] == key:
                    entry["size"] = manifest_size(ticket, name)
            if result.get("key") == key:
                result["url"] = storage.url
        route.fulfill(response=response, json=body)

    def before_load(page):
        page.route(f"{acme.gatekeeper_url}/v1/sign", lagging_listing)

    # The trickling storage is not in the page's CSP (which names Acme's storage only).
    context, view = open_report_view(chromium, dualkey_stack, "bob", ticket, before_load=before_load,
                                     bypass_csp=True)
    storage.done.wait(10)
    yield view, ticket, storage
    context.close()
    storage.shutdown()
    storage.server_close()


def test_a_stream_running_past_the_manifests_size_is_stopped(streamed_view):
    view, ticket, storage = streamed_view
    assert storage.done.is_set()
    # Stopped early: the manifest's size, what was in flight, and socket buffers; not 8 MiB.
    assert storage.sent < 2 * MiB, f"storage sent {storage.sent} bytes"
    assert view.file_statuses()["application.log"] == "oversized"
    banner = view.banner("warning")
    size = manifest_size(ticket, "application.log")
    assert banner is not None
    assert f"{WHY}application.log (more than {shown(size)} sent by storage; stopped; " \
           f"the manifest lists {shown(size)})." in banner, banner
    slot = view.page.locator("[data-file='application.log']").text_content()
    assert "Not loaded: see the warning above." in slot
    assert view.page.locator("[data-report-root]").text_content().count("larger in storage") == 1
    # The report itself and the other files are fine.
    assert view.page.get_by_test_id("message").is_visible()
    assert view.page.locator("[data-file='agent.log'] pre").is_visible()
    assert view.page.locator("[data-file='application.log'] pre").text_content() == "Not loaded: see the warning above."
    assert view.banner("error") is None
