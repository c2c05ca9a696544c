"""The role deploy/aws/gatekeeper.yaml gives the gatekeeper, statement by statement:
exactly these actions on exactly these resources, for every AllowedOps and both
encryption modes; no "*" action or resource anywhere in it."""

from __future__ import annotations

import itertools

import pytest

from gatekeeper.errors import OPS

from .template import Stack

TICKETS = "${ReportBucket.Arn}/tickets/*"
BUCKET = "${ReportBucket.Arn}"
TABLE = "${AuditTable.Arn}"
VIA_S3 = {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

# What every deployment's role holds, whatever the switches.
ALWAYS = {
    "ReadBucketEncryption": ("s3:GetEncryptionConfiguration", BUCKET, None),
    "WriteAudit": (["dynamodb:DescribeTable", "dynamodb:PutItem"], TABLE, None),
    "OwnLogs": (["logs:CreateLogStream", "logs:PutLogEvents"], "${FunctionLogGroup.Arn}", None),
}
# What each op adds.
BY_OP = {
    "get": {"GetTickets": ("s3:GetObject", TICKETS, None)},
    "put": {"PutTickets": ("s3:PutObject", TICKETS, None)},
    # Erasure deletes every version (and marker) of a key by version id, listed first.
    "delete": {"DeleteTickets": (["s3:DeleteObject", "s3:DeleteObjectVersion"], TICKETS, None),
               "ListTicketVersions": ("s3:ListBucketVersions", BUCKET, {"StringLike": {"s3:prefix": "tickets/*"}})},
    "list": {"ListTickets": ("s3:ListBucket", BUCKET, {"StringLike": {"s3:prefix": "tickets/*"}})},
    "audit": {"SearchAudit": ("dynamodb:Query", TABLE, None)},
}
RELEASE_CLAIMS = {"ReleaseClaims": ("dynamodb:DeleteItem", TABLE,
                                    {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["jti#*"]}})}


def expected(ops, key=None) -> dict:
    statements = dict(ALWAYS)
    for op in ops:
        statements.update(BY_OP[op])
    if {"put", "delete"} & set(ops):
        statements.update(RELEASE_CLAIMS)
    if key and "get" in ops:
        statements["DecryptThroughS3"] = ("kms:Decrypt", key, VIA_S3)
    if key and "put" in ops:
        statements["EncryptThroughS3"] = ("kms:GenerateDataKey", key, VIA_S3)
    return statements


def actual(stack: Stack) -> dict:
    out = {}
    for sid, statement in stack.role_statements().items():
        assert statement["Effect"] == "Allow" and set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        out[sid] = (statement["Action"], statement["Resource"], statement.get("Condition"))
    return out


def test_with_every_op_and_sse_s3_the_role_holds_exactly_this():
    assert actual(Stack()) == expected(OPS)


def test_without_delete_the_role_cannot_delete_objects():
    stack = Stack(AllowedOps="get,list,put,audit")
    assert actual(stack) == expected(["get", "list", "put", "audit"])
    assert "s3:DeleteObject" not in str(stack.role_statements())
    assert "s3:ListBucketVersions" not in str(stack.role_statements())
    assert stack.environment()["GATEKEEPER_ALLOWED_OPS"] == "get,list,put,audit"


def test_a_read_only_gatekeeper_cannot_write_delete_or_release_claims():
    stack = Stack(AllowedOps="get,list")
    assert actual(stack) == expected(["get", "list"])
    assert "ReleaseClaims" not in stack.role_statements()


def test_with_a_new_kms_key_the_role_uses_that_key_through_s3_only():
    stack = Stack(Encryption="sse-kms")
    assert "ReportKey" in stack.resources
    assert actual(stack) == expected(OPS, key="${ReportKey.Arn}")
    assert stack.environment()["GATEKEEPER_STORAGE_KMS_KEY_ID"] == "${ReportKey.Arn}"


def test_with_an_existing_kms_key_no_key_is_created_and_the_role_uses_that_one():
    stack = Stack(Encryption="sse-kms", KmsKeyArn=KEY_ARN)
    assert "ReportKey" not in stack.resources
    assert actual(stack) == expected(OPS, key=KEY_ARN)


def test_kms_without_delete_and_put_keeps_only_decrypt():
    stack = Stack(Encryption="sse-kms", KmsKeyArn=KEY_ARN, AllowedOps="get,list,audit")
    assert actual(stack) == expected(["get", "list", "audit"], key=KEY_ARN)
    assert "kms:GenerateDataKey" not in str(stack.role_statements())


def test_sse_s3_needs_no_key_and_creates_none():
    stack = Stack()
    assert "ReportKey" not in stack.resources
    assert "kms:" not in str(stack.role_statements())
    assert "GATEKEEPER_STORAGE_KMS_KEY_ID" not in stack.environment()


@pytest.mark.parametrize("ops", [subset for n in range(1, len(OPS) + 1)
                                 for subset in itertools.combinations(OPS, n)], ids=",".join)
def test_every_allowed_ops_gives_exactly_its_permissions(ops):
    for encryption, key in (("sse-s3", None), ("sse-kms", KEY_ARN)):
        stack = Stack(AllowedOps=",".join(ops), Encryption=encryption, KmsKeyArn=key or "")
        assert actual(stack) == expected(ops, key=key), (ops, encryption)


@pytest.mark.parametrize("parameters", [{}, {"Encryption": "sse-kms"}, {"AllowedOps": "get"}])
def test_no_action_or_resource_is_a_wildcard(parameters):
    for statement in Stack(**parameters).role_statements().values():
        for field in ("Action", "Resource"):
            values = statement[field] if isinstance(statement[field], list) else [statement[field]]
            for value in values:
                assert value != "*" and not value.startswith("*"), (statement["Sid"], value)
                if field == "Action":
                    assert "*" not in value and ":" in value, value


def test_the_role_is_assumed_only_by_lambda_in_this_account():
    [statement] = Stack().resource("GatekeeperRole")["AssumeRolePolicyDocument"]["Statement"]
    assert statement == {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                         "Action": "sts:AssumeRole",
                         "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}
    assert "ManagedPolicyArns" not in Stack().resource("GatekeeperRole")
