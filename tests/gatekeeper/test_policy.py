"""The customer's policy over real HTTP: ACL, countries, proxies, CORS,
revocation, the kill switch and a fail-closed audit log."""

from __future__ import annotations

import sqlite3
import time

import requests

from .conftest import FORGED_KEY, ORIGIN
from .test_sign import GET_42, assert_refused, sign


# --- address and country ------------------------------------------------------

def test_it_refuses_a_denied_address(start_gatekeeper):
    gk = start_gatekeeper({"acl": {"deny": ["127.0.0.0/8"]}})
    assert_refused(gk, sign(gk, gk.grant(), GET_42), 403, "address_denied", op="get")


def test_it_refuses_an_address_not_on_the_allow_list(start_gatekeeper):
    gk = start_gatekeeper({"acl": {"allow": ["10.0.0.0/8"]}})
    assert_refused(gk, sign(gk, gk.grant(), GET_42), 403, "address_denied", op="get")


def test_an_address_denied_every_op_is_refused_before_its_grant_and_body_are_read(start_gatekeeper):
    gk = start_gatekeeper({"acl": {"deny": ["127.0.0.0/8"]}, "acl.upload": {"allow": ["10.0.0.0/8"]}})
    # No grant, a bad body, a forged grant: all get the same answer, so an address
    # refused everything cannot probe what would pass.
    no_grant = requests.post(gk.url + "/v1/sign", data=b"{not json", timeout=10)
    assert_refused(gk, no_grant, 403, "address_denied")
    assert_refused(gk, sign(gk, "not.a.jwt", GET_42), 403, "address_denied")
    rows = assert_refused(gk, sign(gk, gk.grant(), None, raw=b"{not json"), 403, "address_denied")
    assert rows[0]["sub"] == ""  # the grant was not even looked at
    search = requests.post(gk.url + "/v1/audit/search", json={}, timeout=10)
    assert_refused(gk, search, 403, "address_denied")


def test_uploads_follow_their_own_lists(start_gatekeeper):
    # Reads only from the office; agents upload from anywhere.
    gk = start_gatekeeper({"acl": {"allow": ["10.0.0.0/8"]}})
    put = [{"op": "put", "key": "tickets/42/a.txt", "size": 1, "content_type": "text/plain"}]
    assert sign(gk, gk.grant(ops=["put"]), put).status_code == 200
    closed = start_gatekeeper({"acl.upload": {"deny": ["127.0.0.1/32"]}})
    assert_refused(closed, sign(closed, closed.grant(ops=["put"]), put), 403, "address_denied", op="put")
    assert sign(closed, closed.grant(), GET_42).status_code == 200


def test_a_client_cannot_spoof_x_forwarded_for_without_a_trusted_proxy(start_gatekeeper):
    gk = start_gatekeeper({"acl": {"deny": ["127.0.0.1/32"]}})
    response = sign(gk, gk.grant(), GET_42, headers={"X-Forwarded-For": "198.51.100.1"})
    rows = assert_refused(gk, response, 403, "address_denied", op="get")
    assert rows[0]["client_ip"] == "127.0.0.1"


def proxied(start_gatekeeper, **acl):
    return start_gatekeeper({"acl": {"trusted_proxies": ["127.0.0.1/32", "10.9.0.0/16"], **acl}})


def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client(start_gatekeeper):
    gk = proxied(start_gatekeeper, deny=["203.0.113.0/24"])
    # The client wrote "1.2.3.4"; our proxy 10.9.0.5 saw 203.0.113.9 and appended it.
    response = sign(gk, gk.grant(), GET_42, headers={"X-Forwarded-For": "1.2.3.4, 203.0.113.9, 10.9.0.5"})
    assert_refused(gk, response, 403, "address_denied", op="get", client_ip="203.0.113.9")


