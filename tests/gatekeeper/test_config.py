"""A bad configuration refuses to start and names the offending key."""

from __future__ import annotations

import subprocess

import pytest

from gatekeeper import config as config_module
from gatekeeper.errors import ConfigError
from tests import support

from .conftest import VENDOR_KEY, base_config, toml_dumps


def good() -> dict:
    return base_config("http://127.0.0.1:9", "acme-reports", "sqlite:///tmp/x.db")


def load_dict(data: dict, env: dict | None = None, tmp_path=None):
    path = tmp_path / "gk.toml"
    path.write_text(toml_dumps(data))
    return config_module.load(str(path), env=env or {})


def test_a_good_config_loads(tmp_path):
    config = load_dict(good(), tmp_path=tmp_path)
    assert config.gatekeeper_id == "gk-test"
    assert config.vendor_key_ids == ("k1",)
    assert config.storage.encryption == "sse-s3"


@pytest.mark.parametrize("section,key,value,named", [
    (None, "gatekeeper_id", "", "gatekeeper_id"),
    (None, "presign_ttl", 0, "presign_ttl"),
    (None, "presign_ttl", "60", "presign_ttl"),
    (None, "max_grant_lifetime", 99999, "max_grant_lifetime"),
    (None, "allowed_origins", ["*"], "allowed_origins"),
    (None, "allowed_origins", ["https://portal.example/path"], "allowed_origins"),
    (None, "enabled", "yes", "enabled"),
    (None, "surprise", 1, "surprise"),
    ("storage", "bucket", "Not_A_Bucket", "storage.bucket"),
    ("storage", "region", "mars", "storage.region"),
    ("storage", "encryption", "rot13", "storage.encryption"),
    ("storage", "encryption", "sse-kms", "storage.kms_key_id"),
    ("acl", "allow", ["10.0.0.1/8"], "acl.allow"),
    ("acl", "deny", ["not-an-ip"], "acl.deny"),
    ("acl", "dney", [], "acl.dney"),
    ("acl", "countries", ["usa"], "acl.countries"),
    ("acl", "country_header", "CloudFront-Viewer-Country", "acl.country_header"),
    ("acl", "geoip_db", "/nonexistent.mmdb", "acl.geoip_db"),
    ("audit", "url", "mysql://x", "audit.url"),
    ("vendor_keys", "k1", "AAAA", "vendor_keys.k1"),
    ("vendor_keys", "k1", "!!!", "vendor_keys.k1"),
    ("revocation", "not_before", -1, "revocation.not_before"),
])
def test_a_bad_value_names_its_key(tmp_path, section, key, value, named):
    data = good()
    (data[section] if section else data)[key] = value
    with pytest.raises(ConfigError) as caught:
        load_dict(data, tmp_path=tmp_path)
    assert caught.value.key == named


def test_a_missing_required_key_is_named(tmp_path):
    data = good()
    del data["storage"]["bucket"]
    with pytest.raises(ConfigError, match="storage.bucket"):
        load_dict(data, tmp_path=tmp_path)


def test_no_vendor_key_refuses(tmp_path):
    data = good()
    data["vendor_keys"] = {}
    with pytest.raises(ConfigError, match="vendor_keys"):
        load_dict(data, tmp_path=tmp_path)


def test_the_environment_overrides_the_file(tmp_path):
    env = {
        "GATEKEEPER_PRESIGN_TTL": "30",
        "GATEKEEPER_ENABLED": "false",
        "GATEKEEPER_ACL_DENY": "203.0.113.0/24, 198.51.100.7/32",
        "GATEKEEPER_ACL_UPLOAD_ALLOW": '["10.0.0.0/8"]',
        "GATEKEEPER_REVOCATION_SUBJECTS": "user:13",
        "GATEKEEPER_STORAGE_ENCRYPTION": "sse-kms",
        "GATEKEEPER_STORAGE_KMS_KEY_ID": "alias/reports",
    }
    config = load_dict(good(), env=env, tmp_path=tmp_path)
    assert config.presign_ttl == 30 and config.enabled is False
    assert [str(n) for n in config.acl.deny] == ["203.0.113.0/24", "198.51.100.7/32"]
    assert [str(n) for n in config.upload_acl.allow] == ["10.0.0.0/8"]
    assert config.revoked_subjects == {"user:13"}
    assert config.storage.kms_key_id == "alias/reports"


