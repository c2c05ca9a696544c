"""The agent against a tiny fake portal + gatekeeper + storage on loopback.

The fake speaks the real wire formats (portal API, /v1/health, /v1/sign,
presigned POST multipart) so these tests exercise the agent's HTTP code for
real; end-to-end tests against the real portal and gatekeeper live in
test_agent_pin_e2e.py.

The agent is pinned to the fake gatekeeper at /gk ("gk-fake"). The fake portal
can be told to name another one (/evil, which records what it gets), and the
fake gatekeeper to answer with other ids or storage origins.
"""

import hashlib
import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gatekeeper_client import agent
from gatekeeper_client.agent import SubmitFailed
from gatekeeper_client.grants import SigningKey, mint_grant, private_key_from_seed
from gatekeeper_client.pin import Pin, PinError, normalise_url

TOKEN = "agent-token-s3cret"
PREFIX = "tickets/7/"
GATEKEEPER_ID = "gk-fake"
VENDOR_KEY = SigningKey("k1", private_key_from_seed(bytes(range(32))))
FILES = [("report.json", b'{"schema_version": 1}', "application/json"),
         ("screenshot-1.png", b"\x89PNG fake", "image/png")]
# What the agent sends: the files and the summary.json it makes from report.json.
SENT = FILES + [("summary.json", b'{"schema_version":1}', "application/json")]


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
        # What the portal names (None: the pinned gatekeeper) and what it answers.
        self.named_url: str | None = None
        self.named_id = GATEKEEPER_ID
        self.grant_audience = GATEKEEPER_ID
        self.health: dict | None = None       # None: the honest answer
        self.upload_url: str | None = None     # None: the fake storage
        self.storage_redirect: str | None = None
        self.issued_grant = ""

    @property
    def pin(self) -> Pin:
        return Pin.of(self.url + "/gk", GATEKEEPER_ID)

    def grant(self) -> str:
        self.issued_grant = mint_grant(VENDOR_KEY, issuer="https://portal.test", audience=self.grant_audience,
                          subject="agent:1", prefix=PREFIX, ops=["put"])
        return self.issued_grant

    @property
    def gatekeeper_calls(self) -> list[str]:
        return [path for path, _ in self.calls if path.startswith(("/gk/", "/evil/"))]


