"""`allowed_ops`, the customer's switch for its gatekeeper's own powers, over real
HTTP: an op switched off is refused whatever the grant carries (403 `op_disabled`),
audited like every refusal, and health says which ops the gatekeeper performs."""

from __future__ import annotations

import pytest
import requests

from gatekeeper import config as config_module
from gatekeeper.errors import OPS, ConfigError

from .test_config import ENV_ALONE
from .test_sign import GET_42, assert_refused, sign

NO_DELETE = ["get", "list", "put", "audit"]


@pytest.fixture(scope="module")
def no_delete(start_gatekeeper, s3):
    return start_gatekeeper({"allowed_ops": NO_DELETE})


def test_by_default_health_lists_every_op(gatekeeper):
    assert gatekeeper.client.health()["allowed_ops"] == list(OPS)


def test_health_lists_only_the_allowed_ops_in_the_vocabularys_order(start_gatekeeper):
    gk = start_gatekeeper({"allowed_ops": ["list", "get"]})
    assert gk.client.health()["allowed_ops"] == ["get", "list"]


def test_a_switched_off_delete_is_refused_audited_and_leaves_the_object(no_delete, s3):
    s3.put_object(Bucket=no_delete.bucket, Key="tickets/42/a.txt", Body=b"kept")
    grant = no_delete.grant(ops=["get", "delete"])
    response = sign(no_delete, grant, [{"op": "delete", "key": "tickets/42/a.txt"}])
    rows = assert_refused(no_delete, response, 403, "op_disabled", op="delete")
    assert rows[0]["key"] == "tickets/42/a.txt"
    assert s3.get_object(Bucket=no_delete.bucket, Key="tickets/42/a.txt")["Body"].read() == b"kept"


def test_a_batch_with_a_switched_off_op_signs_nothing(no_delete):
    ops = GET_42 + [{"op": "delete", "key": "tickets/42/a.txt"}]
    response = sign(no_delete, no_delete.grant(ops=["get", "delete"]), ops)
    rows = assert_refused(no_delete, response, 403, "op_disabled", op="get")
    assert "url" not in response.text
    assert [r["op"] for r in rows] == ["get", "delete"]


def test_the_allowed_ops_still_work_with_the_same_kind_of_grant(no_delete):
    [result] = no_delete.client.sign(no_delete.grant(ops=["get", "delete"]), GET_42)
    assert result["url"].startswith("http")


def test_the_refused_grant_is_not_used_up(no_delete):
    # A grant carrying delete is single-use; refused for op_disabled, it was never claimed.
    grant = no_delete.grant(ops=["delete", "list"])
    assert sign(no_delete, grant, [{"op": "delete", "key": "tickets/42/b"}]).status_code == 403
    assert sign(no_delete, grant, [{"op": "list", "prefix": "tickets/42/"}]).status_code == 200


def test_a_switched_off_audit_search_is_refused_and_audited(start_gatekeeper):
    gk = start_gatekeeper({"allowed_ops": ["get"]})
    response = requests.post(gk.url + "/v1/audit/search", json={},
                             headers={"Authorization": f"Bearer {gk.grant(ops=['audit'])}"}, timeout=10)
    assert_refused(gk, response, 403, "op_disabled")


def test_op_disabled_comes_after_the_vendors_signature(no_delete):
    # Who has no valid grant learns nothing of the customer's switches.
    response = sign(no_delete, "not-a-grant", [{"op": "delete", "key": "tickets/42/a.txt"}])
    assert_refused(no_delete, response, 401, "malformed_grant")


def test_an_unknown_op_refuses_to_start_naming_the_key():
    with pytest.raises(ConfigError) as refused:
        config_module.load(None, env={**ENV_ALONE, "GATEKEEPER_ALLOWED_OPS": "get,erase"})
    assert refused.value.key == "allowed_ops"
    assert "'erase'" in str(refused.value)


def test_the_environment_gives_allowed_ops_comma_separated_or_as_json():
    for text in ("get,list", '["get", "list"]'):
        loaded = config_module.load(None, env={**ENV_ALONE, "GATEKEEPER_ALLOWED_OPS": text})
        assert loaded.allowed_ops == {"get", "list"}
