"""POST /v1/audit/search over real HTTP."""

from __future__ import annotations

import requests

from .test_sign import GET_42, assert_refused, sign


def search(gk, grant, **filters):
    return requests.post(gk.url + "/v1/audit/search", json=filters,
                         headers={"Authorization": f"Bearer {grant}"}, timeout=10)


def test_an_admin_finds_a_users_reads_newest_first(gatekeeper):
    for n in range(3):
        sign(gatekeeper, gatekeeper.grant(subject="user:searched"), [{"op": "get", "key": f"tickets/42/f{n}"}])
    audit = gatekeeper.grant(prefix="tickets/", ops=["audit"], subject="user:admin")
    response = search(gatekeeper, audit, sub="user:searched", limit=2)
    assert response.status_code == 200, response.text
    page = response.json()
    assert [e["key"] for e in page["entries"]] == ["tickets/42/f2", "tickets/42/f1"]
    assert set(page["entries"][0]) == {"ts", "request_id", "client_ip", "country", "user_agent", "origin",
                                       "op", "key", "outcome", "reason", "status", "jti", "sub", "name", "kid",
                                       "approval", "approvers", "idp_sub", "idp_iss"}
    rest = search(gatekeeper, audit, sub="user:searched", limit=2, cursor=page["next"]).json()
    assert [e["key"] for e in rest["entries"]] == ["tickets/42/f0"]


def test_refusals_are_searchable(gatekeeper):
    sign(gatekeeper, "garbage", GET_42)
    audit = gatekeeper.grant(prefix="tickets/", ops=["audit"])
    entries = search(gatekeeper, audit, outcome="deny", op="request", limit=5).json()["entries"]
    assert entries[0]["reason"] == "malformed_grant" and entries[0]["status"] == 401


def test_the_search_itself_is_audited(gatekeeper):
    audit = gatekeeper.grant(prefix="tickets/", ops=["audit"], subject="user:auditor")
    response = search(gatekeeper, audit, limit=1)
    [row] = gatekeeper.audit_rows(response.headers["X-Request-Id"])
    assert (row["op"], row["sub"], row["outcome"]) == ("audit", "user:auditor", "allow")


def test_it_refuses_a_search_without_an_audit_grant(gatekeeper):
    response = search(gatekeeper, gatekeeper.grant(ops=["get", "list"]), limit=1)
    assert_refused(gatekeeper, response, 403, "op_not_granted")


def test_a_single_use_grant_is_single_use_for_searches_too(gatekeeper):
    # A grant carrying put or delete is good for one request, whichever endpoint.
    grant = gatekeeper.grant(prefix="tickets/", ops=["audit", "delete"])
    assert search(gatekeeper, grant, limit=1).status_code == 200
    assert_refused(gatekeeper, search(gatekeeper, grant, limit=1), 403, "grant_reused")
    response = sign(gatekeeper, grant, [{"op": "delete", "key": "tickets/42/x"}])
    assert_refused(gatekeeper, response, 403, "grant_reused", op="delete")


def test_it_refuses_bad_filters(gatekeeper):
    audit = gatekeeper.grant(prefix="tickets/", ops=["audit"])
    for filters in ({"limit": 501}, {"colour": "red"}, {"client_ip": "nope"}, {"cursor": "garbage"}):
        assert_refused(gatekeeper, search(gatekeeper, audit, **filters), 400, "bad_filter")


def test_a_gatekeeper_auditing_to_dynamodb_over_http(start_gatekeeper):
    gk = start_gatekeeper({"audit": {"url": "dynamodb://gk-http-audit"}})
    assert requests.get(gk.url + "/v1/health", timeout=5).json()["audit"] == "ok"
    assert sign(gk, gk.grant(subject="user:dyn"), GET_42).status_code == 200
    refused = sign(gk, gk.grant(subject="user:dyn", prefix="tickets/7/"), GET_42)
    assert refused.status_code == 403
    audit = gk.grant(prefix="tickets/", ops=["audit"])
    entries = search(gk, audit, sub="user:dyn").json()["entries"]
    assert [(e["outcome"], e["reason"], e["key"]) for e in entries] == [
        ("deny", "out_of_scope", "tickets/42/report.json"), ("allow", "", "tickets/42/report.json")]


def test_a_forged_cursor_is_a_400_not_a_500(gatekeeper):
    # Before keyed cursors, anyone could compute the check: a position of 10**20
    # overflowed SQLite after the search was audited as allowed.
    from .test_audit import unkeyed
    from gatekeeper import audit
    cursor = unkeyed({"f": audit._fingerprint(audit.parse_search({"limit": 1})), "p": [10**20, 1]})
    assert_refused(gatekeeper, search(gatekeeper, gatekeeper.grant(ops=["audit"]), limit=1, cursor=cursor),
                   400, "bad_filter")


def test_gatekeepers_sharing_a_log_and_a_cursor_secret_share_cursors(start_gatekeeper, tmp_path):
    shared = {"audit": {"url": f"sqlite:///{tmp_path}/shared.db", "cursor_secret": "c" * 32}}
    first, second, alone = (start_gatekeeper(shared), start_gatekeeper(shared),
                            start_gatekeeper({"audit": {"url": f"sqlite:///{tmp_path}/shared.db"}}))
    for _ in range(3):
        sign(first, first.grant(), GET_42)
    page = search(first, first.grant(ops=["audit"]), limit=1).json()
    assert search(second, second.grant(ops=["audit"]), limit=1, cursor=page["next"]).status_code == 200
    response = search(alone, alone.grant(ops=["audit"]), limit=1, cursor=page["next"])
    assert (response.status_code, response.json()["error"]) == (400, "bad_filter")


def test_an_address_range_finds_loopbacks_reads_and_a_malformed_one_is_a_400(gatekeeper):
    sign(gatekeeper, gatekeeper.grant(subject="user:ranged"), GET_42)
    audit = gatekeeper.grant(prefix="tickets/", ops=["audit"])
    inside = search(gatekeeper, audit, sub="user:ranged", client_net="127.0.0.0/8", limit=5).json()["entries"]
    assert inside and all(e["client_ip"].startswith("127.") for e in inside)
    assert search(gatekeeper, audit, sub="user:ranged", client_net="10.0.0.0/8", limit=5).json()["entries"] == []
    refused = search(gatekeeper, audit, client_net="127.0.0.1/8")
    assert refused.status_code == 400
    assert refused.json()["error"] == "bad_filter" and "host bits set" in refused.json()["message"]
