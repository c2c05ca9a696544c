"""The DynamoDB audit store on the wire: it speaks DynamoDB's JSON API itself.

moto ignores signatures, so the proof that DynamoDB will accept what the store
signs is here: every request the store sends, to a recording HTTP server on
loopback, is sent again by botocore (same operation, parameters, credentials and
instant) and must carry the same body and the same Authorization header. The
retries, timeouts and connection reuse are exercised against the same server
answering what DynamoDB answers when it throttles, fails or hangs up.
"""

from __future__ import annotations

import datetime
import http.server
import json
import ssl
import subprocess
import threading
import time
from time import sleep as pause  # the store's time.sleep is the one the tests replace

import botocore.auth
import botocore.session
import pytest
from botocore import xform_name

from gatekeeper import audit_dynamodb
from gatekeeper.audit import AuditRecord, SearchQuery
from gatekeeper.audit_dynamodb import DynamoAuditStore
from gatekeeper.errors import AuditUnavailable, ConfigError
from gatekeeper.presign import AwsCredentials, Credentials, Signer

from .test_presign import REGIONS  # one of every partition botocore knows, several of the main one

NOW = time.time()
KEY_ID, SECRET = "AKIAEXAMPLEKEY000001", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ" + "x" * 300 + "=="
THROTTLED = (400, {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                   "message": "The level of configured provisioned throughput for the table was exceeded."})
UNAVAILABLE = (503, {"__type": "com.amazon.coral.availability#ServiceUnavailableException"})


class Recorder(http.server.ThreadingHTTPServer):
    """A real HTTP/1.1 server: records every request; answers from `script` (status,
    JSON body) in turn, then 200 with no items. "hang up" closes the connection without
    answering, "answer, then hang up" after answering (and saying nothing of it).
    With a certificate and key, HTTPS."""

    def __init__(self, tls: tuple[str, str] | None = None):
        super().__init__(("127.0.0.1", 0), RecordingHandler)
        self.requests: list[dict] = []
        self.script: list = []
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server_address[1]}"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.socket = context.wrap_socket(self.socket, server_side=True)


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as DynamoDB

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append({"headers": dict(self.headers), "body": body, "peer": self.client_address})
        answer = self.server.script.pop(0) if self.server.script else (200, {"Items": []})
        if answer == "hang up":
            self.close_connection = True
            return
        if answer == "answer, then hang up":
            self.close_connection, answer = True, (200, {})
        status, payload = answer
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def serving(server: Recorder):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def recorder():
    yield from serving(Recorder())


@pytest.fixture
def tls_recorder(tmp_path):
    """HTTPS with a certificate for 127.0.0.1 that no system trusts: (server, its CA file)."""
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", key,
                    "-out", cert, "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    for server in serving(Recorder((cert, key))):
        yield server, cert


def env_credentials(token: str | None) -> AwsCredentials:
    return AwsCredentials({"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
                           **({"AWS_SESSION_TOKEN": token} if token else {})})


def botocore_client(region: str, endpoint_url: str | None, token: str | None, tmp_path):
    session = botocore.session.Session()
    session.set_config_variable("config_file", str(tmp_path / "no-config"))
    return session.create_client("dynamodb", region_name=region, endpoint_url=endpoint_url,
                                 aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, aws_session_token=token)


def at(amz_date: str):
    """botocore's clock, stopped at `amz_date` (the instant the store signed at)."""
    instant = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    return lambda *args, **kwargs: instant


