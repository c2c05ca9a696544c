"""Whatever a client sends, the answer is a JSON 4xx with a reason or a 200:
never a 500. Hypothesis drives Gatekeeper.handle in-process (the same code the
HTTP server and the Lambda adapter call) with hostile bodies, headers and grants."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatekeeper import config as config_module
from gatekeeper.app import Gatekeeper, Request

from .conftest import GATEKEEPER_ID, ISSUER, VENDOR_KEY, base_config, toml_dumps

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
op_like = st.fixed_dictionaries(
    {"op": st.sampled_from(["get", "list", "put", "delete", "audit", "x", 1, None])},
    optional={"key": st.one_of(st.text(max_size=30).map(lambda s: "tickets/42/" + s), json_values),
              "prefix": st.one_of(st.just("tickets/42/"), st.text(max_size=20), json_values),
              "size": st.one_of(st.integers(), json_values),
              "content_type": st.one_of(st.just("image/png"), st.text(max_size=20), json_values)},
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(op_like, max_size=4).map(lambda ops: json.dumps({"ops": ops}).encode()),
)


def _gatekeeper(tmp_path, moto_url, s3) -> Gatekeeper:
    s3.create_bucket(Bucket="fuzz-reports")
    path = tmp_path / "gk.toml"
    path.write_text(toml_dumps(base_config(moto_url, "fuzz-reports", f"sqlite:///{tmp_path}/audit.db")))
    return Gatekeeper(config_module.load(str(path), env={}))


def test_nothing_a_client_sends_is_a_500(tmp_path, moto_url, s3):
    gk = _gatekeeper(tmp_path, moto_url, s3)
    from gatekeeper_client.grants import mint_grant

    grants = [mint_grant(VENDOR_KEY, issuer=ISSUER, audience=GATEKEEPER_ID, subject="user:1",
                         prefix="tickets/42/", ops=ops) for ops in (["get", "list"], ["put", "delete"], ["audit"])]

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        body=bodies,
        path=st.sampled_from(["/v1/sign", "/v1/audit/search", "/v1/health", "/v1/x", ""]),
        method=st.sampled_from(["POST", "GET", "OPTIONS", "PUT"]),
        auth=st.one_of(st.sampled_from(grants).map(lambda g: f"Bearer {g}"), st.text(max_size=60)),
        peer=st.sampled_from(["127.0.0.1", "::1", "::ffff:10.0.0.1", "garbage", ""]),
        forwarded=st.one_of(st.none(), st.text(max_size=60)),
        origin=st.one_of(st.none(), st.text(max_size=30)),
    )
    def check(body, path, method, auth, peer, forwarded, origin):
        headers = {"authorization": auth}
        if forwarded is not None:
            headers["x-forwarded-for"] = forwarded
        if origin is not None:
            headers["origin"] = origin
        response = gk.handle(Request(method, path, headers, body, peer))
        assert response.status in (200, 204, 400, 401, 403, 404, 405, 413), response.body
        if response.status >= 400:
            assert set(response.body) == {"error", "message"} and response.body["error"]
        json.loads(response.encoded() or b"null")

    check()
