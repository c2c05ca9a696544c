"""deploy/aws/gatekeeper.yaml deployed on moto's CloudFormation (server on loopback),
then the built zip unpacked and its handler run, in a process of its own, with the
environment the stack gave the function, answering function-URL events (payload 2.0).

moto's Lambda cannot run code without Docker, so the handler is run here as Lambda
would run it: a fresh interpreter whose imports come from the unpacked zip only.
The zip is built for the host's architecture (x86_64 here) and Python 3.12 when an
interpreter of it is found (pyenv's), else for the host's Python; the arm64 zip's
libraries are checked by tests/deploy/test_zip.py but cannot load on this machine.

What moto 5.1's CloudFormation does not model, and is asserted on the template instead
(tests/deploy/test_template.py): the function URL (left out: CreateFunctionUrl=false),
a bucket's public access block, versioning, CORS and lifecycle, AWS::S3::BucketPolicy,
a table's TTL and point-in-time recovery, a function's Architectures and LoggingConfig.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import subprocess
import sys
import zipfile

import boto3
import pytest

from gatekeeper.app import open_store
from gatekeeper_client.client import download, upload
from gatekeeper_client.grants import mint_grant
from tests import support
from tests.gatekeeper.conftest import ORIGIN, VENDOR_KEY
from tests.gatekeeper.test_lambda import function_url_event

from .lambda_run import Container
from .template import TEMPLATE, Stack
from .zipbuild import builder

GATEKEEPER_ID = "gk-cfn"
CODE_BUCKET = "dualkey-artifacts-cfn"
PARAMETERS = {
    "GatekeeperId": GATEKEEPER_ID, "PortalOrigin": ORIGIN, "VendorKeys": f"{VENDOR_KEY.kid}:{VENDOR_KEY.public_b64}",
    "AllowedOps": "get,list,put,audit", "DenyIps": "198.51.100.0/24", "AuditCursorSecret": "s" * 40,
    "Architecture": "x86_64", "CreateFunctionUrl": "false", "ReservedConcurrency": "5", "MemorySize": "256",
}
_stacks = itertools.count()


@pytest.fixture(scope="module")
def aws(moto_url):
    def client(service):
        return boto3.client(service, endpoint_url=moto_url, region_name="us-east-1")
    return client


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(zip, interpreter to run it with)."""
    python = builder.find_python("3.12")
    version = "3.12" if python else "%d.%d" % sys.version_info[:2]
    out = builder.build("x86_64", version, tmp_path_factory.mktemp("zip"))
    return out, python or sys.executable


def deploy(aws, built, **changes) -> dict:
    s3, cfn = aws("s3"), aws("cloudformation")
    zip_path, _ = built
    if "Contents" not in s3.list_objects_v2(Bucket=CODE_BUCKET, Prefix=f"gatekeeper/{zip_path.name}"):
        s3.upload_file(str(zip_path), CODE_BUCKET, f"gatekeeper/{zip_path.name}")
    name = f"gatekeeper-{os.getpid()}-{next(_stacks)}"
    parameters = {**PARAMETERS, "CodeBucket": CODE_BUCKET, "CodeKey": f"gatekeeper/{zip_path.name}", **changes}
    cfn.create_stack(StackName=name, TemplateBody=TEMPLATE.read_text(),
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
                     Capabilities=["CAPABILITY_IAM"])
    described = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                 for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    return {"name": name, "resources": resources, "outputs": outputs, "parameters": parameters}


@pytest.fixture(scope="module")
def stack(aws, built):
    aws("s3").create_bucket(Bucket=CODE_BUCKET)
    return deploy(aws, built)


def test_it_creates_bucket_table_role_and_function_and_no_url(stack):
    assert {"ReportBucket", "AuditTable", "GatekeeperRole", "GatekeeperFunction", "FunctionLogGroup"} <= set(
        stack["resources"])
    assert not {"GatekeeperUrl", "UrlInvokePermission", "UrlFunctionPermission", "ReportKey"} & set(stack["resources"])
    outputs = stack["outputs"]
    assert outputs["Bucket"] == stack["resources"]["ReportBucket"] and outputs["GatekeeperId"] == GATEKEEPER_ID
    assert outputs["StorageOrigin"] == f"https://{outputs['Bucket']}.s3.amazonaws.com"
    assert "GatekeeperUrl" not in outputs


