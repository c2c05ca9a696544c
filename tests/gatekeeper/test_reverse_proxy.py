"""docs/operations.md's reverse-proxy configuration, run: the nginx block from the
doc itself (TLS with a certificate made here) in front of a real gatekeeper with
the downloaded configuration's `acl.trusted_proxies`. The client connects from
127.0.0.2, an address that is not a trusted proxy, as a customer's users do.

What it shows: a client's own X-Forwarded-For is never taken for its address (the
audit log records the address nginx saw); the path reaches the gatekeeper exactly
as sent; CORS preflights are the gatekeeper's; a body over the limit stops at the
proxy.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import ssl
import subprocess

import pytest

from tests import support
from tests.gatekeeper.conftest import ORIGIN

from tenants.gatekeeper_toml import LOCAL_PROXY

DOC = support.ROOT / "docs" / "operations.md"
CLIENT_ADDRESS = "127.0.0.2"  # on Linux all of 127/8 is loopback
FORGED = "203.0.113.7"


def doc_nginx_block() -> str:
    (block,) = re.findall(r"```nginx\n(.*?)```", DOC.read_text(), re.S)
    return block


@pytest.fixture(scope="module")
def proxied(start_gatekeeper, tmp_path_factory):
    """(gatekeeper, nginx port, CA file): the doc's server block, pointed at the gatekeeper."""
    assert shutil.which("nginx"), "nginx is installed by scripts/system-deps.sh"
    gk = start_gatekeeper({"acl": {"trusted_proxies": LOCAL_PROXY}})
    work = tmp_path_factory.mktemp("nginx")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(work / "key.pem"), "-out", str(work / "cert.pem"),
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    port = support.free_port()
    block = doc_nginx_block()
    for documented, here in [("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
                             ("/etc/ssl/gatekeeper/fullchain.pem", str(work / "cert.pem")),
                             ("/etc/ssl/gatekeeper/privkey.pem", str(work / "key.pem")),
                             ("proxy_pass http://127.0.0.1:8700;", f"proxy_pass {gk.url};")]:
        assert documented in block
        block = block.replace(documented, here)
    (work / "nginx.conf").write_text(
        f"daemon off;\nuser root;\nworker_processes 1;\npid {work}/nginx.pid;\nerror_log {work}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{\naccess_log {work}/access.log;\n"
        + "".join(f"{kind}_temp_path {work}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        + block + "}\n")
    proc = subprocess.Popen(["nginx", "-p", str(work), "-e", str(work / "error.log"), "-c", str(work / "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        support.wait_for_port(port, proc)
        yield gk, port, str(work / "cert.pem")
    finally:
        support.stop_process(proc)


def request(proxied, method, path, body=b"", headers=None):
    _, port, ca = proxied
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, source_address=(CLIENT_ADDRESS, 0),
                                             context=ssl.create_default_context(cafile=ca))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_a_clients_own_x_forwarded_for_is_not_its_address(proxied):
    gk = proxied[0]
    body = json.dumps({"ops": [{"op": "get", "key": "tickets/42/report.json"}]}).encode()
    status, headers, _ = request(proxied, "POST", "/v1/sign", body, {
        "Authorization": f"Bearer {gk.grant()}", "Content-Type": "application/json", "Origin": ORIGIN,
        "X-Forwarded-For": FORGED})
    assert status == 200
    [row] = gk.audit_rows(headers["X-Request-Id"])
    assert row["client_ip"] == CLIENT_ADDRESS  # what nginx saw and appended, not what the client wrote
    assert headers["Strict-Transport-Security"].startswith("max-age=")


def test_the_path_reaches_the_gatekeeper_as_sent(proxied):
    status, headers, body = request(proxied, "POST", "/v1/%73ign", b"{}", {"Content-Type": "application/json"})
    assert status == 404
    assert json.loads(body)["error"] == "not_found"  # the gatekeeper's answer, not nginx's
    status, _, body = request(proxied, "GET", "/v1/health")
    assert status == 200 and json.loads(body)["storage"] == "ok"


def test_preflights_are_answered_by_the_gatekeeper(proxied):
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    status, headers, _ = request(proxied, "OPTIONS", "/v1/sign", headers={"Origin": ORIGIN, **asked})
    assert status == 204 and headers["Access-Control-Allow-Origin"] == ORIGIN
    status, headers, _ = request(proxied, "OPTIONS", "/v1/sign", headers={"Origin": "https://evil.example", **asked})
    assert status == 403 and "Access-Control-Allow-Origin" not in headers


def test_a_body_over_the_limit_stops_at_the_proxy(proxied):
    status, headers, body = request(proxied, "POST", "/v1/sign", b"x" * (100 * 1024),
                                    {"Content-Type": "application/json"})
    assert status == 413
    assert b"nginx" in body  # refused before the gatekeeper read it
