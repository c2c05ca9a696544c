"""deploy/aws/gatekeeper.yaml, resource by resource, as the issue lists them (what
the template says; tests/deploy/test_moto_deploy.py deploys it)."""

from __future__ import annotations

from gatekeeper import config as config_module
from gatekeeper.config import ENV_VENDOR_KEYS, KEYS_BY_ENV

from .template import Stack, load


def test_it_is_plain_cloudformation():
    template = load()
    assert "Transform" not in template
    assert all(not body["Type"].startswith("AWS::Serverless") for body in template["Resources"].values())


def test_the_bucket_is_private_versioned_encrypted_and_kept():
    stack = Stack()
    bucket = stack.resource("ReportBucket")
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True)
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert bucket["BucketEncryption"] == {"ServerSideEncryptionConfiguration": [
        {"BucketKeyEnabled": False, "ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
    for name in ("ReportBucket", "AuditTable"):
        assert stack.resources[name]["DeletionPolicy"] == "Retain"
        assert stack.resources[name]["UpdateReplacePolicy"] == "Retain"


def test_sse_kms_uses_the_key_with_bucket_keys():
    for parameters, key in (({}, "${ReportKey.Arn}"), ({"KmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/k-1"},
                                                       "arn:aws:kms:eu-west-1:123456789012:key/k-1")):
        bucket = Stack(Encryption="sse-kms", **parameters).resource("ReportBucket")
        assert bucket["BucketEncryption"] == {"ServerSideEncryptionConfiguration": [
            {"BucketKeyEnabled": True,
             "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]}
    stack = Stack(Encryption="sse-kms")
    assert stack.resource("ReportKey")["EnableKeyRotation"] is True
    assert stack.resources["ReportKey"]["DeletionPolicy"] == "Retain"


def test_the_bucket_policy_refuses_every_request_without_tls():
    policy = Stack().resource("ReportBucketPolicy")
    assert policy["Bucket"] == "${ReportBucket}"
    assert policy["PolicyDocument"]["Statement"] == [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": ["${ReportBucket.Arn}", "${ReportBucket.Arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]


def test_cors_allows_exactly_the_portal_origin():
    bucket = Stack(PortalOrigin="https://help.acme.example").resource("ReportBucket")
    [rule] = bucket["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedOrigins"] == ["https://help.acme.example"]
    assert rule["AllowedMethods"] == ["GET", "POST"]


def test_expiry_is_optional_and_old_versions_expire():
    rules = Stack().resource("ReportBucket")["LifecycleConfiguration"]["Rules"]
    assert [rule["Id"] for rule in rules] == ["tidy-versions-and-uploads"]
    assert rules[0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": "30"}
    rules = Stack(ObjectExpiryDays="90").resource("ReportBucket")["LifecycleConfiguration"]["Rules"]
    assert rules[1] == {"Id": "expire-reports", "Status": "Enabled", "Prefix": "tickets/", "ExpirationInDays": "90"}


def test_the_audit_table_has_init_audits_schema_pitr_and_ttl():
    table = Stack().resource("AuditTable")
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"},
                                             {"AttributeName": "sk", "AttributeType": "S"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_function_is_arm64_python_312_with_its_own_log_group_and_reserved_concurrency():
    stack = Stack(ReservedConcurrency="7", LogRetentionDays="30")
    function = stack.resource("GatekeeperFunction")
    assert function["Architectures"] == ["arm64"] and function["Runtime"] == "python3.12"
    assert function["Handler"] == "gatekeeper.lambda_handler.handler"
    assert function["ReservedConcurrentExecutions"] == "7"
    assert function["LoggingConfig"]["LogGroup"] == "${FunctionLogGroup}"
    assert function["Code"] == {"S3Bucket": "artifacts", "S3Key": "gk.zip"}
    assert stack.resource("FunctionLogGroup")["RetentionInDays"] == "30"


def test_the_function_url_has_no_cors_and_both_public_permissions():
    stack = Stack()
    assert stack.resource("GatekeeperUrl") == {"TargetFunctionArn": "${GatekeeperFunction.Arn}", "AuthType": "NONE"}
    permissions = {stack.resource(name)["Action"]: stack.resource(name)
                   for name in ("UrlInvokePermission", "UrlFunctionPermission")}
    assert permissions == {
        "lambda:InvokeFunctionUrl": {"FunctionName": "${GatekeeperFunction}", "Action": "lambda:InvokeFunctionUrl",
                                     "Principal": "*", "FunctionUrlAuthType": "NONE"},
        "lambda:InvokeFunction": {"FunctionName": "${GatekeeperFunction}", "Action": "lambda:InvokeFunction",
                                  "Principal": "*", "InvokedViaFunctionUrl": True},
    }


def test_create_function_url_false_leaves_the_url_and_its_permissions_out():
    stack = Stack(CreateFunctionUrl="false")
    assert not {"GatekeeperUrl", "UrlInvokePermission", "UrlFunctionPermission"} & set(stack.resources)
    assert "GatekeeperFunction" in stack.resources


def test_the_environment_is_a_configuration_the_gatekeeper_accepts():
    stack = Stack(DenyIps="198.51.100.0/24", Countries="DE,FR", AllowedOps="get,list",
                  AuditCursorSecret="c" * 40)
    env = stack.environment()
    assert set(env) <= set(KEYS_BY_ENV) | {ENV_VENDOR_KEYS}
    env = {**env, "GATEKEEPER_STORAGE_BUCKET": "acme-reports", "GATEKEEPER_AUDIT_URL": "dynamodb://acme-audit"}
    loaded = config_module.load(None, env=env)
    assert loaded.gatekeeper_id == "gk-acme" and loaded.issuer == "https://portal.example"
    assert loaded.allowed_origins == {"https://portal.example"}
    assert loaded.allowed_ops == {"get", "list"} and loaded.countries == {"DE", "FR"}
    assert [str(n) for n in loaded.acl.deny] == ["198.51.100.0/24"]
    assert loaded.audit_cursor_secret == "c" * 40 and loaded.storage.region == "us-east-1"


def test_the_outputs_are_what_the_admin_pastes_back():
    outputs = load()["Outputs"]
    assert {"GatekeeperUrl", "GatekeeperId", "StorageOrigin", "Bucket"} <= set(outputs)
    stack = Stack(attributes={"GatekeeperUrl.FunctionUrl": "https://abc123.lambda-url.eu-west-1.on.aws/"})
    # The portal and the agents' pins compare it as an origin: no trailing "/".
    assert stack.resolve(outputs["GatekeeperUrl"]["Value"]) == "https://abc123.lambda-url.eu-west-1.on.aws"
    # The origin the gatekeeper's presigner uses in us-east-1 (the global host).
    assert stack.resolve(outputs["StorageOrigin"]["Value"]) == "https://${ReportBucket.DomainName}"


def test_the_parameters_cover_what_the_portal_knows():
    assert {"GatekeeperId", "PortalOrigin", "VendorKeys", "AllowedOps", "AllowIps", "DenyIps", "UploadAllowIps",
            "UploadDenyIps", "Countries", "Encryption", "KmsKeyArn", "AuditRetentionDays", "ObjectExpiryDays",
            "CodeBucket", "CodeKey", "ReservedConcurrency", "LogRetentionDays", "Architecture"} <= set(load()["Parameters"])


def test_cloudformation_refuses_malformed_parameters_before_anything_is_created():
    import re

    parameters = load()["Parameters"]
    refused = {"AllowIps": "everyone", "DenyIps": "10.0.0.1; rm", "VendorKeys": "k1:short",
               "AllowedOps": "get,erase", "Countries": "de", "PortalOrigin": "https://portal.example/path",
               "BucketName": "has.dots.in.it", "KmsKeyArn": "alias/mine", "GatekeeperId": "a b"}
    for name, value in refused.items():
        assert not re.fullmatch(parameters[name]["AllowedPattern"], value), name
    accepted = {"AllowIps": "10.0.0.0/8,2001:db8::/32", "DenyIps": "", "AllowedOps": "get"}
    for name, value in accepted.items():
        assert re.fullmatch(parameters[name]["AllowedPattern"], value), name


IDENTITY = {"IdentityIssuer": "https://login.acme.example/realms/acme", "IdentityAudience": "dualkey-pages",
            "IdentityJwksUrl": "https://login.acme.example/realms/acme/protocol/openid-connect/certs"}


def loaded_config(stack: Stack):
    env = {**stack.environment(), "GATEKEEPER_STORAGE_BUCKET": "acme-reports",
           "GATEKEEPER_AUDIT_URL": "dynamodb://acme-audit"}
    return config_module.load(None, env=env)


def test_identity_is_off_and_absent_from_the_environment_unless_its_parameters_are_set():
    env = Stack().environment()
    assert not [name for name in env if name.startswith("GATEKEEPER_IDENTITY_")]
    assert loaded_config(Stack()).identity is None


def test_the_identity_parameters_reach_the_function_as_an_identity_the_gatekeeper_accepts():
    stack = Stack(**IDENTITY, IdentityMaxAge="3600")
    env = stack.environment()
    assert {name: value for name, value in env.items() if name.startswith("GATEKEEPER_IDENTITY_")} == {
        "GATEKEEPER_IDENTITY_ISSUER": IDENTITY["IdentityIssuer"],
        "GATEKEEPER_IDENTITY_AUDIENCE": "dualkey-pages",
        "GATEKEEPER_IDENTITY_JWKS_URL": IDENTITY["IdentityJwksUrl"],
        "GATEKEEPER_IDENTITY_MAX_AGE": "3600"}
    identity = loaded_config(stack).identity
    assert (identity.issuer, identity.audience, identity.jwks_url, identity.max_age) == (
        IDENTITY["IdentityIssuer"], "dualkey-pages", IDENTITY["IdentityJwksUrl"], 3600)
    assert identity.claim == "email" and set(identity.ops) == {"get", "list", "delete", "audit"}


def failed_rules(stack: Stack) -> list[str]:
    """The template's Rules as CloudFormation checks them before creating anything."""
    failed = []
    for rule in stack.template["Rules"].values():
        if "RuleCondition" not in rule or stack._condition(rule["RuleCondition"]):
            failed += [a["AssertDescription"] for a in rule["Assertions"] if not stack._condition(a["Assert"])]
    return failed


def test_a_partial_identity_is_refused_before_anything_is_created():
    assert failed_rules(Stack()) == [] and failed_rules(Stack(**IDENTITY)) == []
    for left_out in IDENTITY:
        partial = {name: value for name, value in IDENTITY.items() if name != left_out}
        failed = failed_rules(Stack(**partial))
        assert len(failed) == 1 and left_out in failed[0], (left_out, failed)
    assert len(failed_rules(Stack(IdentityAudience="dualkey-pages"))) == 1


def test_the_identity_parameters_refuse_what_is_not_an_https_url_or_a_client_id():
    import re

    parameters = load()["Parameters"]
    refused = {"IdentityIssuer": ["http://login.example", "https://login.example/a b", "login.example",
                                  "https://login.example#frag"],
               "IdentityJwksUrl": ["http://login.example/certs", "https://login.example/certs#x", "ftp://x"],
               "IdentityAudience": ["a b", "x" * 201, "a,\"b"]}
    for name, values in refused.items():
        for value in values:
            assert not re.fullmatch(parameters[name]["AllowedPattern"], value), (name, value)
    accepted = {"IdentityIssuer": ["", "https://login.example", "https://login.example/", IDENTITY["IdentityIssuer"],
                                   "https://login.microsoftonline.com/0b1c-22/v2.0", "https://accounts.google.com"],
                "IdentityJwksUrl": ["", IDENTITY["IdentityJwksUrl"], "https://www.googleapis.com/oauth2/v3/certs",
                                    "https://idp.example:8443/keys?format=jwks"],
                "IdentityAudience": ["", "dualkey-pages", "123-abc.apps.googleusercontent.com",
                                     "0oa1b2c3d4E5f6G7h8i9"]}
    for name, values in accepted.items():
        for value in values:
            assert re.fullmatch(parameters[name]["AllowedPattern"], value), (name, value)