def test_vendor_keys_from_the_environment_replace_the_files(tmp_path):
    # As every other key: the environment wins. A key rotated out by setting the
    # variable must not stay trusted because the file still lists it.
    config = load_dict(good(), env={"GATEKEEPER_VENDOR_KEYS": f"k2:{VENDOR_KEY.public_b64}"},
                       tmp_path=tmp_path)
    assert config.vendor_key_ids == ("k2",)


ENV_ALONE = {
    "GATEKEEPER_GATEKEEPER_ID": "gk-env", "GATEKEEPER_ISSUER": "https://portal.example",
    "GATEKEEPER_VENDOR_KEYS": f'{{"k1": "{VENDOR_KEY.public_b64}"}}',
    "GATEKEEPER_STORAGE_BUCKET": "acme-reports", "GATEKEEPER_STORAGE_REGION": "eu-west-1",
    "GATEKEEPER_AUDIT_URL": "dynamodb://acme-audit",
}


def test_a_config_from_the_environment_alone_loads():
    config = config_module.load(None, env=ENV_ALONE)
    assert config.gatekeeper_id == "gk-env" and config.audit_url == "dynamodb://acme-audit"


@pytest.mark.parametrize("key", ["acl.deny", "acl.allow", "acl.trusted_proxies", "acl.upload.deny"])
def test_an_ipv4_mapped_network_is_refused(key):
    # Clients are compared as IPv4 (::ffff:203.0.113.9 is 203.0.113.9), so a rule
    # written as ::ffff:203.0.113.0/120 would never match anyone.
    with pytest.raises(ConfigError) as caught:
        config_module.load(None, env={**ENV_ALONE, "GATEKEEPER_" + key.replace(".", "_").upper():
                                      "::ffff:203.0.113.0/120"})
    assert caught.value.key == key


@pytest.mark.parametrize("name", ["GATEKEEPER_ACL_DNEY", "GATEKEEPER_ENABLE", "GATEKEEPER_REVOCATION_SUBJECT"])
def test_a_misspelt_environment_variable_refuses_to_start(name):
    # The environment is the whole configuration on Lambda: a misspelt deny list
    # or kill switch must not be ignored, any more than in the file.
    with pytest.raises(ConfigError) as caught:
        config_module.load(None, env={**ENV_ALONE, name: "203.0.113.0/24"})
    assert caught.value.key == name


def test_gatekeeper_config_is_the_lambdas_file_path_not_a_key():
    assert config_module.load(None, env={**ENV_ALONE, "GATEKEEPER_CONFIG": ""}).gatekeeper_id == "gk-env"


def test_a_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError, match="GATEKEEPER_PRESIGN_TTL"):
        config_module.load(None, env={"GATEKEEPER_PRESIGN_TTL": "soon"})


