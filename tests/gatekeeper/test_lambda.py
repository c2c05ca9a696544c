"""The Lambda adapter with real API Gateway HTTP API (2.0) and function URL event
shapes, configured from the environment alone, auditing to DynamoDB on moto."""

from __future__ import annotations

import base64
import json
import time

import pytest

from gatekeeper import lambda_handler
from gatekeeper.app import open_store
from gatekeeper_client.client import download, upload

from .conftest import GATEKEEPER_ID, ISSUER, ORIGIN, VENDOR_KEY, RunningGatekeeper


def http_api_event(path, method="POST", body=None, headers=None, source_ip="203.0.113.9", b64=False):
    text = json.dumps(body) if body is not None else None
    if b64 and text is not None:
        text = base64.b64encode(text.encode()).decode()
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {
            "accept": "*/*", "content-type": "application/json",
            "host": "a1b2c3.execute-api.us-east-1.amazonaws.com", "user-agent": "Mozilla/5.0 test",
            "x-amzn-trace-id": "Root=1-5e6722a7-cc56xmpl46db7ae02d4da47e",
            "x-forwarded-for": source_ip, "x-forwarded-port": "443", "x-forwarded-proto": "https",
            **(headers or {}),
        },
        "requestContext": {
            "accountId": "123456789012", "apiId": "a1b2c3",
            "domainName": "a1b2c3.execute-api.us-east-1.amazonaws.com", "domainPrefix": "a1b2c3",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": "Mozilla/5.0 test"},
            "requestId": "JKJaXmPLvHcESHA=", "routeKey": "$default", "stage": "$default",
            "time": "10/Mar/2026:05:16:23 +0000", "timeEpoch": 1773119783000,
        },
        **({"body": text} if text is not None else {}),
        "isBase64Encoded": b64,
    }


def function_url_event(path, **kwargs):
    event = http_api_event(path, **kwargs)
    event["requestContext"].update({"apiId": "fnurlxmpl", "domainPrefix": "fnurlxmpl",
                                    "domainName": "fnurlxmpl.lambda-url.us-east-1.on.aws",
                                    "authorizer": None})
    event["headers"]["host"] = "fnurlxmpl.lambda-url.us-east-1.on.aws"
    return event


@pytest.fixture(scope="module")
def lambda_env(moto_url, s3, monkeypatch_module):
    bucket, table = "lambda-reports", "lambda-audit"
    s3.create_bucket(Bucket=bucket)
    env = {
        "GATEKEEPER_GATEKEEPER_ID": GATEKEEPER_ID, "GATEKEEPER_ISSUER": ISSUER,
        "GATEKEEPER_ALLOWED_ORIGINS": ORIGIN,
        "GATEKEEPER_VENDOR_KEYS": f"{VENDOR_KEY.kid}:{VENDOR_KEY.public_b64}",
        "GATEKEEPER_STORAGE_BUCKET": bucket, "GATEKEEPER_STORAGE_REGION": "us-east-1",
        "GATEKEEPER_STORAGE_ENDPOINT_URL": moto_url, "GATEKEEPER_AUDIT_URL": f"dynamodb://{table}",
        "GATEKEEPER_ACL_DENY": "198.51.100.0/24",
    }
    for name, value in env.items():
        monkeypatch_module.setenv(name, value)
    # As an operator would, before the first request: a cold start checks that it exists.
    open_store(f"dynamodb://{table}", 30, endpoint_url=moto_url).create_table()
    lambda_handler._gatekeeper = None
    yield RunningGatekeeper(url="", bucket=bucket, audit_path=None, proc=None)
    lambda_handler._gatekeeper = None


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def call(event):
    response = lambda_handler.handler(event, None)
    return response["statusCode"], json.loads(response["body"] or "null"), response["headers"]


@pytest.mark.parametrize("make_event", [http_api_event, function_url_event])
def test_a_round_trip_through_the_lambda_handler(lambda_env, make_event):
    data = b"diagnostics " * 100
    put_grant = lambda_env.grant(ops=["put"])
    status, body, headers = call(make_event("/v1/sign", body={"ops": [
        {"op": "put", "key": "tickets/42/diag.txt", "size": len(data), "content_type": "text/plain"}]},
        headers={"authorization": f"Bearer {put_grant}", "origin": ORIGIN}))
    assert status == 200, body
    assert headers["Access-Control-Allow-Origin"] == ORIGIN and headers["Cache-Control"] == "no-store"
    upload(body["results"][0], data)
    status, body, _ = call(make_event("/v1/sign", b64=True, body={"ops": [
        {"op": "get", "key": "tickets/42/diag.txt"}]},
        headers={"authorization": f"Bearer {lambda_env.grant()}"}))
    assert status == 200, body
    assert download(body["results"][0]) == data


def test_the_lambda_uses_the_source_ip_not_a_forged_header(lambda_env):
    event = http_api_event("/v1/sign", source_ip="198.51.100.20",
                           body={"ops": [{"op": "get", "key": "tickets/42/a"}]},
                           headers={"authorization": f"Bearer {lambda_env.grant()}",
                                    "x-forwarded-for": "10.0.0.1"})
    status, body, _ = call(event)
    assert (status, body["error"]) == (403, "address_denied")