def _handler(world: FakeWorld):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            world.calls.append((self.path, self.headers.get("Authorization", "")))
            if self.path in ("/gk/v1/health", "/evil/v1/health"):
                return self.answer(200, world.health if world.health is not None else {
                    "status": "ok", "gatekeeper_id": GATEKEEPER_ID, "storage_origin": world.url})
            self.answer(404, {"detail": "Not found."})

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
                        "gatekeeper_url": world.named_url or world.url + "/gk", "gatekeeper_id": world.named_id,
                        "grant": world.grant(), "grant_expires_at": "2030-01-01T00:00:00Z",
                        "files": world.created["files"]})
                return self.answer(200, {"id": 7, "status": "complete"})
            if self.path in ("/gk/v1/sign", "/evil/v1/sign"):
                world.sign_bodies.append(json.loads(body))
                if world.sign_error:
                    return self.answer(*world.sign_error)
                return self.answer(200, {"results": [
                    {"op": "put", "key": op["key"] + ("x" if world.wrong_keys else ""),
                     "method": "POST", "url": world.upload_url or world.url + "/storage",
                     "fields": {"key": op["key"], "Content-Type": op["content_type"], "policy": "p"},
                     "expires_at": "2030-01-01T00:00:00Z"} for op in world.sign_bodies[-1]["ops"]]})
            if self.path == "/storage" and world.storage_redirect:
                self.send_response(307)
                self.send_header("Location", world.storage_redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if self.path in ("/storage", "/elsewhere"):
                message = BytesParser(policy=HTTP).parsebytes(
                    b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
                parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                         for p in message.iter_parts()}
                world.form_orders.append(list(parts))
                if world.storage_status != 204:
                    return self.answer(world.storage_status, {"error": "AccessDenied"})
                world.stored[self.path + ":" + parts["key"].decode() if self.path != "/storage"
                             else parts["key"].decode()] = parts["file"]
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


def submit_ticket(portal_url, token, files, world=None, **kwargs):
    """The agent pinned to the fake gatekeeper of `world` (or to a closed port)."""
    pin = world.pin if world else Pin.of("http://127.0.0.1:9/gk", GATEKEEPER_ID)
    return agent.submit_ticket(portal_url, token, files, pin=pin, **kwargs)


def test_it_submits_manifest_signs_once_uploads_and_completes(world):
    ticket = submit_ticket(world.url, TOKEN, FILES, world)

    assert ticket["status"] == "complete" and ticket["id"] == 7
    assert "grant" not in ticket
    assert set(world.created) == {"files"}  # the manifest only: nothing the user typed
    assert world.created["files"] == [
        {"name": n, "size": len(d), "content_type": t, "sha256": hashlib.sha256(d).hexdigest()}
        for n, d, t in SENT]
    assert world.sign_bodies == [{"ops": [
        {"op": "put", "key": PREFIX + n, "size": len(d), "content_type": t} for n, d, t in SENT]}]
    assert world.stored == {PREFIX + n: d for n, d, _ in SENT}
    assert [path for path, _ in world.calls] == [
        "/api/v1/tickets", "/gk/v1/health", "/gk/v1/sign", "/storage", "/storage", "/storage", "/api/v1/tickets/7/complete"]


def test_it_sends_the_token_only_to_the_portal_and_the_grant_only_to_the_gatekeeper(world):
    submit_ticket(world.url, TOKEN, FILES, world)

    for path, auth in world.calls:
        expected = {"/api": f"Token {TOKEN}", "/gk/": f"Bearer {world.issued_grant}"}.get(path[:4], "")
        if path == "/gk/v1/health":
            expected = ""  # health needs nothing
        assert auth == expected, path


def test_it_posts_the_policy_fields_before_the_file(world):
    submit_ticket(world.url, TOKEN, FILES, world)

    assert all(order[-1] == "file" for order in world.form_orders)


def test_it_reports_a_gatekeeper_refusal_verbatim_and_does_not_complete(world):
    world.sign_error = (403, {"error": "address_denied", "message": "your address is not allowed"})

    with pytest.raises(SubmitFailed) as failed:
        submit_ticket(world.url, TOKEN, FILES, world)

    assert (failed.value.step, failed.value.status, failed.value.code) == ("sign", 403, "address_denied")
    assert failed.value.message == "your address is not allowed"
    assert world.stored == {}
    assert not any(path.endswith("/complete") for path, _ in world.calls)


def test_it_reports_a_portal_refusal(world):
    with pytest.raises(SubmitFailed) as failed:
        submit_ticket(world.url, "wrong-token", FILES, world)

    assert (failed.value.step, failed.value.status) == ("create", 401)
    assert failed.value.message == "Invalid token."
    assert len(world.calls) == 1


def test_it_reports_a_storage_refusal_and_does_not_complete(world):
    world.storage_status = 403

    with pytest.raises(SubmitFailed) as failed:
        submit_ticket(world.url, TOKEN, FILES, world)

    assert (failed.value.step, failed.value.status) == ("upload", 403)
    assert "report.json" in failed.value.message
    assert not any(path.endswith("/complete") for path, _ in world.calls)


def test_it_refuses_results_for_keys_it_did_not_ask_for(world):
    world.wrong_keys = True

    with pytest.raises(SubmitFailed, match="do not match"):
        submit_ticket(world.url, TOKEN, FILES, world)
    assert world.stored == {}


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b.txt", ".hidden", "", "x" * 201, "notes.txt\n"])
def test_it_refuses_bad_file_names_before_sending_anything(world, name):
    with pytest.raises(SubmitFailed, match="file name not allowed"):
        submit_ticket(world.url, TOKEN, [(name, b"x", "text/plain")], world)
    assert world.calls == []


def test_it_refuses_content_types_outside_the_allowed_list(world):
    with pytest.raises(SubmitFailed, match="content type"):
        submit_ticket(world.url, TOKEN, [("page.html", b"<b>", "text/html")], world)
    assert world.calls == []


def test_it_reports_an_unreachable_portal():
    with pytest.raises(SubmitFailed) as failed:
        submit_ticket("http://127.0.0.1:9", TOKEN, FILES, timeout=2)
    assert failed.value.code == "unreachable"
    assert "could not reach the portal" in str(failed.value)


# --- command line ----------------------------------------------------------------

def pin_args(world) -> list[str]:
    return ["--portal", world.url, "--gatekeeper-url", world.url + "/gk", "--gatekeeper-id", GATEKEEPER_ID]


def test_cli_takes_the_token_from_the_environment(world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(agent.TOKEN_ENV, TOKEN)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "shot.png").write_bytes(b"\x89PNG")

    code = agent.main(["submit", *pin_args(world),
                       str(tmp_path / "notes.txt"), str(tmp_path / "shot.png")])

    assert code == 0
    assert "ticket 1007 (7) complete: 2 files" in capsys.readouterr().out
    assert [(f["name"], f["content_type"]) for f in world.created["files"]] == [
        ("notes.txt", "text/plain"), ("shot.png", "image/png")]


def test_cli_exits_non_zero_on_refusal_and_never_prints_the_token(world, tmp_path, capsys):
    world.sign_error = (403, {"error": "kill_switch", "message": "all access is suspended"})
    (tmp_path / "a.log").write_text("x")

    code = agent.main(["submit", *pin_args(world), "--token", TOKEN, str(tmp_path / "a.log")])

    out = capsys.readouterr()
    assert code == 1
    assert "403 kill_switch: all access is suspended" in out.err
    assert TOKEN not in out.out + out.err


def test_cli_without_a_token_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.delenv(agent.TOKEN_ENV, raising=False)
    with pytest.raises(SystemExit) as exited:
        agent.main(["submit", "--portal", "http://127.0.0.1:9", "--gatekeeper-url", "http://127.0.0.1:9",
                    "--gatekeeper-id", GATEKEEPER_ID, "f.txt"])
    assert exited.value.code == 2
    assert agent.TOKEN_ENV in capsys.readouterr().err


def test_cli_has_no_subject_option(world, tmp_path, capsys):
    # The subject is what the user typed: it belongs in report.json, not at the portal.
    (tmp_path / "a.log").write_text("x")
    with pytest.raises(SystemExit) as exited:
        agent.main(["submit", *pin_args(world), "--token", TOKEN, "--subject", "s", str(tmp_path / "a.log")])
    assert exited.value.code == 2
    assert "--subject" in capsys.readouterr().err
    assert world.calls == []


def test_cli_demo_submits_count_reports_with_the_marker(world, capsys):
    code = agent.main(["demo", *pin_args(world), "--token", TOKEN, "--count", "2",
                       "--marker", "MARKER-42", "--extra-logs", "3"])

    assert code == 0
    assert len(world.sign_bodies) == 2
    assert all(len(body["ops"]) == 9 for body in world.sign_bodies)  # 5 + 3 logs + summary.json
    assert b"MARKER-42" in world.stored[PREFIX + "application.log"]
    assert set(world.created) == {"files"}
    report = json.loads(world.stored[PREFIX + "report.json"])
    assert "MARKER-42" in report["subject"] and "MARKER-42" in report["message"]


# --- the pin: uploads go only through the gatekeeper the customer configured --------------

def assert_nothing_sent_past_the_portal(world):
    assert world.gatekeeper_calls == [] and world.sign_bodies == []
    assert world.stored == {}
    assert not any(path.endswith("/complete") for path, _ in world.calls)


def test_it_refuses_a_portal_that_names_another_gatekeeper_and_calls_none(world):
    world.named_url = world.url + "/evil"

    with pytest.raises(SubmitFailed) as failed:
        submit_ticket(world.url, TOKEN, FILES, world)

    assert (failed.value.step, failed.value.code) == ("pin", "wrong_gatekeeper")
    assert f"names gatekeeper {world.url}/evil" in failed.value.message
    assert f"not the pinned {world.url}/gk (id {GATEKEEPER_ID})" in failed.value.message
    assert_nothing_sent_past_the_portal(world)
    assert world.issued_grant not in str(failed.value)


@pytest.mark.parametrize("named_id, audience", [("gk-evil", GATEKEEPER_ID), (GATEKEEPER_ID, "gk-evil")])
def test_it_refuses_another_gatekeeper_id_in_the_answer_or_in_the_grant(world, named_id, audience):
    world.named_id, world.grant_audience = named_id, audience

    with pytest.raises(SubmitFailed) as failed:
        submit_ticket(world.url, TOKEN, FILES, world)

    assert (failed.value.step, failed.value.code) == ("pin", "wrong_gatekeeper")
    assert "gk-evil" in failed.value.message
    assert_nothing_sent_past_the_portal(world)


@pytest.mark.parametrize("spelling", ["{url}/gk/", "HTTP://127.0.0.1:{port}/gk", "http://127.0.0.1:{port}/gk//"])
def test_another_spelling_of_the_pinned_url_is_the_same_gatekeeper(world, spelling):
    world.named_url = spelling.format(url=world.url, port=world.url.rsplit(":", 1)[1])

    assert submit_ticket(world.url, TOKEN, FILES, world)["status"] == "complete"
    assert world.stored == {PREFIX + n: d for n, d, _ in SENT}


@pytest.mark.parametrize("named", ["{url}/gk/x", "{url}/GK", "http://localhost:{port}/gk",
                                   "{url}/gk?x=1", "http://user@127.0.0.1:{port}/gk", 42])
def test_near_misses_of_the_pinned_url_are_another_gatekeeper(world, named):
    world.named_url = named.format(url=world.url, port=world.url.rsplit(":", 1)[1]) if named != 42 else named

    with pytest.raises(SubmitFailed) as failed:
        submit_ticket(world.url, TOKEN, FILES, world)

    assert (failed.value.step, failed.value.code) == ("pin", "wrong_gatekeeper")
    assert_nothing_sent_past_the_portal(world)


def test_it_refuses_a_pinned_gatekeeper_that_says_it_is_another(world):
    world.health = {"status": "ok", "gatekeeper_id": "gk-other", "storage_origin": world.url}

    with pytest.raises(SubmitFailed) as failed:
        submit_ticket(world.url, TOKEN, FILES, world)

    assert (failed.value.step, failed.value.code) == ("pin", "wrong_gatekeeper")
    assert "says it is gk-other" in failed.value.message
    assert world.sign_bodies == [] and world.stored == {}


def test_it_uploads_nothing_when_the_gatekeeper_says_its_bucket_is_unreachable(world):
    world.health = {"status": "degraded", "gatekeeper_id": GATEKEEPER_ID, "storage_origin": world.url,
                    "storage": "unreachable", "storage_problem": "no_such_bucket"}

    with pytest.raises(SubmitFailed) as failed:
        submit_ticket(world.url, TOKEN, FILES, world)

    assert (failed.value.step, failed.value.code) == ("health", "storage_unreachable")
    assert "cannot reach its bucket (no_such_bucket)" in failed.value.message
    assert world.sign_bodies == [] and world.stored == {}


@pytest.mark.parametrize("health, message", [
    ({"status": "ok", "gatekeeper_id": GATEKEEPER_ID}, "does not report its storage_origin"),
    ({"status": "ok", "gatekeeper_id": GATEKEEPER_ID, "storage_origin": "http://s3.example.com"}, "must use https"),
    ({"status": "ok", "gatekeeper_id": GATEKEEPER_ID, "storage_origin": "https://s3.example.com/b"}, "without a path"),
])
def test_it_refuses_a_storage_origin_it_cannot_pin_uploads_to(world, health, message):
    world.health = health

    with pytest.raises(SubmitFailed) as failed:
        submit_ticket(world.url, TOKEN, FILES, world)

    assert (failed.value.step, failed.value.code) == ("pin", "wrong_storage")
    assert message in failed.value.message
    assert world.sign_bodies == [] and world.stored == {}


@pytest.mark.parametrize("upload_url", ["http://localhost:{port}/storage", "{url}.evil.example/storage",
                                        "https://127.0.0.1:{port}/storage", "{url}:1/storage", "ftp://x/y"])
def test_it_refuses_upload_urls_off_the_storage_origin_and_uploads_nothing(world, upload_url):
    world.upload_url = upload_url.format(url=world.url, port=world.url.rsplit(":", 1)[1])

    with pytest.raises(SubmitFailed) as failed:
        submit_ticket(world.url, TOKEN, FILES, world)

    assert (failed.value.step, failed.value.code) == ("pin", "wrong_storage")
    assert "report.json" in failed.value.message
    assert world.stored == {} and world.form_orders == []
    assert not any(path.endswith("/complete") for path, _ in world.calls)


def test_a_path_on_the_storage_origin_is_fine(world):
    # Path-style S3 and S3-compatible stores put the bucket in the path.
    world.upload_url = world.url + "/elsewhere"

    assert submit_ticket(world.url, TOKEN, FILES, world)["status"] == "complete"
    assert world.stored == {f"/elsewhere:{PREFIX}{n}": d for n, d, _ in SENT}


def test_it_does_not_follow_a_redirect_from_storage(world):
    world.storage_redirect = "http://localhost:" + world.url.rsplit(":", 1)[1] + "/elsewhere"

    with pytest.raises(SubmitFailed) as failed:
        submit_ticket(world.url, TOKEN, FILES, world)

    assert (failed.value.step, failed.value.status) == ("upload", 307)
    assert world.stored == {}


@pytest.mark.parametrize("url, message", [
    ("http://gk.example.com", "must use https"),
    ("http://10.0.0.1:8700", "must use https"),
    ("http://[::2]:8700", "must use https"),
    ("gk.example.com", "must be a URL"),
    ("https://gk.example.com?x", "query"),
    ("https://u:p@gk.example.com", "user info"),
    ("https://gk.example.com:99999", "invalid port"),
    ("https://gk.example.com/\n", "must be a URL"),
])
def test_a_pin_needs_https_except_on_loopback(url, message):
    with pytest.raises(PinError, match=message):
        Pin.of(url, GATEKEEPER_ID)


@pytest.mark.parametrize("url, normal", [
    ("http://127.0.0.1:8700/", "http://127.0.0.1:8700"),
    ("http://127.9.9.9", "http://127.9.9.9"),
    ("http://[::1]:80/gk/", "http://[::1]/gk"),
    ("http://LOCALHOST:8700", "http://localhost:8700"),
    ("HTTPS://GK.Example.com:443/Dual/", "https://gk.example.com/Dual"),
])
def test_loopback_may_be_plain_http_and_urls_are_normalised(url, normal):
    assert normalise_url(url, what="x") == normal


@pytest.mark.parametrize("bad_id", ["", "gk acme", "x" * 65, "gk/../x"])
def test_a_pin_needs_a_well_formed_gatekeeper_id(bad_id):
    with pytest.raises(PinError, match="gatekeeper_id"):
        Pin.of("https://gk.example.com", bad_id)


# --- the agent's own configuration ------------------------------------------------------

def write_config(tmp_path, world, **extra) -> str:
    lines = {"portal_url": world.url, "gatekeeper_url": world.url + "/gk", "gatekeeper_id": GATEKEEPER_ID,
             **extra}
    path = tmp_path / "agent.toml"
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in lines.items()))
    return str(path)