def test_serve_with_a_bad_config_exits_non_zero_naming_the_key(tmp_path):
    data = good()
    data["acl"]["deny"] = ["300.1.1.1/32"]
    path = tmp_path / "gk.toml"
    path.write_text(toml_dumps(data))
    result = subprocess.run([support.PYTHON, "-m", "gatekeeper", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=30, cwd=support.ROOT)
    assert result.returncode == 2
    assert "acl.deny" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_a_missing_file_exits_non_zero(tmp_path):
    result = subprocess.run([support.PYTHON, "-m", "gatekeeper", "serve", "--config", str(tmp_path / "no.toml")],
                            capture_output=True, text=True, timeout=30, cwd=support.ROOT)
    assert result.returncode == 2 and "file not found" in result.stderr


def test_serve_with_an_unusable_audit_store_exits_non_zero_naming_it(tmp_path):
    data = good()
    data["audit"]["url"] = f"sqlite:///{tmp_path}/no-such-dir/audit.db"
    path = tmp_path / "gk.toml"
    path.write_text(toml_dumps(data))
    result = subprocess.run([support.PYTHON, "-m", "gatekeeper", "serve", "--config", str(path),
                             "--port", str(support.free_port())],
                            capture_output=True, text=True, timeout=30, cwd=support.ROOT)
    assert result.returncode == 2
    assert "audit.url" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("url, ok", [
    ("sqlite:///var/lib/gatekeeper/audit.db", True), ("sqlite:////var/lib/audit.db", True),
    ("sqlite:audit.db", True), ("dynamodb://gk-audit", True),
    ("sqlite:///", False), ("sqlite:", False), ("sqlite://host/x.db", False), ("postgres://x/y", False),
    ("dynamodb://", False),
])
def test_audit_url_forms(url, ok, tmp_path):
    data = base_config("http://127.0.0.1:9", "acme-reports", url)
    if ok:
        assert load_dict(data, tmp_path=tmp_path).audit_url == url
    else:
        with pytest.raises(ConfigError, match="audit.url"):
            load_dict(data, tmp_path=tmp_path)


def test_the_default_audit_file_is_relative_to_the_working_directory():
    assert config_module.sqlite_path(config_module.Config.__dataclass_fields__["audit_url"].default) == "gatekeeper-audit.db"


# --- [approvers] ------------------------------------------------------------------------

def _approver_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def test_approver_keys_load_as_a_jwk_table_json_text_or_pem(tmp_path):
    import json

    from cryptography.hazmat.primitives import serialization

    from gatekeeper.cli import public_jwk

    keys = [_approver_key() for _ in range(3)]
    jwk = public_jwk(keys[0].public_key())
    pem = keys[2].public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    table = ", ".join(f'{k} = "{v}"' for k, v in jwk.items())
    path = tmp_path / "gk.toml"
    path.write_text(toml_dumps(good()) + "\n[approvers]\nrequired = 2\n[approvers.keys]\n"
                    f"alice = {{ {table} }}\nbob = '{json.dumps(public_jwk(keys[1].public_key()))}'\n"
                    f'carol = """{pem}"""\n')
    config = config_module.load(str(path), env={})
    assert sorted(config.approver_keys) == ["alice", "bob", "carol"] and config.approvers_required == 2
    assert config.approver_keys["carol"].public_numbers() == keys[2].public_key().public_numbers()
    # The environment replaces the whole table, as GATEKEEPER_VENDOR_KEYS does [vendor_keys].
    env = {"GATEKEEPER_APPROVERS_KEYS": json.dumps({"dave": jwk}), "GATEKEEPER_APPROVERS_REQUIRED": "1"}
    assert list(config_module.load(str(path), env=env).approver_keys) == ["dave"]


def test_no_approver_keys_is_a_valid_config_that_no_approval_passes(tmp_path):
    config = load_dict(good(), tmp_path=tmp_path)
    assert (dict(config.approver_keys), config.approvers_required, config.revoked_approvals) == ({}, 1, frozenset())


@pytest.mark.parametrize("value, problem", [
    ('"not a key"', "must be a JWK (table or JSON) or a PEM public key"),
    ("{ kty = \"EC\", crv = \"P-256\", x = \"AA\", y = \"AA\" }", "not a valid ECDSA P-256 public key"),
    ("{ kty = \"RSA\", n = \"AQAB\", e = \"AQAB\" }", "not a valid ECDSA P-256 public key"),
    ('"""-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"""', "not a valid ECDSA P-256 public key"),
    (42, "must be a JWK"),
])
def test_a_bad_approver_key_refuses_to_start_naming_it(tmp_path, value, problem):
    path = tmp_path / "gk.toml"
    path.write_text(toml_dumps(good()) + f"\n[approvers.keys]\nalice = {value}\n")
    with pytest.raises(ConfigError) as refused:
        config_module.load(str(path), env={})
    assert refused.value.key == "approvers.keys.alice" and problem in str(refused.value)


def test_a_private_approver_key_refuses_to_start(tmp_path):
    import json

    from jwt.algorithms import ECAlgorithm

    private_jwk = ECAlgorithm.to_jwk(_approver_key(), as_dict=True)
    path = tmp_path / "gk.toml"
    path.write_text(toml_dumps(good()) + f"\n[approvers.keys]\nalice = '{json.dumps(private_jwk)}'\n")
    with pytest.raises(ConfigError, match="private key"):
        config_module.load(str(path), env={})


def test_two_required_approvers_need_two_keys(tmp_path):
    with pytest.raises(ConfigError, match="approvers.required"):
        load_dict({**good(), "approvers": {"required": 2}}, tmp_path=tmp_path)
    with pytest.raises(ConfigError, match="approvers.required"):
        load_dict({**good(), "approvers": {"required": 3}}, tmp_path=tmp_path)