def test_the_lambda_audits_to_dynamodb_and_searches_it(lambda_env):
    grant = lambda_env.grant(ops=["get"], subject="user:lambda", jti="lambda-jti-1")
    call(http_api_event("/v1/sign", body={"ops": [{"op": "get", "key": "tickets/42/x"}]},
                        headers={"authorization": f"Bearer {grant}"}))
    audit_grant = lambda_env.grant(prefix="tickets/", ops=["audit"], subject="user:admin")
    status, body, _ = call(http_api_event("/v1/audit/search", body={"sub": "user:lambda", "limit": 10},
                                          headers={"authorization": f"Bearer {audit_grant}"}))
    assert status == 200, body
    [entry] = body["entries"]
    assert (entry["op"], entry["key"], entry["outcome"], entry["jti"]) == ("get", "tickets/42/x", "allow", "lambda-jti-1")
    assert entry["client_ip"] == "203.0.113.9" and entry["user_agent"] == "Mozilla/5.0 test"


def test_a_base64_body_over_the_limit_is_too_large_not_malformed(lambda_env):
    event = http_api_event("/v1/sign", b64=True, body={"ops": [], "pad": "x" * 100_000},
                           headers={"authorization": f"Bearer {lambda_env.grant()}"})
    status, body, _ = call(event)
    assert (status, body["error"]) == (400, "body_too_large")


def test_the_lambda_refuses_with_json_errors(lambda_env):
    status, body, headers = call(http_api_event("/v1/sign", body={"ops": []}))
    assert (status, body["error"]) == (401, "missing_grant")
    event = http_api_event("/v1/sign", headers={"authorization": f"Bearer {lambda_env.grant()}"})
    event["body"], event["isBase64Encoded"] = "%%%not base64", True
    status, body, _ = call(event)
    assert (status, body["error"]) == (400, "malformed_json")
    status, body, _ = call(http_api_event("/v1/health", method="GET"))
    assert status == 200 and body["audit"] == "ok" and body["time"] == pytest.approx(time.time(), abs=5)
    status, body, _ = call(http_api_event("/nothing", method="GET"))
    assert status == 404


def test_head_on_health_has_no_body(lambda_env):
    response = lambda_handler.handler(http_api_event("/v1/health", method="HEAD"), None)
    assert response["statusCode"] == 200 and response["body"] == ""


def named_stage_event(path, stage="prod", **kwargs):
    """API Gateway HTTP API on a named stage: the stage is the first segment of rawPath."""
    event = http_api_event(f"/{stage}{path}", **kwargs)
    event["routeKey"] = event["requestContext"]["routeKey"] = "ANY /{proxy+}"
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["requestContext"]["stage"] = stage
    return event


@pytest.mark.parametrize("make_event", [http_api_event, function_url_event])
def test_only_the_canonical_path_is_routed(lambda_env, make_event):
    # rawPath is the path as sent (a function URL's; API Gateway's, see docs/operations.md).
    for path in ("/v1/%73ign", "/%761/sign", "/v1/audit%2Fsearch"):
        assert call(make_event(path, body={"ops": []}))[0] == 404


def test_a_named_stage_is_not_part_of_the_route(lambda_env):
    status, body, _ = call(named_stage_event("/v1/health", method="GET"))
    assert status == 200 and body["gatekeeper_id"] == GATEKEEPER_ID
    status, body, _ = call(named_stage_event("/v1/sign", body={"ops": [{"op": "get", "key": "tickets/42/a"}]},
                                             headers={"authorization": f"Bearer {lambda_env.grant()}"}))
    assert status == 200 and body["results"][0]["key"] == "tickets/42/a"
    # Only the stage itself is taken off, once.
    assert call(named_stage_event("/v1/health", stage="v1", method="GET"))[0] == 200
    assert call(named_stage_event("/prod/v1/health", method="GET"))[0] == 404
    assert call(http_api_event("/prod/v1/health", method="GET"))[0] == 404  # $default stage


@pytest.mark.parametrize("env", [{"GATEKEEPER_PRESIGN_TTL": "soon"},
                                 {"GATEKEEPER_AUDIT_URL": "dynamodb://no-such-audit-table"}])
def test_a_refused_configuration_answers_503_json_until_it_is_fixed(lambda_env, monkeypatch, env):
    lambda_handler._gatekeeper = None
    with monkeypatch.context() as patched:
        for name, value in env.items():
            patched.setenv(name, value)
        response = lambda_handler.handler(http_api_event("/v1/health", method="GET"), None)
        assert response["statusCode"] == 503
        assert response["headers"]["Cache-Control"] == "no-store"
        assert json.loads(response["body"])["error"] == "misconfigured"
        assert "GATEKEEPER" not in response["body"] and "audit" not in response["body"]
    # Not remembered: once the operator fixes it, the next request is served.
    assert call(http_api_event("/v1/health", method="GET"))[0] == 200