def test_a_spoofed_leftmost_hop_does_not_get_in(start_gatekeeper):
    gk = proxied(start_gatekeeper, allow=["198.51.100.0/24"])
    response = sign(gk, gk.grant(), GET_42, headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9"})
    assert_refused(gk, response, 403, "address_denied", op="get", client_ip="203.0.113.9")
    ok = sign(gk, gk.grant(), GET_42, headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7"})
    assert ok.status_code == 200


def test_a_malformed_forwarded_header_from_a_trusted_proxy_is_a_400(start_gatekeeper):
    gk = proxied(start_gatekeeper)
    response = sign(gk, gk.grant(), GET_42, headers={"X-Forwarded-For": "1.2.3.4, bogus"})
    # Audited without a client address: the one that sent it could not be told.
    assert_refused(gk, response, 400, "bad_forwarded_for", client_ip="")


def test_a_zone_id_is_not_part_of_the_client_address(start_gatekeeper):
    # "%eth0" names an interface of whoever saw the address: rules and the audit
    # log use the address alone, so a search by client_ip finds it.
    gk = proxied(start_gatekeeper, deny=["2001:db8::/32"])
    response = sign(gk, gk.grant(), GET_42, headers={"X-Forwarded-For": "2001:db8::1%any text"})
    assert_refused(gk, response, 403, "address_denied", op="get", client_ip="2001:db8::1")


def test_it_refuses_a_country_not_on_the_list(start_gatekeeper):
    gk = start_gatekeeper({"acl": {"countries": ["US", "CA", "GB", "AU", "NZ", "IE", "NL"],
                                   "country_header": "CloudFront-Viewer-Country",
                                   "trusted_proxies": ["127.0.0.1/32"]}})
    assert sign(gk, gk.grant(), GET_42, headers={"CloudFront-Viewer-Country": "NL"}).status_code == 200
    response = sign(gk, gk.grant(), GET_42, headers={"CloudFront-Viewer-Country": "KP"})
    rows = assert_refused(gk, response, 403, "country_denied", op="get")
    assert rows[0]["country"] == "KP"
    # An unknown country is refused when a list is set.
    assert_refused(gk, sign(gk, gk.grant(), GET_42), 403, "country_denied", op="get")


def test_the_country_header_is_ignored_from_untrusted_peers(start_gatekeeper):
    gk = start_gatekeeper({"acl": {"countries": ["US"], "country_header": "CloudFront-Viewer-Country",
                                   "trusted_proxies": ["10.0.0.0/8"]}})
    response = sign(gk, gk.grant(), GET_42, headers={"CloudFront-Viewer-Country": "US"})
    assert_refused(gk, response, 403, "country_denied", op="get")


# --- revocation and the kill switch -------------------------------------------

def test_it_refuses_grants_issued_before_not_before(start_gatekeeper):
    gk = start_gatekeeper({"revocation": {"not_before": int(time.time()) - 10}})
    assert_refused(gk, sign(gk, gk.grant(now=time.time() - 20), GET_42), 401, "revoked")
    assert sign(gk, gk.grant(), GET_42).status_code == 200


def test_it_refuses_a_revoked_subject(start_gatekeeper):
    gk = start_gatekeeper({"revocation": {"subjects": ["user:13"]}})
    assert_refused(gk, sign(gk, gk.grant(subject="user:13"), GET_42), 401, "revoked")
    assert sign(gk, gk.grant(subject="user:14"), GET_42).status_code == 200
    # The revoked user's attempts are found by their subject; a forger's claims are not recorded.
    assert sign(gk, gk.grant(subject="user:13", key=FORGED_KEY), GET_42).status_code == 401
    audit = gk.grant(prefix="tickets/", ops=["audit"], subject="user:admin")
    found = requests.post(gk.url + "/v1/audit/search", json={"sub": "user:13"},
                          headers={"Authorization": f"Bearer {audit}"}, timeout=10).json()["entries"]
    assert [(e["reason"], e["status"], e["kid"], e["name"]) for e in found] == [("revoked", 401, "k1", "Bob Staff")]


def test_the_kill_switch_refuses_everything(start_gatekeeper):
    gk = start_gatekeeper({"enabled": False})
    assert_refused(gk, sign(gk, gk.grant(), GET_42), 403, "kill_switch")
    health = requests.get(gk.url + "/v1/health", timeout=5).json()
    assert health["status"] == "degraded" and health["enabled"] is False


def test_the_kill_switch_can_be_thrown_from_the_environment(start_gatekeeper):
    gk = start_gatekeeper(env={"GATEKEEPER_ENABLED": "false"})
    assert_refused(gk, sign(gk, gk.grant(), GET_42), 403, "kill_switch")


# --- fail closed ----------------------------------------------------------------

def test_it_signs_nothing_when_the_audit_record_cannot_be_written(gatekeeper):
    assert sign(gatekeeper, gatekeeper.grant(), GET_42).status_code == 200  # the DB exists
    blocker = sqlite3.connect(gatekeeper.audit_path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        response = sign(gatekeeper, gatekeeper.grant(), GET_42)
        assert response.status_code == 503
        assert response.json()["error"] == "audit_unavailable"
        assert "url" not in response.text
    finally:
        blocker.rollback()
        blocker.close()
    assert sign(gatekeeper, gatekeeper.grant(), GET_42).status_code == 200


def test_credentials_that_cannot_be_fetched_are_a_refusal_on_record(start_gatekeeper):
    # The role's credentials come from a metadata endpoint that is down: the
    # answer is a 502 whose failure is audited (as a failed list or delete is,
    # after its "allow"), not a 500 the log never hears about.
    from tests import support

    gk = start_gatekeeper(env={
        "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{support.free_port()}/creds",
    })
    response = sign(gk, gk.grant(), GET_42)
    assert (response.status_code, response.json()["error"]) == (502, "storage_credentials")
    rows = gk.audit_rows(response.headers["X-Request-Id"])
    assert [(r["op"], r["outcome"], r["reason"], r["status"]) for r in rows] == [
        ("get", "allow", "", 200), ("get", "deny", "storage_credentials", 502)]


# --- CORS and health ------------------------------------------------------------

def test_cors_echoes_only_an_allowed_origin(gatekeeper):
    ok = sign(gatekeeper, gatekeeper.grant(), GET_42, headers={"Origin": ORIGIN})
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in ok.headers["Vary"]
    other = sign(gatekeeper, gatekeeper.grant(), GET_42, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Origin" in other.headers["Vary"]


def test_cors_preflight(gatekeeper):
    ok = requests.options(gatekeeper.url + "/v1/sign", timeout=5, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
    refused = requests.options(gatekeeper.url + "/v1/audit/search", timeout=5,
                               headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers


def test_cors_never_answers_with_a_wildcard(gatekeeper):
    for origin in ("*", "null", ORIGIN + ".evil.example", ORIGIN.upper()):
        response = sign(gatekeeper, gatekeeper.grant(), GET_42, headers={"Origin": origin})
        assert response.headers.get("Access-Control-Allow-Origin") in (None,)


def test_health_reports_what_the_portal_checks_and_no_secrets(gatekeeper, moto_url):
    response = requests.get(gatekeeper.url + "/v1/health", headers={"Origin": ORIGIN}, timeout=5)
    body = response.json()
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert body["status"] == "ok" and body["gatekeeper_id"] == "gk-test"
    assert body["protocol"] == 3 and body["vendor_kids"] == ["k1"]
    assert (body["features"], body["approvers"], body["approvals_required"]) == (["approvals", "prefixes"], [], 1)
    assert abs(body["time"] - time.time()) < 5
    assert body["upload_encryption"] == "sse-s3" and body["audit"] == "ok"
    # Where its presigned URLs point (here moto's endpoint_url): what agents pin uploads to.
    assert body["storage_origin"] == moto_url
    # The bucket as S3 reports it (tests/gatekeeper/test_health_storage.py has the rest).
    assert (body["bucket"], body["region"], body["storage"]) == (gatekeeper.bucket, "us-east-1", "ok")
    assert "testing-secret" not in response.text and "testing" not in response.text
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


# --- countries from a GeoIP database ----------------------------------------------

def geoip_db(path):
    """A small MaxMind-format database: loopback in NL, 10/8 in KP."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-Country")
    writer.insert_network(IPSet(["127.0.0.0/8"]), {"country": {"iso_code": "NL"}})
    writer.insert_network(IPSet(["10.0.0.0/8"]), {"country": {"iso_code": "KP"}})
    writer.to_db_file(str(path))
    return str(path)


def test_countries_come_from_the_geoip_database(start_gatekeeper, tmp_path):
    gk = start_gatekeeper({"acl": {"countries": ["NL", "IE"], "geoip_db": geoip_db(tmp_path / "c.mmdb"),
                                   "trusted_proxies": ["127.0.0.1/32"]}})
    ok = sign(gk, gk.grant(), GET_42)
    assert ok.status_code == 200
    assert {r["country"] for r in gk.audit_rows(ok.headers["X-Request-Id"])} == {"NL"}
    # Forwarded by our proxy for a client in 10/8: looked up, and refused.
    response = sign(gk, gk.grant(), GET_42, headers={"X-Forwarded-For": "10.1.2.3"})
    rows = assert_refused(gk, response, 403, "country_denied", op="get", client_ip="10.1.2.3")
    assert rows[0]["country"] == "KP"
    # An address the database does not know has no country: refused while a list is set.
    unknown = sign(gk, gk.grant(), GET_42, headers={"X-Forwarded-For": "192.0.2.7"})
    assert_refused(gk, unknown, 403, "country_denied", op="get", client_ip="192.0.2.7")


def test_a_file_that_is_not_a_geoip_database_refuses_to_start(tmp_path):
    import subprocess

    from tests import support

    from .conftest import base_config, toml_dumps

    bogus = tmp_path / "bogus.mmdb"
    bogus.write_bytes(b"not a database")
    config = base_config("http://127.0.0.1:9", "acme-reports", f"sqlite:///{tmp_path}/a.db")
    config["acl"]["geoip_db"] = str(bogus)
    (tmp_path / "gk.toml").write_text(toml_dumps(config))
    result = subprocess.run([support.PYTHON, "-m", "gatekeeper", "check-config", "--config", str(tmp_path / "gk.toml")],
                            capture_output=True, text=True, timeout=30, cwd=support.ROOT)
    assert result.returncode == 2 and "acl.geoip_db" in result.stderr and "Traceback" not in result.stderr


def test_an_ipv6_client_with_an_ipv4_only_geoip_database_has_no_country(start_gatekeeper, tmp_path):
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=4, database_type="GeoIP2-Country")
    writer.insert_network(IPSet(["127.0.0.0/8"]), {"country": {"iso_code": "NL"}})
    writer.to_db_file(str(tmp_path / "v4.mmdb"))
    gk = start_gatekeeper({"acl": {"countries": ["NL"], "geoip_db": str(tmp_path / "v4.mmdb"),
                                   "trusted_proxies": ["127.0.0.1/32"]}})
    assert sign(gk, gk.grant(), GET_42).status_code == 200
    response = sign(gk, gk.grant(), GET_42, headers={"X-Forwarded-For": "2001:db8::7"})
    rows = assert_refused(gk, response, 403, "country_denied", op="get", client_ip="2001:db8::7")
    assert rows[0]["country"] == ""