@pytest.mark.parametrize("token", [None, TOKEN])
def test_every_request_is_signed_as_botocore_signs_it(recorder, monkeypatch, tmp_path, token):
    store = DynamoAuditStore("gk-audit", 30, recorder.url, "eu-west-3", env_credentials(token))
    store.write([AuditRecord(ts=NOW - i, request_id=f"r{i}", op="get", key=f"tickets/1/ü{i}.png",
                             user_agent='Mozilla/5.0 "quoted" \\ \t', sub="user:7") for i in range(3)])
    assert store.claim_jti("jti-1", expires_at=NOW + 60, now=NOW)
    store.release_jti("jti-1")
    store.search(SearchQuery(op="get", key_prefix="tickets/1/", since=NOW - 60), now=NOW)
    assert store.healthy()
    ours = recorder.requests[:]
    targets = [r["headers"]["X-Amz-Target"] for r in ours]
    assert [t for n, t in enumerate(targets) if n == 0 or t != targets[n - 1]] == [  # 2 Queries past midnight
        "DynamoDB_20120810.TransactWriteItems", "DynamoDB_20120810.PutItem", "DynamoDB_20120810.DeleteItem",
        "DynamoDB_20120810.Query", "DynamoDB_20120810.PutItem"]

    client = botocore_client("eu-west-3", recorder.url, token, tmp_path)
    for request in ours:
        operation = request["headers"]["X-Amz-Target"].split(".")[1]
        monkeypatch.setattr(botocore.auth, "get_current_datetime", at(request["headers"]["X-Amz-Date"]))
        getattr(client, xform_name(operation))(**json.loads(request["body"]))
        theirs = recorder.requests[-1]
        assert theirs["body"] == request["body"], operation
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Target", "Content-Type", "X-Amz-Security-Token",
                     "Host"):
            assert theirs["headers"].get(name) == request["headers"].get(name), (operation, name)
    assert ours[0]["headers"]["Authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={KEY_ID}/{ours[0]['headers']['X-Amz-Date'][:8]}/eu-west-3/dynamodb/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;" + ("x-amz-security-token;" if token else "") + "x-amz-target, ")


