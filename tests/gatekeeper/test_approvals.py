"""Customer approvals of vendor support access, over real HTTP: a support grant
(`sub` = `support:…`) is refused unless X-Approval carries JWS signed by the
customer's approver keys, covering the grant's prefix, ops and time; each refusal
audited; every allowed record names the approval and its approvers."""

from __future__ import annotations

import json
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from gatekeeper.cli import approval_claims, public_jwk, sign

from .conftest import GATEKEEPER_ID, ORIGIN
from .test_sign import GET_42, assert_refused

ALICE = ec.generate_private_key(ec.SECP256R1())
BOB = ec.generate_private_key(ec.SECP256R1())
MALLORY = ec.generate_private_key(ec.SECP256R1())  # listed nowhere
SUPPORT = "support:9"
LIST_42 = [{"op": "list", "prefix": "tickets/42/"}]


def approvers_config(required=1, revoked=()):
    return {
        "approvers": {"required": required},
        "approvers.keys": {"alice": json.dumps(public_jwk(ALICE.public_key())),
                           "bob": json.dumps(public_jwk(BOB.public_key()))},
        "revocation": {"approvals": list(revoked)},
    }


@pytest.fixture(scope="module")
def gk(start_gatekeeper):
    return start_gatekeeper(approvers_config(revoked=["apr-revoked"]))


@pytest.fixture(scope="module")
def gk_two(start_gatekeeper):
    return start_gatekeeper(approvers_config(required=2))


def request_for(approval_id="apr-1", subject=SUPPORT, prefix="tickets/42/", ops=("get", "list"),
                duration=3600, gatekeeper_id=GATEKEEPER_ID):
    return {"approval_id": approval_id, "gatekeeper_id": gatekeeper_id, "subject": subject,
            "prefix": prefix, "ops": list(ops), "duration": duration}


def approval(key=ALICE, approver="alice", now=None, **request):
    return sign(approval_claims(request_for(**request), int(now or time.time())), key, approver)


def post(gk, grant, ops=GET_42, approval_header=None, path="/v1/sign", body=None):
    headers = {"Authorization": f"Bearer {grant}"}
    if approval_header is not None:
        headers["X-Approval"] = approval_header
    return requests.post(gk.url + path, json={"ops": ops} if body is None else body, headers=headers, timeout=10)


def support_grant(gk, **claims):
    return gk.grant(subject=SUPPORT, name="Sam Support", **claims)


# --- allowed --------------------------------------------------------------------

def test_an_approved_support_grant_is_signed_and_its_records_name_the_approval(gk):
    response = post(gk, support_grant(gk), GET_42 + LIST_42, approval())
    assert response.status_code == 200, response.text
    rows = gk.audit_rows(response.headers["X-Request-Id"])
    assert [(r["op"], r["outcome"], r["sub"], r["approval"], r["approvers"]) for r in rows] == [
        ("get", "allow", SUPPORT, "apr-1", "alice"), ("list", "allow", SUPPORT, "apr-1", "alice")]


def test_a_persons_grant_needs_no_approval_and_records_none(gk):
    response = post(gk, gk.grant())
    assert response.status_code == 200
    [row] = gk.audit_rows(response.headers["X-Request-Id"])
    assert (row["approval"], row["approvers"]) == ("", "")


def test_an_approval_for_a_wider_prefix_covers_the_grant(gk):
    assert post(gk, support_grant(gk), approval_header=approval(prefix="tickets/")).status_code == 200


# --- several prefixes (protocol 2's `prefixes`) ----------------------------------------

def test_a_multi_prefix_support_grant_is_signed_when_the_approval_covers_every_prefix(gk):
    grant = support_grant(gk, prefix=None, prefixes=["tickets/42/", "tickets/43/"], ops=["get"])
    ops = GET_42 + [{"op": "get", "key": "tickets/43/summary.json"}]
    response = post(gk, grant, ops, approval(prefix="tickets/"))
    assert response.status_code == 200, response.text
    rows = gk.audit_rows(response.headers["X-Request-Id"])
    assert [(r["outcome"], r["approval"]) for r in rows] == [("allow", "apr-1"), ("allow", "apr-1")]