def test_cli_reads_portal_pin_and_token_file_from_its_configuration_file(world, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(agent.TOKEN_ENV, raising=False)
    (tmp_path / "token").write_text(TOKEN + "\n")
    config = write_config(tmp_path, world, token_file="token")  # relative to the file
    (tmp_path / "a.log").write_text("x")

    code = agent.main(["submit", "--config", config, str(tmp_path / "a.log")])

    out = capsys.readouterr()
    assert code == 0, out.err
    assert "complete: 1 files" in out.out and TOKEN not in out.out + out.err
    assert [p for p, _ in world.calls][:3] == ["/api/v1/tickets", "/gk/v1/health", "/gk/v1/sign"]


def test_cli_takes_the_configuration_file_from_the_environment(world, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(agent.CONFIG_ENV, write_config(tmp_path, world, token=TOKEN))
    (tmp_path / "a.log").write_text("x")

    assert agent.main(["submit", str(tmp_path / "a.log")]) == 0
    assert world.stored == {PREFIX + "a.log": b"x"}


def test_cli_exits_non_zero_naming_the_other_gatekeeper_and_uploads_nothing(world, tmp_path, capsys):
    world.named_url = world.url + "/evil"
    (tmp_path / "a.log").write_text("x")

    code = agent.main(["submit", "--config", write_config(tmp_path, world, token=TOKEN), str(tmp_path / "a.log")])

    err = capsys.readouterr().err
    assert code == 1
    assert "error: pin: wrong_gatekeeper: the portal names gatekeeper" in err
    assert TOKEN not in err and world.issued_grant not in err
    assert_nothing_sent_past_the_portal(world)


@pytest.mark.parametrize("missing", ["portal_url", "gatekeeper_url", "gatekeeper_id"])
def test_cli_without_a_pin_or_portal_is_a_usage_error_naming_it(world, tmp_path, capsys, missing, monkeypatch):
    for name in agent.CONFIG_KEYS.values():
        monkeypatch.delenv(name, raising=False)
    config = write_config(tmp_path, world, token=TOKEN)
    lines = [line for line in open(config) if not line.startswith(missing + " ")]
    open(config, "w").writelines(lines)

    with pytest.raises(SystemExit) as exited:
        agent.main(["submit", "--config", config, "f.txt"])

    assert exited.value.code == 2
    assert f"no {missing}" in capsys.readouterr().err
    assert world.calls == []


@pytest.mark.parametrize("text, message", [
    ('gatekeeper_ur1 = "https://gk.example.com"\n', "unknown keys ['gatekeeper_ur1']"),
    ("gatekeeper_id = 7\n", "gatekeeper_id must be a string"),
    ("gatekeeper_id = \n", "not valid TOML"),
    ('token = "a"\ntoken_file = "b"\n', "not both"),
])
def test_a_bad_configuration_file_is_refused_naming_the_key(tmp_path, text, message):
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(agent.ConfigError) as refused:
        agent.load_config(path, env={})
    assert message in str(refused.value)


def test_flags_beat_the_environment_which_beats_the_file(world, tmp_path):
    config = write_config(tmp_path, world, token="from-file")
    env = {"DUALKEY_AGENT_GATEKEEPER_ID": "gk-env", agent.TOKEN_ENV: "from-env"}

    loaded = agent.load_config(config, env=env, gatekeeper_url="https://gk.flag.example")

    assert (loaded.pin.url, loaded.pin.id, loaded.token) == ("https://gk.flag.example", "gk-env", "from-env")
    assert loaded.portal_url == world.url
    assert "from-env" not in repr(loaded)


def test_a_plain_http_pin_off_loopback_is_refused_at_start(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        agent.main(["submit", "--portal", "https://portal.example", "--token", TOKEN,
                    "--gatekeeper-url", "http://gk.example.com", "--gatekeeper-id", GATEKEEPER_ID, "f.txt"])
    assert exited.value.code == 2
    assert "must use https" in capsys.readouterr().err


def test_an_unreadable_token_file_is_a_clear_error(world, tmp_path):
    with pytest.raises(agent.ConfigError, match="cannot read the token file"):
        agent.load_config(write_config(tmp_path, world, token_file="absent"), env={})



# --- summary.json (protocol 2's ticket list) ------------------------------------------

def test_the_summary_holds_what_the_list_shows_of_report_json():
    report = {"schema_version": 1, "subject": "Printer on fire " * 20, "message": "not in the summary",
              "user": {"name": "Dana", "email": "dana@example.com", "department": "not in it"},
              "machine": {"hostname": "WS-042", "os": "Windows 11", "os_version": "23H2"},
              "submitted_at": "2026-01-01T10:00:00Z", "processes": [{"pid": 1, "name": "x"}]}
    summary = json.loads(agent.summary_of(report))
    assert summary == {"schema_version": 1, "subject": ("Printer on fire " * 20)[:200],
                       "requester": {"name": "Dana", "email": "dana@example.com"},
                       "machine": {"hostname": "WS-042", "os": "Windows 11"},
                       "submitted_at": "2026-01-01T10:00:00Z"}


def test_no_summary_is_made_from_a_report_that_is_not_a_json_object_or_when_one_is_given():
    for report in (b"not json", b"[1, 2]", b"\xff\xfe"):
        files = [("report.json", report, "application/json")]
        assert agent.with_summary(files) == files
    given = FILES + [("summary.json", b'{"schema_version": 1, "subject": "mine"}', "application/json")]
    assert agent.with_summary(given) == given
    assert agent.with_summary([("a.log", b"x", "text/plain")]) == [("a.log", b"x", "text/plain")]


# --- the command line: the schema check, the link, --help ---------------------------------

VALID_REPORT = {"schema_version": 1, "submitted_at": "2026-01-01T10:00:00Z", "subject": "Printer on fire",
                "user": {"name": "Dana"}, "message": "It burns.",
                "machine": {"hostname": "WS-1", "os": "Windows", "os_version": "11"}}


def test_cli_checks_report_json_against_the_schema_before_sending_anything(world, tmp_path, capsys):
    bad = {**VALID_REPORT, "machine": {"os": "Windows", "os_version": "11"}, "colour": "red"}
    (tmp_path / "report.json").write_text(json.dumps(bad))
    code = agent.main(["submit", *pin_args(world), "--token", TOKEN, str(tmp_path / "report.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert "report.json does not match the report schema" in err and "nothing was sent" in err
    assert "report.json at machine: 'hostname' is a required property" in err
    assert "'colour' was unexpected" in err
    assert world.calls == []


@pytest.mark.parametrize("data,reason", [(b"{not json", "not valid JSON"), (b"\xff\xfe", "not UTF-8")])
def test_cli_says_when_report_json_is_not_json(world, tmp_path, capsys, data, reason):
    (tmp_path / "report.json").write_bytes(data)
    assert agent.main(["submit", *pin_args(world), "--token", TOKEN, str(tmp_path / "report.json")]) == 2
    assert reason in capsys.readouterr().err
    assert world.calls == []


def test_cli_prints_the_tickets_link_when_done(world, tmp_path, capsys):
    (tmp_path / "report.json").write_text(json.dumps(VALID_REPORT))
    assert agent.main(["submit", *pin_args(world), "--token", TOKEN, str(tmp_path / "report.json")]) == 0
    out = capsys.readouterr().out
    assert "ticket 1007 (7) complete: 2 files" in out  # report.json and the summary.json made from it
    assert f"  {world.url}/tickets/7/\n" in out


def test_cli_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exited:
        agent.main(["submit", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "python -m gatekeeper_client.agent submit" in out and "Exit status" in out


def test_the_agents_schema_is_the_published_one():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs" / "report.schema.json"
    assert agent.SCHEMA_PATH.read_text() == docs.read_text()