@pytest.mark.parametrize("region", REGIONS)
def test_on_aws_the_endpoint_and_signature_are_botocores(region, monkeypatch, tmp_path):
    """No endpoint_url: the region's own endpoint, in its partition. Nothing leaves the
    machine: botocore's request is taken before it is sent."""
    client = botocore_client(region, None, TOKEN, tmp_path)
    sent = []
    client.meta.events.register("before-send", lambda request, **kwargs: sent.append(request) or _answer(request))
    stopped = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", at(stopped.strftime("%Y%m%dT%H%M%SZ")))
    params = {"TableName": "gk-audit", "Item": {"pk": {"S": "jti#x"}, "sk": {"S": "jti"}}}
    client.put_item(**params)
    [theirs] = sent
    store = DynamoAuditStore("gk-audit", 30, None, region)
    host = theirs.url.split("/")[2]
    assert f"https://{host}/" == theirs.url and store._host == host
    headers = Signer(region, "dynamodb").sign_headers(
        Credentials(KEY_ID, SECRET, TOKEN), host,
        {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.PutItem"},
        json.dumps(params).encode(), stopped)
    assert theirs.body == json.dumps(params).encode()
    assert headers["Authorization"] == theirs.headers["Authorization"].decode()


def _answer(request):
    from botocore.awsrequest import AWSResponse

    class Raw:
        def stream(self, **kwargs):
            yield b"{}"
    return AWSResponse(request.url, 200, {}, Raw())


# --- retries, connections, refusals -------------------------------------------------------

def test_one_keep_alive_connection_serves_every_request(recorder):
    store = DynamoAuditStore("gk-audit", 30, recorder.url, "us-east-1", env_credentials(None))
    for i in range(5):
        store.write([AuditRecord(ts=NOW, request_id=f"r{i}")])
    assert len({r["peer"] for r in recorder.requests}) == 1


def test_a_connection_the_server_closed_is_replaced_without_a_failure(recorder, monkeypatch):
    waits = []
    monkeypatch.setattr(audit_dynamodb.time, "sleep", waits.append)
    store = DynamoAuditStore("gk-audit", 30, recorder.url, "us-east-1", env_credentials(None))
    recorder.script = ["answer, then hang up", (200, {}), "hang up"]
    store.write([AuditRecord(ts=NOW)])
    pause(0.2)  # the close arrives
    store.write([AuditRecord(ts=NOW)])  # the idle connection was closed: a new one, at once
    assert waits == [] and len(recorder.requests) == 2
    store.write([AuditRecord(ts=NOW)])  # hung up on mid-request: retried, on a new connection
    assert len(waits) == 1 and len(recorder.requests) == 4
    peers = [r["peer"] for r in recorder.requests]
    assert peers[0] != peers[1] == peers[2] != peers[3]


def test_throttling_and_server_errors_are_retried_with_a_bounded_backoff(recorder, monkeypatch):
    waits = []
    monkeypatch.setattr(audit_dynamodb.time, "sleep", waits.append)
    store = DynamoAuditStore("gk-audit", 30, recorder.url, "us-east-1", env_credentials(None))
    recorder.script = [THROTTLED, UNAVAILABLE]
    store.write([AuditRecord(ts=NOW)])  # the third attempt is answered
    assert len(recorder.requests) == 3 and len(waits) == 2
    assert 0 <= waits[0] <= 1 and 0 <= waits[1] <= 0.05  # throttled: up to 1 s; a 5xx: up to 50 ms
    # The same transaction each time: DynamoDB applies it once (ClientRequestToken).
    assert len({r["body"] for r in recorder.requests}) == 1
    assert len({r["headers"]["X-Amz-Date"] for r in recorder.requests}) <= 3  # each attempt signed anew
    recorder.script = [THROTTLED] * 3
    with pytest.raises(AuditUnavailable) as refused:
        store.write([AuditRecord(ts=NOW)])
    assert len(recorder.requests) == 6  # three attempts, then fail closed
    assert "Throughput" not in refused.value.message


@pytest.mark.parametrize("refusal", [
    (400, {"__type": "com.amazonaws.dynamodb.v20120810#ValidationException", "message": "bad"}),
    (400, {"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"}),
    (400, {"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException"}),
    (403, {"__type": "com.amazon.coral.service#AccessDeniedException"}),
])
def test_a_refusal_is_not_retried_and_fails_closed(recorder, refusal):
    store = DynamoAuditStore("gk-audit", 30, recorder.url, "us-east-1", env_credentials(None))
    recorder.script = [refusal]
    with pytest.raises(AuditUnavailable):
        store.write([AuditRecord(ts=NOW)])
    assert len(recorder.requests) == 1


def test_a_failed_condition_is_an_answer_not_a_failure(recorder):
    store = DynamoAuditStore("gk-audit", 30, recorder.url, "us-east-1", env_credentials(None))
    recorder.script = [(400, {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"})]
    assert store.claim_jti("jti-1", expires_at=NOW + 60, now=NOW) is False
    assert len(recorder.requests) == 1


def test_an_answer_that_never_comes_is_bounded_by_the_read_timeout(recorder, monkeypatch):
    monkeypatch.setattr(audit_dynamodb, "READ_TIMEOUT", 0.3)
    monkeypatch.setattr(audit_dynamodb, "MAX_ATTEMPTS", 2)
    release = threading.Event()
    recorder.RequestHandlerClass = type("Silent", (RecordingHandler,), {"do_POST": lambda self: release.wait(5)})
    store = DynamoAuditStore("gk-audit", 30, recorder.url, "us-east-1", env_credentials(None))
    started = time.monotonic()
    with pytest.raises(AuditUnavailable):
        store.write([AuditRecord(ts=NOW)])
    release.set()
    assert time.monotonic() - started < 2 * 0.3 + 0.5


def test_https_is_verified_against_the_system_or_aws_ca_bundle(tls_recorder, monkeypatch):
    server, ca_file = tls_recorder
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    untrusted = DynamoAuditStore("gk-audit", 30, server.url, "us-east-1", env_credentials(None))
    with pytest.raises(AuditUnavailable):  # a certificate no one vouches for: nothing is sent
        untrusted.write([AuditRecord(ts=NOW)])
    assert server.requests == []
    monkeypatch.setenv("AWS_CA_BUNDLE", ca_file)
    store = DynamoAuditStore("gk-audit", 30, server.url, "us-east-1", env_credentials(TOKEN))
    store.write([AuditRecord(ts=NOW)])
    store.write([AuditRecord(ts=NOW)])
    assert len(server.requests) == 2 and server.requests[0]["peer"] == server.requests[1]["peer"]  # kept alive
    assert server.requests[0]["headers"]["X-Amz-Security-Token"] == TOKEN


def test_without_credentials_nothing_is_sent(recorder, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = DynamoAuditStore("gk-audit", 30, recorder.url, "us-east-1")
    with pytest.raises(AuditUnavailable):
        store.write([AuditRecord(ts=NOW)])
    with pytest.raises(ConfigError, match="audit.url"):
        store.check()
    assert recorder.requests == []


def test_credentials_come_from_the_environment_then_from_botocores_chain(tmp_path, monkeypatch):
    assert env_credentials(TOKEN)() == Credentials(KEY_ID, SECRET, TOKEN)
    assert env_credentials(None)() == Credentials(KEY_ID, SECRET, None)
    # None in the environment: botocore's chain, here a profile in a shared file.
    (tmp_path / "credentials").write_text(f"[other]\naws_access_key_id = AKIAFROMFILE\naws_secret_access_key = {SECRET}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_PROFILE", "other")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "")
    assert AwsCredentials()() == Credentials("AKIAFROMFILE", SECRET, None)


# --- through the customer's HTTP proxy (HTTPS_PROXY / HTTP_PROXY, NO_PROXY) ------------

class Proxy(http.server.ThreadingHTTPServer):
    """An HTTP proxy on loopback, as a customer's network has one: CONNECT opens a tunnel
    (bytes both ways, TLS inside untouched); a request in absolute form is forwarded.
    Records what it was asked, with the headers it saw."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.asked: list[tuple[str, str, dict]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_CONNECT(self):
        import select
        import socket

        self.server.asked.append(("CONNECT", self.path, dict(self.headers)))
        host, port = self.path.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        self.send_response(200, "Connection established")
        self.end_headers()
        sockets = [self.connection, upstream]
        while True:
            ready, _, _ = select.select(sockets, [], [], 5)
            if not ready:
                break
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    upstream.close()
                    self.close_connection = True
                    return
                (upstream if sock is self.connection else self.connection).sendall(data)

    def do_POST(self):
        import http.client
        from urllib.parse import urlsplit

        self.server.asked.append(("POST", self.path, dict(self.headers)))
        target = urlsplit(self.path)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        upstream = http.client.HTTPConnection(target.hostname, target.port)
        upstream.request("POST", target.path or "/", body,
                         {k: v for k, v in self.headers.items() if k.lower() != "proxy-authorization"})
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.getheader("Content-Type") or "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy(monkeypatch):
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield from serving(Proxy())


def test_through_an_http_proxy_the_request_names_its_target_and_keeps_its_signature(recorder, proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://ops:s%3Acret@"))
    store = DynamoAuditStore("gk-audit", 30, recorder.url, "us-east-1", env_credentials(None))
    store.write([AuditRecord(ts=NOW)])
    store.write([AuditRecord(ts=NOW)])
    assert [(method, path) for method, path, _ in proxy.asked] == [("POST", recorder.url + "/")] * 2
    assert proxy.asked[0][2]["Proxy-Authorization"] == "Basic b3BzOnM6Y3JldA=="  # ops:s:cret
    [first, _] = recorder.requests
    assert first["headers"]["Host"] == recorder.url.removeprefix("http://")  # what was signed
    assert "Proxy-Authorization" not in first["headers"]


def test_to_https_through_a_proxy_is_a_tunnel_and_the_certificate_is_still_checked(tls_recorder, proxy, monkeypatch):
    server, ca_file = tls_recorder
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    with pytest.raises(AuditUnavailable):  # tunnelled, but TLS with DynamoDB's end as ever: untrusted here
        DynamoAuditStore("gk-audit", 30, server.url, "us-east-1", env_credentials(None)).write([AuditRecord(ts=NOW)])
    assert server.requests == []
    monkeypatch.setenv("AWS_CA_BUNDLE", ca_file)
    store = DynamoAuditStore("gk-audit", 30, server.url, "us-east-1", env_credentials(None))
    store.write([AuditRecord(ts=NOW)])
    store.write([AuditRecord(ts=NOW)])
    tunnels = [path for method, path, _ in proxy.asked if method == "CONNECT"]
    assert tunnels and set(tunnels) == {server.url.removeprefix("https://")} and len(server.requests) == 2
    assert all(method == "CONNECT" for method, _, _ in proxy.asked)  # nothing in the clear


def test_no_proxy_and_a_proxy_that_is_not_http(recorder, proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    DynamoAuditStore("gk-audit", 30, recorder.url, "us-east-1", env_credentials(None)).write([AuditRecord(ts=NOW)])
    assert proxy.asked == [] and len(recorder.requests) == 1
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.example:3128")
    with pytest.raises(ConfigError) as refused:
        DynamoAuditStore("gk-audit", 30, "https://dynamodb.eu-west-1.amazonaws.com", "eu-west-1")
    assert refused.value.key == "HTTPS_PROXY"
