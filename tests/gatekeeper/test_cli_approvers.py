"""`python -m gatekeeper approvers new-key | approve`, run as the customer runs them:
a key file only its owner may read, a block the gatekeeper's config takes, and an
approval the gatekeeper's own verifier accepts for the request, and only for it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time

import pytest

from gatekeeper import config as config_module
from gatekeeper.approvals import ApprovalVerifier
from gatekeeper.errors import Forbidden
from gatekeeper.grants import Grant
from tests import support

from .conftest import GATEKEEPER_ID, VENDOR_KEY

REQUEST = {"approval_id": "0b6c6c1e-approval", "gatekeeper_id": GATEKEEPER_ID, "subject": "support:9",
           "name": "Sam Support", "prefix": "tickets/42/", "ops": ["get", "list"], "duration": 86400,
           "reason_code": "bug", "reason": "printer on fire\x1b[2J", "ticket": "#42"}


def gatekeeper_cli(*args, stdin=""):
    return subprocess.run([support.PYTHON, "-m", "gatekeeper", "approvers", *args], cwd=support.ROOT, text=True,
                          input=stdin, capture_output=True, timeout=60)


@pytest.fixture
def approver(tmp_path):
    key_file = tmp_path / "alice.pem"
    made = gatekeeper_cli("new-key", "--id", "alice-laptop", "--out", str(key_file))
    assert made.returncode == 0, made.stderr
    return key_file, made.stdout


def config_with(tmp_path, block: str) -> config_module.Config:
    path = tmp_path / "gk.toml"
    path.write_text(f'gatekeeper_id = "{GATEKEEPER_ID}"\nissuer = "https://portal.test"\n'
                    f'[vendor_keys]\n{VENDOR_KEY.kid} = "{VENDOR_KEY.public_b64}"\n'
                    '[storage]\nbucket = "reports"\nregion = "us-east-1"\n' + block)
    return config_module.load(str(path), env={})


def support_grant(prefix="tickets/42/", now=None) -> Grant:
    now = int(now or time.time())
    return Grant(kid="k1", jti="j", sub="support:9", name="", iat=now, exp=now + 60, prefix=prefix,
                 ops=frozenset({"get", "list"}))


def test_new_key_writes_an_owner_only_key_and_prints_a_block_the_config_takes(tmp_path, approver):
    key_file, block = approver
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert "PRIVATE" not in block
    config = config_with(tmp_path, block)
    assert list(config.approver_keys) == ["alice-laptop"]


def test_new_key_never_overwrites_a_key(approver):
    key_file, _ = approver
    before = key_file.read_bytes()
    again = gatekeeper_cli("new-key", "--id", "alice-laptop", "--out", str(key_file))
    assert again.returncode == 1 and "cannot create" in again.stderr
    assert key_file.read_bytes() == before


def test_new_key_refuses_an_id_the_config_would_refuse(tmp_path):
    refused = gatekeeper_cli("new-key", "--id", "alice laptop", "--out", str(tmp_path / "k.pem"))
    assert refused.returncode == 1 and not (tmp_path / "k.pem").exists()


def test_approve_shows_the_request_signs_it_and_the_gatekeeper_accepts_it_for_that_ticket_only(tmp_path, approver):
    key_file, block = approver
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(REQUEST))
    signed = gatekeeper_cli("approve", str(request_file), "--key", str(key_file), "--id", "alice-laptop", "--yes")
    assert signed.returncode == 0, signed.stderr
    assert "support:9" in signed.stderr and "get, list under tickets/42/" in signed.stderr
    assert "24 h" in signed.stderr and "printer on fire?[2J" in signed.stderr  # no escape reaches the terminal
    verifier = ApprovalVerifier(config_with(tmp_path, block))
    approval = verifier.verify(signed.stdout.strip(), support_grant(), time.time())
    assert (approval.id, approval.approvers) == ("0b6c6c1e-approval", ("alice-laptop",))
    with pytest.raises(Forbidden) as refused:
        verifier.verify(signed.stdout.strip(), support_grant("tickets/43/"), time.time())
    assert refused.value.code == "approval_invalid"
    with pytest.raises(Forbidden) as refused:  # a day later, less the leeway
        verifier.verify(signed.stdout.strip(), support_grant(now=time.time() + 86400 + 60), time.time() + 86400 + 60)
    assert refused.value.code == "approval_expired"


def test_approve_asks_first_and_signs_nothing_without_a_yes(tmp_path, approver):
    key_file, _ = approver
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(REQUEST))
    declined = gatekeeper_cli("approve", str(request_file), "--key", str(key_file), "--id", "alice-laptop",
                              stdin="n\n")
    assert declined.returncode == 1 and declined.stdout == "" and "Sign this approval?" in declined.stderr
    accepted = gatekeeper_cli("approve", str(request_file), "--key", str(key_file), "--id", "alice-laptop",
                              stdin="y\n")
    assert accepted.returncode == 0 and accepted.stdout.count(".") == 2


@pytest.mark.parametrize("change, problem", [
    ({"ops": ["get", "put"]}, "covers only get, list"),
    ({"duration": 8 * 86400}, "at most 604800 seconds"),
    ({"subject": "user:7"}, "not for a support subject"),
    ({"approval_id": ""}, "'approval_id'"),
])
def test_approve_refuses_a_request_it_must_not_sign(tmp_path, approver, change, problem):
    key_file, _ = approver
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps({**REQUEST, **change}))
    refused = gatekeeper_cli("approve", str(request_file), "--key", str(key_file), "--id", "a", "--yes")
    assert refused.returncode == 1 and refused.stdout == "" and problem in refused.stderr


def test_approve_refuses_a_file_that_is_not_json(tmp_path, approver):
    key_file, _ = approver
    (tmp_path / "request.json").write_text("{nope")
    refused = gatekeeper_cli("approve", str(tmp_path / "request.json"), "--key", str(key_file), "--id", "a", "--yes")
    assert refused.returncode == 1 and "cannot approve" in refused.stderr