def test_the_bucket_is_encrypted(stack, aws):
    encryption = aws("s3").get_bucket_encryption(Bucket=stack["resources"]["ReportBucket"])
    [rule] = encryption["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_the_table_has_the_schema_init_audit_creates(stack, aws, moto_url):
    dynamodb = aws("dynamodb")
    open_store("dynamodb://init-audit-made", 30, endpoint_url=moto_url).create_table()
    made, deployed = (dynamodb.describe_table(TableName=name)["Table"]
                      for name in ("init-audit-made", stack["resources"]["AuditTable"]))
    for field in ("KeySchema", "AttributeDefinitions", "BillingModeSummary"):
        assert deployed[field] == made[field], field


def deployed_statements(aws, stack) -> list[dict]:
    iam, resources = aws("iam"), stack["resources"]
    document = iam.get_role_policy(RoleName=resources["GatekeeperRole"], PolicyName="gatekeeper")["PolicyDocument"]
    if isinstance(document, str):  # moto keeps the resolved template value as Python text
        document = ast.literal_eval(document)
    return [statement for statement in document["Statement"] if statement is not None]  # moto keeps NoValue's None


def key_arn(aws, key_id: str) -> str:
    # From ListKeys: moto's DescribeKey fails (500) on a key CloudFormation made.
    [arn] = [key["KeyArn"] for key in aws("kms").list_keys()["Keys"] if key["KeyId"] == key_id]
    return arn


def expected_statements(aws, stack) -> list[dict]:
    """The template's statements for the stack's parameters, with the stack's own ARNs."""
    resources = stack["resources"]
    names = {"${ReportBucket.Arn}": f"arn:aws:s3:::{resources['ReportBucket']}",
             "${AuditTable.Arn}": aws("dynamodb").describe_table(TableName=resources["AuditTable"])["Table"]["TableArn"],
             "${FunctionLogGroup.Arn}": f"arn:aws:logs:us-east-1:123456789012:log-group:{resources['FunctionLogGroup']}"}
    if "ReportKey" in resources:
        names["${ReportKey.Arn}"] = key_arn(aws, resources["ReportKey"])
    expected = json.dumps(list(Stack(**stack["parameters"]).role_statements().values()))
    for symbol, arn in names.items():
        expected = expected.replace(symbol, arn)
    return json.loads(expected)


def test_the_role_holds_exactly_the_templates_statements(stack, aws):
    iam, resources = aws("iam"), stack["resources"]
    role = iam.get_role(RoleName=resources["GatekeeperRole"])["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert iam.list_role_policies(RoleName=resources["GatekeeperRole"])["PolicyNames"] == ["gatekeeper"]
    assert iam.list_attached_role_policies(RoleName=resources["GatekeeperRole"])["AttachedPolicies"] == []
    deployed = deployed_statements(aws, stack)
    assert deployed == expected_statements(aws, stack)
    assert "s3:DeleteObject" not in json.dumps(deployed) and "kms:" not in json.dumps(deployed)


def test_with_sse_kms_and_every_op_the_stack_makes_a_key_and_the_role_uses_it(stack, aws, built):
    kms_stack = deploy(aws, built, Encryption="sse-kms", AllowedOps="get,list,put,delete,audit")
    key = key_arn(aws, kms_stack["resources"]["ReportKey"])
    [rule] = aws("s3").get_bucket_encryption(
        Bucket=kms_stack["resources"]["ReportBucket"])["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
    deployed = deployed_statements(aws, kms_stack)
    assert deployed == expected_statements(aws, kms_stack)
    by_sid = {statement["Sid"]: statement for statement in deployed}
    assert by_sid["DecryptThroughS3"]["Resource"] == by_sid["EncryptThroughS3"]["Resource"] == key
    assert "DeleteTickets" in by_sid and "ReleaseClaims" in by_sid
    env = aws("lambda").get_function_configuration(
        FunctionName=kms_stack["resources"]["GatekeeperFunction"])["Environment"]["Variables"]
    assert (env["GATEKEEPER_STORAGE_ENCRYPTION"], env["GATEKEEPER_STORAGE_KMS_KEY_ID"]) == ("sse-kms", key)


def test_the_function_is_configured_from_the_parameters(stack, aws):
    function = stack["resources"]["GatekeeperFunction"]
    lam = aws("lambda")
    config = lam.get_function_configuration(FunctionName=function)
    assert (config["Runtime"], config["Handler"], config["MemorySize"], config["Timeout"]) == (
        "python3.12", "gatekeeper.lambda_handler.handler", 256, 15)
    assert config["Role"].endswith("/" + stack["resources"]["GatekeeperRole"])
    assert lam.get_function_concurrency(FunctionName=function)["ReservedConcurrentExecutions"] == 5
    env = config["Environment"]["Variables"]
    assert env["GATEKEEPER_ALLOWED_OPS"] == "get,list,put,audit"
    assert env["GATEKEEPER_STORAGE_BUCKET"] == stack["resources"]["ReportBucket"]
    assert env["GATEKEEPER_AUDIT_URL"] == f"dynamodb://{stack['resources']['AuditTable']}"
    assert not [name for name in env if name.startswith("GATEKEEPER_IDENTITY_")]  # [identity] off


def test_the_identity_parameters_become_the_functions_identity_environment(stack, aws, built):
    issuer = "https://login.acme.example/realms/acme"
    identity_stack = deploy(aws, built, IdentityIssuer=issuer, IdentityAudience="dualkey-pages",
                            IdentityJwksUrl=f"{issuer}/protocol/openid-connect/certs", IdentityMaxAge="900")
    env = aws("lambda").get_function_configuration(
        FunctionName=identity_stack["resources"]["GatekeeperFunction"])["Environment"]["Variables"]
    # str(): moto keeps a Number parameter's value an int; Lambda's environment is strings.
    assert {name: str(value) for name, value in env.items() if name.startswith("GATEKEEPER_IDENTITY_")} == {
        "GATEKEEPER_IDENTITY_ISSUER": issuer, "GATEKEEPER_IDENTITY_AUDIENCE": "dualkey-pages",
        "GATEKEEPER_IDENTITY_JWKS_URL": f"{issuer}/protocol/openid-connect/certs",
        "GATEKEEPER_IDENTITY_MAX_AGE": "900"}


# --- the built code, run with the function's environment --------------------------

@pytest.fixture(scope="module")
def container(stack, aws, built, moto_url, tmp_path_factory):
    zip_path, python = built
    task = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task)
    config = aws("lambda").get_function_configuration(FunctionName=stack["resources"]["GatekeeperFunction"])
    env = {key: str(value) for key, value in config["Environment"]["Variables"].items()}
    env.update({  # what Lambda adds (role credentials, region), and the one change for moto: its endpoint
        **support.AWS_ENV, "AWS_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": config["FunctionName"],
        "PATH": os.environ.get("PATH", ""), "GATEKEEPER_STORAGE_ENDPOINT_URL": moto_url,
    })
    running = Container(python, task, env)
    yield running
    running.close()


def grant(ops, **claims):
    args = dict(issuer=ORIGIN, audience=GATEKEEPER_ID, subject="user:7", name="Bob Staff")
    args.update(claims)
    return mint_grant(VENDOR_KEY, prefix="tickets/42/", ops=list(ops), **args)


def test_the_code_runs_on_the_target_python(built):
    _, python = built
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == "3.12", f"no Python 3.12 here: the zip ran on {version} (install one, e.g. with pyenv)"


def test_health_answers_with_the_stacks_configuration(container, stack):
    status, body, headers = container(function_url_event("/v1/health", method="GET", headers={"origin": ORIGIN}))
    assert status == 200, body
    assert (body["status"], body["gatekeeper_id"], body["audit"]) == ("ok", GATEKEEPER_ID, "ok")
    assert body["allowed_ops"] == ["get", "list", "put", "audit"]
    assert body["vendor_kids"] == [VENDOR_KEY.kid]
    assert headers["Access-Control-Allow-Origin"] == ORIGIN


def test_it_signs_an_upload_and_a_read_of_the_stacks_bucket(container, stack, aws):
    data = b'{"message": "printer on fire"}'
    status, body, _ = container(function_url_event("/v1/sign", body={"ops": [
        {"op": "put", "key": "tickets/42/report.json", "size": len(data), "content_type": "application/json"}]},
        headers={"authorization": f"Bearer {grant(['put'])}", "origin": ORIGIN}))
    assert status == 200, body
    upload(body["results"][0], data)
    bucket = stack["resources"]["ReportBucket"]
    assert aws("s3").get_object(Bucket=bucket, Key="tickets/42/report.json")["Body"].read() == data
    status, body, _ = container(function_url_event("/v1/sign", b64=True, body={"ops": [
        {"op": "get", "key": "tickets/42/report.json"}]}, headers={"authorization": f"Bearer {grant(['get'])}"}))
    assert status == 200, body
    assert f"/{bucket}/tickets/42/report.json" in body["results"][0]["url"]
    assert download(body["results"][0]) == data


def audit_records(aws, stack, request_id):
    table = stack["resources"]["AuditTable"]
    pages = aws("dynamodb").get_paginator("scan").paginate(
        TableName=table, FilterExpression="request_id = :r", ExpressionAttributeValues={":r": {"S": request_id}})
    return [{name: next(iter(value.values())) for name, value in item.items()} for page in pages for item in page["Items"]]


def test_a_switched_off_delete_is_refused_and_audited_in_the_stacks_table(container, stack, aws):
    status, body, headers = container(function_url_event("/v1/sign", source_ip="203.0.113.50", body={"ops": [
        {"op": "delete", "key": "tickets/42/report.json"}]},
        headers={"authorization": f"Bearer {grant(['delete'], jti='cfn-delete-1')}"}))
    assert (status, body["error"]) == (403, "op_disabled")
    [record] = audit_records(aws, stack, headers["X-Request-Id"])
    assert (record["op"], record["key"], record["outcome"], record["reason"], record["status"]) == (
        "delete", "tickets/42/report.json", "deny", "op_disabled", "403")
    assert (record["client_ip"], record["jti"], record["sub"]) == ("203.0.113.50", "cfn-delete-1", "user:7")


def test_a_denied_address_is_refused_and_audited(container, stack, aws):
    status, body, headers = container(function_url_event("/v1/sign", source_ip="198.51.100.9", body={"ops": [
        {"op": "get", "key": "tickets/42/report.json"}]}, headers={"authorization": f"Bearer {grant(['get'])}"}))
    assert (status, body["error"]) == (403, "address_denied")
    # Denied for reads only (uploads are allowed from everywhere): refused at its op.
    [record] = audit_records(aws, stack, headers["X-Request-Id"])
    assert (record["op"], record["outcome"], record["reason"], record["client_ip"]) == (
        "get", "deny", "address_denied", "198.51.100.9")