def test_a_multi_prefix_support_grant_is_refused_when_one_prefix_is_outside_the_approval(gk):
    # The approval is for ticket 42; the grant adds ticket 43, even though the batch asks for 42 alone.
    grant = support_grant(gk, prefix=None, prefixes=["tickets/42/", "tickets/43/"], ops=["get"])
    assert_refused(gk, post(gk, grant, GET_42, approval()), 403, "approval_invalid")
    grant = support_grant(gk, prefix=None, prefixes=["tickets/43/", "tickets/42/"], ops=["get"])
    assert_refused(gk, post(gk, grant, GET_42, approval()), 403, "approval_invalid")


def test_a_multi_prefix_support_grant_without_an_approval_is_refused(gk):
    grant = support_grant(gk, prefix=None, prefixes=["tickets/42/", "tickets/43/"], ops=["get"])
    assert_refused(gk, post(gk, grant, GET_42), 403, "approval_required")


# --- approval_required ------------------------------------------------------------

def test_a_support_grant_with_a_valid_vendor_signature_and_no_approval_is_refused(gk):
    assert_refused(gk, post(gk, support_grant(gk)), 403, "approval_required")
    assert_refused(gk, post(gk, support_grant(gk), approval_header=""), 403, "approval_required")


def test_a_support_grant_is_refused_at_audit_search_too(gk):
    response = post(gk, support_grant(gk, ops=["audit"]), path="/v1/audit/search", body={})
    assert_refused(gk, response, 403, "approval_required")


def test_a_gatekeeper_with_no_approvers_refuses_every_support_grant(gatekeeper):
    # Its config lists no [approvers.keys]: nothing the vendor holds can sign one.
    response = post(gatekeeper, support_grant(gatekeeper), approval_header=approval())
    assert_refused(gatekeeper, response, 403, "approval_invalid")


# --- approval_invalid -------------------------------------------------------------

@pytest.mark.parametrize("change, why", [
    (dict(prefix="tickets/43/"), "another ticket"),
    (dict(ops=("list",)), "fewer ops than the grant"),
    (dict(subject="support:10"), "another support person"),
    (dict(gatekeeper_id="gk-other"), "another gatekeeper"),
])
def test_an_approval_that_does_not_cover_the_grant_is_refused(gk, change, why):
    rows = assert_refused(gk, post(gk, support_grant(gk), approval_header=approval(**change)), 403,
                          "approval_invalid")
    assert rows[0]["approval"] == "apr-1", why  # its signature verified: the record names it


def test_an_approval_can_never_cover_a_write(gk):
    grant = support_grant(gk, ops=["get", "delete"])
    claims = {**approval_claims(request_for(), int(time.time())),
              "scope": {"prefix": "tickets/42/", "ops": ["get", "delete"]}}
    assert_refused(gk, post(gk, grant, approval_header=sign(claims, ALICE, "alice")), 403, "approval_invalid")


@pytest.mark.parametrize("token, why", [
    (lambda: approval(key=MALLORY), "signed by a key the customer does not hold under that id"),
    (lambda: approval(key=MALLORY, approver="mallory"), "an approver id the gatekeeper does not list"),
    (lambda: "not-a-jws", "not a JWS"),
    (lambda: jwt.encode(approval_claims(request_for(), int(time.time())), "secret" * 6, algorithm="HS256",
                        headers={"kid": "alice"}), "HMAC"),
    (lambda: approval() + "," + "x" * 10, "one good, one garbage"),
    (lambda: ",".join([approval()] * 5), "more than four"),
])
def test_a_forged_or_malformed_approval_is_refused(gk, token, why):
    rows = assert_refused(gk, post(gk, support_grant(gk), approval_header=token()), 403, "approval_invalid")
    assert rows[0]["approval"] == "", why  # nothing unverified is recorded as an approval


def test_an_approval_whose_window_is_over_seven_days_is_refused(gk):
    now = int(time.time())
    claims = {**approval_claims(request_for(), now), "exp": now + 7 * 86400 + 1}
    assert_refused(gk, post(gk, support_grant(gk), approval_header=sign(claims, ALICE, "alice")), 403,
                   "approval_invalid")


def test_an_approval_not_valid_yet_is_refused(gk):
    later = approval(now=time.time() + 600)
    assert_refused(gk, post(gk, support_grant(gk), approval_header=later), 403, "approval_invalid")


