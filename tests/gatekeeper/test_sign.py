"""POST /v1/sign over real HTTP: every status, each refusal in its own test and
each refusal audited."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import time
from urllib.parse import urlsplit

import jwt
import pytest
import requests

from gatekeeper_client.client import download, upload
from gatekeeper_client.grants import b64url, mint_grant

from .conftest import FORGED_KEY, GATEKEEPER_ID, ISSUER, ORIGIN, UNKNOWN_KEY, VENDOR_KEY


def sign(gk, grant, ops, headers=None, raw=None):
    headers = {"Authorization": f"Bearer {grant}", **(headers or {})}
    if raw is not None:
        return requests.post(gk.url + "/v1/sign", data=raw, headers=headers, timeout=10)
    return requests.post(gk.url + "/v1/sign", json={"ops": ops}, headers=headers, timeout=10)


def assert_refused(gk, response, status, code, op="request", client_ip="127.0.0.1"):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert body["message"]
    assert response.headers["Cache-Control"] == "no-store"
    rows = gk.audit_rows(response.headers["X-Request-Id"])
    assert rows, "the refusal was not audited"
    assert {r["outcome"] for r in rows} == {"deny"}
    assert {r["reason"] for r in rows} == {code}
    assert {r["status"] for r in rows} == {status}
    assert rows[0]["op"] == op
    assert rows[0]["client_ip"] == client_ip
    return rows


GET_42 = [{"op": "get", "key": "tickets/42/report.json"}]


# --- 200 ------------------------------------------------------------------------

def test_it_round_trips_put_list_get_with_matching_bytes(gatekeeper):
    data = b'{"message": "printer on fire"}' + bytes(range(256))
    put_grant = gatekeeper.grant(ops=["put"])
    [put] = gatekeeper.client.sign(put_grant, [
        {"op": "put", "key": "tickets/42/report.json", "size": len(data), "content_type": "application/json"}])
    assert put["method"] == "POST" and put["fields"]["key"] == "tickets/42/report.json"
    upload(put, data)

    read_grant = gatekeeper.grant(ops=["get", "list"])
    listing, got = gatekeeper.client.sign(read_grant, [
        {"op": "list", "prefix": "tickets/42/"}, {"op": "get", "key": "tickets/42/report.json"}])
    assert [o["key"] for o in listing["objects"]] == ["tickets/42/report.json"]
    assert listing["objects"][0]["size"] == len(data)
    assert listing["objects"][0]["etag"] == hashlib.md5(data).hexdigest()
    assert listing["truncated"] is False
    assert got["method"] == "GET" and got["expires_at"] > time.time()
    assert "response-content-disposition=attachment&" in got["url"]  # opened directly: downloads
    assert download(got) == data


def test_it_audits_each_allowed_op_with_the_grant_subject(gatekeeper):
    grant = gatekeeper.grant(ops=["get", "list"], subject="user:99", jti="jti-audit-1")
    response = sign(gatekeeper, grant, [{"op": "list", "prefix": "tickets/42/"}] + GET_42,
                    headers={"User-Agent": "pytest-agent", "Origin": ORIGIN})
    assert response.status_code == 200
    rows = gatekeeper.audit_rows(response.headers["X-Request-Id"])
    assert [(r["op"], r["key"], r["outcome"], r["status"]) for r in rows] == [
        ("list", "tickets/42/", "allow", 200), ("get", "tickets/42/report.json", "allow", 200)]
    assert {r["sub"] for r in rows} == {"user:99"}
    assert {r["name"] for r in rows} == {"Bob Staff"}
    assert {r["jti"] for r in rows} == {"jti-audit-1"}
    assert {r["kid"] for r in rows} == {"k1"}
    assert rows[0]["user_agent"] == "pytest-agent"
    assert rows[0]["origin"] == ORIGIN


def test_it_deletes_with_a_delete_grant(gatekeeper, s3):
    s3.put_object(Bucket=gatekeeper.bucket, Key="tickets/43/old.log", Body=b"x")
    [result] = gatekeeper.client.sign(gatekeeper.grant("tickets/43/", ["delete"]),
                                      [{"op": "delete", "key": "tickets/43/old.log"}])
    assert (result["op"], result["key"], result["deleted"]) == ("delete", "tickets/43/old.log", True)
    assert [o["key"] for o in result["objects"]] == ["tickets/43/old.log"]  # every version: test_erase.py
    assert s3.list_objects_v2(Bucket=gatekeeper.bucket, Prefix="tickets/43/").get("KeyCount") == 0


def test_put_policy_fixes_key_type_size_and_encryption(gatekeeper):
    [put] = gatekeeper.client.sign(gatekeeper.grant(ops=["put"]), [
        {"op": "put", "key": "tickets/42/shot.png", "size": 1234, "content_type": "image/png"}])
    policy = json.loads(__import__("base64").b64decode(put["fields"]["policy"]))
    conditions = policy["conditions"]
    assert ["eq", "$key", "tickets/42/shot.png"] in conditions
    assert ["eq", "$Content-Type", "image/png"] in conditions
    assert ["content-length-range", 1234, 1234] in conditions
    assert {"x-amz-server-side-encryption": "AES256"} in conditions
    assert put["fields"]["x-amz-server-side-encryption"] == "AES256"


# --- 400 ------------------------------------------------------------------------

def test_it_refuses_malformed_json(gatekeeper):
    response = sign(gatekeeper, gatekeeper.grant(), None, raw=b"{not json")
    assert_refused(gatekeeper, response, 400, "malformed_json")


@pytest.mark.parametrize("raw", [
    b'{"ops": [{"op": "get", "key": "tickets/42/a", "key": "tickets/43/a"}]}',
    b'{"ops": [], "ops": [{"op": "get", "key": "tickets/42/a"}]}',
])
def test_it_refuses_a_key_given_twice(gatekeeper, raw):
    # Parsers disagree on which of two equal names counts: the vendor's and ours must not.
    response = sign(gatekeeper, gatekeeper.grant(), None, raw=raw)
    assert_refused(gatekeeper, response, 400, "malformed_json")


def test_it_refuses_an_unknown_op(gatekeeper):
    response = sign(gatekeeper, gatekeeper.grant(), [{"op": "copy", "key": "tickets/42/a"}])
    assert_refused(gatekeeper, response, 400, "unknown_op")


def test_it_refuses_an_empty_batch(gatekeeper):
    assert_refused(gatekeeper, sign(gatekeeper, gatekeeper.grant(), []), 400, "empty_batch")


def test_it_refuses_a_batch_over_100_ops(gatekeeper):
    ops = [{"op": "get", "key": f"tickets/42/f{i}"} for i in range(101)]
    assert_refused(gatekeeper, sign(gatekeeper, gatekeeper.grant(), ops), 400, "batch_too_large")


def test_it_refuses_a_body_over_64_kib(gatekeeper):
    raw = json.dumps({"ops": GET_42, "pad": "x" * 65536}).encode()
    assert_refused(gatekeeper, sign(gatekeeper, gatekeeper.grant(), None, raw=raw), 400, "body_too_large")


@pytest.mark.parametrize("key", [
    "", "tickets/42/../43/x", "tickets/42/./x", "tickets/42//x", "/tickets/42/x",
    "tickets\\42\\x", "tickets/42/a\x00b", "tickets/42/a\nb", "tickets/42/a\x7fb",
    "tickets/42/" + "a" * 1020, "tickets/42/\ud800", "tickets/42/",
    # Shown as something else in the audit log: bidi override, BOM, zero-width
    # space, line and paragraph separators, NEL (C1).
    "tickets/42/gpj.\u202eexe", "tickets/42/\ufeffa", "tickets/42/a\u200bb",
    "tickets/42/a\u2028b", "tickets/42/a\u2029b", "tickets/42/a\x85b",
    # S3 substitutes ${filename} in a POST's key field: the key signed is not the one stored.
    "tickets/42/${filename}", "tickets/42/a${b",
])
def test_it_refuses_bad_keys(gatekeeper, key):
    response = sign(gatekeeper, gatekeeper.grant(), None,
                    raw=json.dumps({"ops": [{"op": "get", "key": key}]}).encode())
    assert_refused(gatekeeper, response, 400, "bad_key")


def test_other_unicode_keys_are_taken(gatekeeper):
    keys = ["tickets/42/r\u00e9sum\u00e9.txt", "tickets/42/\u753b\u50cf\u3000\u4e00.png",
            "tickets/42/a\u00a0b", "tickets/42/\U0001f525.log"]
    results = gatekeeper.client.sign(gatekeeper.grant(), [{"op": "get", "key": k} for k in keys])
    assert [r["key"] for r in results] == keys


def test_a_list_prefix_need_not_end_with_a_slash(gatekeeper, s3):
    for key in ("tickets/42/scr-1.png", "tickets/42/scr-2.png", "tickets/42/report.json"):
        s3.put_object(Bucket=gatekeeper.bucket, Key=key, Body=b"x")
    [listing] = gatekeeper.client.sign(gatekeeper.grant(), [{"op": "list", "prefix": "tickets/42/scr"}])
    assert [o["key"] for o in listing["objects"]] == ["tickets/42/scr-1.png", "tickets/42/scr-2.png"]
    [whole] = gatekeeper.client.sign(gatekeeper.grant(), [{"op": "list", "prefix": "tickets/42/"}])
    assert len(whole["objects"]) >= 3
    # Still the key rules, and still under the grant's prefix.
    response = sign(gatekeeper, gatekeeper.grant(), [{"op": "list", "prefix": "tickets/42//"}])
    assert_refused(gatekeeper, response, 400, "bad_key")
    response = sign(gatekeeper, gatekeeper.grant(), [{"op": "list", "prefix": "tickets/42"}])
    assert_refused(gatekeeper, response, 403, "out_of_scope", op="list")


def test_it_takes_keys_literally_without_decoding(gatekeeper):
    # %2e%2e is not "..": it is the literal five characters, a legal key segment.
    [result] = gatekeeper.client.sign(gatekeeper.grant(), [{"op": "get", "key": "tickets/42/%2e%2e/x"}])
    assert result["key"] == "tickets/42/%2e%2e/x"
    assert "/tickets/42/%252e%252e/x?" in result["url"]


def test_it_refuses_a_put_without_size(gatekeeper):
    response = sign(gatekeeper, gatekeeper.grant(ops=["put"]),
                    [{"op": "put", "key": "tickets/42/a", "content_type": "text/plain"}])
    assert_refused(gatekeeper, response, 400, "bad_op")


# --- 401 ------------------------------------------------------------------------

def test_it_refuses_a_missing_grant(gatekeeper):
    response = requests.post(gatekeeper.url + "/v1/sign", json={"ops": GET_42}, timeout=10)
    assert_refused(gatekeeper, response, 401, "missing_grant")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_it_refuses_a_malformed_grant(gatekeeper):
    assert_refused(gatekeeper, sign(gatekeeper, "not.a.jwt", GET_42), 401, "malformed_grant")


def test_it_refuses_a_wrongly_signed_grant(gatekeeper):
    grant = gatekeeper.grant(key=FORGED_KEY, subject="user:forged", jti="jti-forged")
    rows = assert_refused(gatekeeper, sign(gatekeeper, grant, GET_42), 401, "bad_signature")
    # The kid is what the client claimed; the claims of an unverified grant are not recorded.
    assert [(r["kid"], r["sub"], r["jti"], r["name"]) for r in rows] == [("k1", "", "", "")]


def test_it_refuses_a_tampered_grant(gatekeeper):
    header, payload, signature = gatekeeper.grant(prefix="tickets/42/").split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["scope"]["prefix"] = "tickets/"
    forged = ".".join([header, b64url(json.dumps(claims).encode()), signature])
    assert_refused(gatekeeper, sign(gatekeeper, forged, GET_42), 401, "bad_signature")


def test_it_refuses_an_unknown_kid(gatekeeper):
    rows = assert_refused(gatekeeper, sign(gatekeeper, gatekeeper.grant(key=UNKNOWN_KEY), GET_42),
                          401, "unknown_kid")
    assert [(r["kid"], r["sub"], r["jti"]) for r in rows] == [("k9", "", "")]


def test_it_refuses_an_expired_grant(gatekeeper):
    grant = gatekeeper.grant(now=time.time() - 200, lifetime=60, subject="user:late", jti="jti-late")
    rows = assert_refused(gatekeeper, sign(gatekeeper, grant, GET_42), 401, "expired")
    # The signature verified: the refusal names who it was.
    assert [(r["kid"], r["sub"], r["jti"], r["name"]) for r in rows] == [
        ("k1", "user:late", "jti-late", "Bob Staff")]


def test_it_refuses_a_grant_not_yet_valid(gatekeeper):
    grant = gatekeeper.grant(now=time.time() + 120, lifetime=60)
    assert_refused(gatekeeper, sign(gatekeeper, grant, GET_42), 401, "not_yet_valid")


def test_it_refuses_a_grant_living_longer_than_the_maximum(gatekeeper):
    grant = gatekeeper.grant(lifetime=301)
    assert_refused(gatekeeper, sign(gatekeeper, grant, GET_42), 401, "too_long_lived")


def test_it_refuses_a_grant_for_another_gatekeeper(gatekeeper):
    grant = gatekeeper.grant(audience="gk-other-tenant", subject="user:elsewhere")
    rows = assert_refused(gatekeeper, sign(gatekeeper, grant, GET_42), 401, "wrong_audience")
    assert rows[0]["sub"] == "user:elsewhere"


def test_it_refuses_a_grant_from_another_issuer(gatekeeper):
    grant = gatekeeper.grant(issuer="https://evil.example")
    assert_refused(gatekeeper, sign(gatekeeper, grant, GET_42), 401, "wrong_issuer")


def _unsigned(alg: str, claims: dict, key: bytes | None = None) -> str:
    header = b64url(json.dumps({"alg": alg, "kid": "k1", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    if alg == "HS256":
        import hashlib as h
        import hmac
        return f"{header}.{payload}." + b64url(hmac.new(key, signing_input, h.sha256).digest())
    return f"{header}.{payload}."


def _claims():
    now = int(time.time())
    return {"iss": ISSUER, "aud": "gk-test", "sub": "user:1", "iat": now, "exp": now + 60,
            "jti": "x", "scope": {"prefix": "tickets/42/", "ops": ["get"]}}


def test_unverified_text_reaches_the_log_escaped(gatekeeper):
    # A forged header's kid, the user agent and the origin are anyone's text: a line
    # break, a bidi override or a C1 control (U+0085 NEL, U+009B CSI) must not make
    # the log show something else. Header bytes are Latin-1 in WSGI: 0x85 is U+0085.
    header = b64url(json.dumps({"alg": "EdDSA", "kid": "k\n1\u202e", "typ": "JWT"}).encode())
    grant = f"{header}.{b64url(json.dumps(_claims()).encode())}.{b64url(bytes(64))}"
    url = urlsplit(gatekeeper.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        connection.putrequest("POST", "/v1/sign", skip_accept_encoding=True)
        for name, value in [("Authorization", f"Bearer {grant}".encode()), ("User-Agent", b"agent\x85\x9b[2J"),
                            ("Origin", b"https://x\xe2\x80\xae"), ("Content-Length", b"2")]:
            connection.putheader(name, value)
        connection.endheaders(b"{}")
        request_id = connection.getresponse().getheader("X-Request-Id")
    finally:
        connection.close()
    [row] = gatekeeper.audit_rows(request_id)
    assert (row["reason"], row["kid"], row["user_agent"], row["origin"]) == (
        "unknown_kid", "k\\u000a1\\u202e", "agent\\u0085\\u009b[2J", "https://x\u00e2\\u0080\u00ae")


def test_it_refuses_alg_none(gatekeeper):
    rows = assert_refused(gatekeeper, sign(gatekeeper, _unsigned("none", _claims()), GET_42),
                          401, "algorithm_refused")
    assert [(r["kid"], r["sub"], r["jti"]) for r in rows] == [("k1", "", "")]


def test_it_refuses_hmac_signed_with_the_public_key(gatekeeper):
    # The classic algorithm confusion: HS256 keyed with the (public) vendor key.
    token = _unsigned("HS256", _claims(), key=VENDOR_KEY.public_b64.encode())
    assert_refused(gatekeeper, sign(gatekeeper, token, GET_42), 401, "algorithm_refused")


def test_it_refuses_a_grant_with_a_list_audience(gatekeeper):
    grant = gatekeeper.grant(audience=["gk-test", "gk-other"])
    assert_refused(gatekeeper, sign(gatekeeper, grant, GET_42), 401, "wrong_audience")


# --- 403 ------------------------------------------------------------------------

def test_it_refuses_a_key_outside_the_prefix_and_signs_nothing(gatekeeper):
    ops = GET_42 + [{"op": "get", "key": "tickets/420/report.json"}]
    response = sign(gatekeeper, gatekeeper.grant(prefix="tickets/42/"), ops)
    rows = assert_refused(gatekeeper, response, 403, "out_of_scope", op="get")
    assert "url" not in response.text
    assert [r["key"] for r in rows] == ["tickets/42/report.json", "tickets/420/report.json"]


def test_it_refuses_a_list_prefix_outside_the_grant(gatekeeper):
    response = sign(gatekeeper, gatekeeper.grant(prefix="tickets/42/"), [{"op": "list", "prefix": "tickets/"}])
    assert_refused(gatekeeper, response, 403, "out_of_scope", op="list")


def test_it_refuses_an_op_the_grant_does_not_carry(gatekeeper):
    response = sign(gatekeeper, gatekeeper.grant(ops=["get"]), [{"op": "delete", "key": "tickets/42/a"}])
    assert_refused(gatekeeper, response, 403, "op_not_granted", op="delete")


def test_it_refuses_a_put_grant_used_twice(gatekeeper):
    grant = gatekeeper.grant(ops=["put"])
    ops = [{"op": "put", "key": "tickets/42/a.txt", "size": 3, "content_type": "text/plain"}]
    assert sign(gatekeeper, grant, ops).status_code == 200
    assert_refused(gatekeeper, sign(gatekeeper, grant, ops), 403, "grant_reused", op="put")


def test_it_refuses_a_delete_grant_used_twice(gatekeeper):
    grant = gatekeeper.grant(ops=["delete"])
    ops = [{"op": "delete", "key": "tickets/42/nothing"}]
    assert sign(gatekeeper, grant, ops).status_code == 200
    assert_refused(gatekeeper, sign(gatekeeper, grant, ops), 403, "grant_reused", op="delete")


def test_read_grants_are_reusable_until_they_expire(gatekeeper):
    grant = gatekeeper.grant(ops=["get"])
    assert sign(gatekeeper, grant, GET_42).status_code == 200
    assert sign(gatekeeper, grant, GET_42).status_code == 200


# --- 413 ------------------------------------------------------------------------

def test_it_refuses_a_put_over_the_size_limit(gatekeeper):
    ops = [{"op": "put", "key": "tickets/42/big.bin", "size": 1024 * 1024 + 1,
            "content_type": "application/octet-stream"}]
    assert_refused(gatekeeper, sign(gatekeeper, gatekeeper.grant(ops=["put"]), ops), 413, "too_large", op="put")


# --- routing ----------------------------------------------------------------------

def test_it_answers_404_and_405_as_json(gatekeeper):
    assert requests.get(gatekeeper.url + "/v1/nothing", timeout=5).json()["error"] == "not_found"
    response = requests.get(gatekeeper.url + "/v1/sign", timeout=5)
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/v1/%73ign", "/%761/sign", "/v1/audit%2Fsearch", "/v1/sign%2F",
                                  "/v1/sign/", "//v1/sign", "http://x/v1/sign"])
def test_only_the_canonical_path_is_routed(gatekeeper, path):
    # Waitress decodes PATH_INFO: /v1/%73ign would be /v1/sign. A proxy's path rules and
    # the gatekeeper must not disagree on which endpoint a request is for.
    url = urlsplit(gatekeeper.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        connection.request("POST", path, body=json.dumps({"ops": GET_42}),
                           headers={"Authorization": f"Bearer {gatekeeper.grant()}"})
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())["error"]) == (404, "not_found")
        connection.request("GET", "/v1/health?probe=1")  # a query string is not the path
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_a_body_far_over_the_limit_is_refused_by_the_server_without_reading_it(gatekeeper):
    # Waitress answers itself, after the headers, in plain text (docs/protocol.md §5):
    # the gatekeeper's own JSON 400 body_too_large covers bodies up to 72 KiB.
    url = urlsplit(gatekeeper.url)
    with socket.create_connection((url.hostname, url.port), timeout=5) as conn:
        conn.sendall(b"POST /v1/sign HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 80000\r\n\r\n")
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_head_answers_headers_only_so_keep_alive_stays_in_step(gatekeeper):
    # A HEAD response carries no body (RFC 9110): one sent anyway would be read
    # as the start of the next response on the same connection.
    url = urlsplit(gatekeeper.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        connection.request("HEAD", "/v1/health")
        head = connection.getresponse()
        assert head.status == 200 and head.read() == b""
        connection.request("GET", "/v1/health")
        get = connection.getresponse()
        assert get.status == 200 and json.loads(get.read())["gatekeeper_id"] == "gk-test"
    finally:
        connection.close()


# --- protocol 2: one grant, several tickets' prefixes ---------------------------------

def multi_grant(prefixes, ops=("get",)):
    return mint_grant(VENDOR_KEY, issuer=ISSUER, audience=GATEKEEPER_ID, subject="user:7", name="Bob Staff",
                      prefixes=list(prefixes), ops=list(ops))


def test_a_multi_prefix_grant_signs_a_get_under_each_of_its_prefixes(gatekeeper):
    prefixes = [f"tickets/{i}/" for i in range(50)]
    ops = [{"op": "get", "key": p + "summary.json"} for p in prefixes]
    results = gatekeeper.client.sign(multi_grant(prefixes), ops)
    assert [r["key"] for r in results] == [op["key"] for op in ops]


@pytest.mark.parametrize("key", [
    "tickets/3/summary.json",      # not one of its prefixes
    "tickets/10/summary.json",     # tickets/1/ does not cover tickets/10/
    "tickets/1",                   # the prefix without its '/'
    "tickets/summary.json",
])
def test_a_multi_prefix_grant_covers_nothing_outside_its_prefixes(gatekeeper, key):
    ops = [{"op": "get", "key": "tickets/1/summary.json"}, {"op": "get", "key": key}]
    response = sign(gatekeeper, multi_grant(["tickets/1/", "tickets/2/"]), ops)
    rows = assert_refused(gatekeeper, response, 403, "out_of_scope", op="get")
    assert len(rows) == 2  # all or nothing: the in-scope get is refused with it


def test_a_multi_prefix_grant_keeps_the_key_rules(gatekeeper):
    response = sign(gatekeeper, multi_grant(["tickets/1/", "tickets/2/"]),
                    [{"op": "get", "key": "tickets/1/../2/x"}])
    assert_refused(gatekeeper, response, 400, "bad_key")


def test_a_multi_prefix_grant_takes_only_the_ops_it_names(gatekeeper):
    response = sign(gatekeeper, multi_grant(["tickets/1/", "tickets/2/"]),
                    [{"op": "list", "prefix": "tickets/1/"}])
    assert_refused(gatekeeper, response, 403, "op_not_granted", op="list")
