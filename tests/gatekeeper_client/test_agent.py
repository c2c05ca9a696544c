"""The agent against a tiny fake portal + gatekeeper + storage on loopback.

The fake speaks the real wire formats (portal API, /v1/sign, presigned POST
multipart) so these tests exercise the agent's HTTP code for real; end-to-end
tests against the real portal and gatekeeper live elsewhere.
"""

import hashlib
import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gatekeeper_client import agent
from gatekeeper_client.agent import SubmitFailed, submit_ticket

TOKEN = "agent-token-s3cret"
GRANT = "grant-for-ticket-7"
PREFIX = "tickets/7/"
FILES = [("report.json", b'{"schema_version": 1}', "application/json"),
         ("screenshot-1.png", b"\x89PNG fake", "image/png")]


class FakeWorld:
    """What the fake services saw, and how they should misbehave."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []      # (path, authorization)
        self.created: dict | None = None
        self.sign_bodies: list[dict] = []
        self.stored: dict[str, bytes] = {}
        self.form_orders: list[list[str]] = []
        self.sign_error: tuple[int, dict] | None = None
        self.storage_status = 204
        self.wrong_keys = False
        self.url = ""


def _handler(world: FakeWorld):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            auth = self.headers.get("Authorization", "")
            world.calls.append((self.path, auth))
            if self.path.startswith("/api/"):
                if auth != f"Token {TOKEN}":
                    return self.answer(401, {"detail": "Invalid token."})
                if self.path == "/api/v1/tickets":
                    world.created = json.loads(body)
                    return self.answer(201, {
                        "id": 7, "number": 1007, "status": "open", "prefix": PREFIX,
                        "gatekeeper_url": world.url + "/gk", "grant": GRANT,
                        "grant_expires_at": "2030-01-01T00:00:00Z", "files": world.created["files"]})
                return self.answer(200, {"id": 7, "status": "complete"})
            if self.path == "/gk/v1/sign":
                world.sign_bodies.append(json.loads(body))
                if world.sign_error:
                    return self.answer(*world.sign_error)
                return self.answer(200, {"results": [
                    {"op": "put", "key": op["key"] + ("x" if world.wrong_keys else ""),
                     "method": "POST", "url": world.url + "/storage",
                     "fields": {"key": op["key"], "Content-Type": op["content_type"], "policy": "p"},
                     "expires_at": "2030-01-01T00:00:00Z"} for op in world.sign_bodies[-1]["ops"]]})
            if self.path == "/storage":
                message = BytesParser(policy=HTTP).parsebytes(
                    b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
                parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                         for p in message.iter_parts()}
                world.form_orders.append(list(parts))
                if world.storage_status != 204:
                    return self.answer(world.storage_status, {"error": "AccessDenied"})
                world.stored[parts["key"].decode()] = parts["file"]
                return self.answer(204, None)
            self.answer(404, {"detail": "Not found."})

        def answer(self, status, payload):
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def world():
    world = FakeWorld()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(world))
    world.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield world
    server.shutdown()
    server.server_close()


def test_it_submits_manifest_signs_once_uploads_and_completes(world):
    ticket = submit_ticket(world.url, TOKEN, FILES)

    assert ticket["status"] == "complete" and ticket["id"] == 7
    assert "grant" not in ticket
    assert set(world.created) == {"files"}  # the manifest only: nothing the user typed
    assert world.created["files"] == [
        {"name": n, "size": len(d), "content_type": t, "sha256": hashlib.sha256(d).hexdigest()}
        for n, d, t in FILES]
    assert world.sign_bodies == [{"ops": [
        {"op": "put", "key": PREFIX + n, "size": len(d), "content_type": t} for n, d, t in FILES]}]
    assert world.stored == {PREFIX + n: d for n, d, _ in FILES}
    assert [path for path, _ in world.calls] == [
        "/api/v1/tickets", "/gk/v1/sign", "/storage", "/storage", "/api/v1/tickets/7/complete"]


def test_it_sends_the_token_only_to_the_portal_and_the_grant_only_to_the_gatekeeper(world):
    submit_ticket(world.url, TOKEN, FILES)

    for path, auth in world.calls:
        expected = {"/api": f"Token {TOKEN}", "/gk/": f"Bearer {GRANT}"}.get(path[:4], "")
        assert auth == expected, path


def test_it_posts_the_policy_fields_before_the_file(world):
    submit_ticket(world.url, TOKEN, FILES)

    assert all(order[-1] == "file" for order in world.form_orders)


def test_it_reports_a_gatekeeper_refusal_verbatim_and_does_not_complete(world):
    world.sign_error = (403, {"error": "address_denied", "message": "your address is not allowed"})

    with pytest.raises(SubmitFailed) as failed:
        submit_ticket(world.url, TOKEN, FILES)

    assert (failed.value.step, failed.value.status, failed.value.code) == ("sign", 403, "address_denied")
    assert failed.value.message == "your address is not allowed"
    assert world.stored == {}
    assert not any(path.endswith("/complete") for path, _ in world.calls)


def test_it_reports_a_portal_refusal(world):
    with pytest.raises(SubmitFailed) as failed:
        submit_ticket(world.url, "wrong-token", FILES)

    assert (failed.value.step, failed.value.status) == ("create", 401)
    assert failed.value.message == "Invalid token."
    assert len(world.calls) == 1


def test_it_reports_a_storage_refusal_and_does_not_complete(world):
    world.storage_status = 403

    with pytest.raises(SubmitFailed) as failed:
        submit_ticket(world.url, TOKEN, FILES)

    assert (failed.value.step, failed.value.status) == ("upload", 403)
    assert "report.json" in failed.value.message
    assert not any(path.endswith("/complete") for path, _ in world.calls)


def test_it_refuses_results_for_keys_it_did_not_ask_for(world):
    world.wrong_keys = True

    with pytest.raises(SubmitFailed, match="do not match"):
        submit_ticket(world.url, TOKEN, FILES)
    assert world.stored == {}


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b.txt", ".hidden", "", "x" * 201, "notes.txt\n"])
def test_it_refuses_bad_file_names_before_sending_anything(world, name):
    with pytest.raises(SubmitFailed, match="file name not allowed"):
        submit_ticket(world.url, TOKEN, [(name, b"x", "text/plain")])
    assert world.calls == []


def test_it_refuses_content_types_outside_the_allowed_list(world):
    with pytest.raises(SubmitFailed, match="content type"):
        submit_ticket(world.url, TOKEN, [("page.html", b"<b>", "text/html")])
    assert world.calls == []


def test_it_reports_an_unreachable_portal():
    with pytest.raises(SubmitFailed) as failed:
        submit_ticket("http://127.0.0.1:9", TOKEN, FILES, timeout=2)
    assert failed.value.code == "unreachable"
    assert "could not reach the portal" in str(failed.value)


# --- command line ----------------------------------------------------------------

def test_cli_takes_the_token_from_the_environment(world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(agent.TOKEN_ENV, TOKEN)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "shot.png").write_bytes(b"\x89PNG")

    code = agent.main(["submit", "--portal", world.url,
                       str(tmp_path / "notes.txt"), str(tmp_path / "shot.png")])

    assert code == 0
    assert "ticket 1007 (7) complete: 2 files" in capsys.readouterr().out
    assert [(f["name"], f["content_type"]) for f in world.created["files"]] == [
        ("notes.txt", "text/plain"), ("shot.png", "image/png")]


def test_cli_exits_non_zero_on_refusal_and_never_prints_the_token(world, tmp_path, capsys):
    world.sign_error = (403, {"error": "kill_switch", "message": "all access is suspended"})
    (tmp_path / "a.log").write_text("x")

    code = agent.main(["submit", "--portal", world.url, "--token", TOKEN, str(tmp_path / "a.log")])

    out = capsys.readouterr()
    assert code == 1
    assert "403 kill_switch: all access is suspended" in out.err
    assert TOKEN not in out.out + out.err


def test_cli_without_a_token_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.delenv(agent.TOKEN_ENV, raising=False)
    with pytest.raises(SystemExit) as exited:
        agent.main(["submit", "--portal", "http://127.0.0.1:9", "f.txt"])
    assert exited.value.code == 2
    assert agent.TOKEN_ENV in capsys.readouterr().err


def test_cli_has_no_subject_option(world, tmp_path, capsys):
    # The subject is what the user typed: it belongs in report.json, not at the portal.
    (tmp_path / "a.log").write_text("x")
    with pytest.raises(SystemExit) as exited:
        agent.main(["submit", "--portal", world.url, "--token", TOKEN, "--subject", "s", str(tmp_path / "a.log")])
    assert exited.value.code == 2
    assert "--subject" in capsys.readouterr().err
    assert world.calls == []


def test_cli_demo_submits_count_reports_with_the_marker(world, capsys):
    code = agent.main(["demo", "--portal", world.url, "--token", TOKEN, "--count", "2",
                       "--marker", "MARKER-42", "--extra-logs", "3"])

    assert code == 0
    assert len(world.sign_bodies) == 2
    assert all(len(body["ops"]) == 8 for body in world.sign_bodies)
    assert b"MARKER-42" in world.stored[PREFIX + "application.log"]
    assert set(world.created) == {"files"}
    report = json.loads(world.stored[PREFIX + "report.json"])
    assert "MARKER-42" in report["subject"] and "MARKER-42" in report["message"]