def test_two_approvals_naming_different_ids_are_refused(gk):
    header = approval() + "," + approval(key=BOB, approver="bob", approval_id="apr-2")
    assert_refused(gk, post(gk, support_grant(gk), approval_header=header), 403, "approval_invalid")


# --- approval_expired -------------------------------------------------------------

def test_an_ended_approval_is_refused(gk):
    old = approval(now=time.time() - 7200, duration=3600)  # ended an hour ago
    rows = assert_refused(gk, post(gk, support_grant(gk), approval_header=old), 403, "approval_expired")
    assert rows[0]["approval"] == "apr-1"


def test_a_grant_outliving_its_approval_is_refused(gk):
    ending = approval(now=time.time() - 3540, duration=3600)  # 60 s left; the grant lives 300
    grant = support_grant(gk, lifetime=300)
    assert_refused(gk, post(gk, grant, approval_header=ending), 403, "approval_expired")


# --- approval_revoked ---------------------------------------------------------------

def test_an_approval_the_customer_revoked_is_refused(gk):
    rows = assert_refused(gk, post(gk, support_grant(gk), approval_header=approval(approval_id="apr-revoked")),
                          403, "approval_revoked")
    assert (rows[0]["approval"], rows[0]["approvers"]) == ("apr-revoked", "alice")


# --- the two-person rule -------------------------------------------------------------

def test_with_two_required_one_approver_is_not_enough(gk_two):
    rows = assert_refused(gk_two, post(gk_two, support_grant(gk_two), approval_header=approval()), 403,
                          "approval_required")
    assert rows[0]["approvers"] == "alice"


def test_with_two_required_the_same_approver_twice_is_not_enough(gk_two):
    header = approval() + "," + approval()
    assert_refused(gk_two, post(gk_two, support_grant(gk_two), approval_header=header), 403, "approval_required")


def test_with_two_required_two_distinct_approvers_are_signed_and_both_recorded(gk_two):
    header = approval() + ", " + approval(key=BOB, approver="bob")
    response = post(gk_two, support_grant(gk_two), approval_header=header)
    assert response.status_code == 200, response.text
    [row] = gk_two.audit_rows(response.headers["X-Request-Id"])
    assert (row["approval"], row["approvers"]) == ("apr-1", "alice,bob")


def test_with_two_required_one_bad_signature_spoils_the_pair(gk_two):
    header = approval() + "," + approval(key=MALLORY, approver="bob")
    assert_refused(gk_two, post(gk_two, support_grant(gk_two), approval_header=header), 403, "approval_invalid")


# --- health and CORS ------------------------------------------------------------------

def test_health_lists_the_feature_and_the_approvers(gk, gk_two):
    health = requests.get(gk.url + "/v1/health", timeout=10).json()
    assert (health["protocol"], health["features"], health["approvers"], health["approvals_required"]) == (
        3, ["approvals", "prefixes"], ["alice", "bob"], 1)
    assert requests.get(gk_two.url + "/v1/health", timeout=10).json()["approvals_required"] == 2


def test_a_browser_may_send_the_approval_header(gk):
    response = requests.options(gk.url + "/v1/sign", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-approval"}, timeout=10)
    assert response.status_code == 204
    assert "X-Approval" in response.headers["Access-Control-Allow-Headers"]


# --- the DynamoDB audit store -------------------------------------------------------

def test_a_gatekeeper_auditing_to_dynamodb_records_the_approval(start_gatekeeper):
    gk_dynamo = start_gatekeeper({**approvers_config(revoked=["apr-revoked"]),
                                  "audit": {"url": "dynamodb://gk-approvals-audit"}})
    assert post(gk_dynamo, support_grant(gk_dynamo), approval_header=approval()).status_code == 200
    revoked = post(gk_dynamo, support_grant(gk_dynamo), approval_header=approval(approval_id="apr-revoked"))
    assert revoked.status_code == 403
    search = post(gk_dynamo, gk_dynamo.grant(prefix="tickets/", ops=["audit"]), path="/v1/audit/search",
                  body={"sub": SUPPORT})
    assert [(e["outcome"], e["reason"], e["approval"], e["approvers"]) for e in search.json()["entries"]] == [
        ("deny", "approval_revoked", "apr-revoked", "alice"), ("allow", "", "apr-1", "alice")]
