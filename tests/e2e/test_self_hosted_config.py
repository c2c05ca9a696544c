"""Self-hosting from the portal's download, on the real stack: Alice downloads
gatekeeper.toml from her settings page in Chromium, a gatekeeper is started from
that file as it is (only its audit file moved out of /var/lib, through the
environment, as an operator may), and it answers a grant the portal hands Alice
for one of Acme's tickets with URLs that fetch the ticket's real objects."""

from __future__ import annotations

import os

import pytest
import requests

from tests import support
from tests.stack import log_in

pytestmark = pytest.mark.e2e


def test_a_gatekeeper_started_from_the_downloaded_config_serves_the_portals_grants(dualkey_stack, chromium,
                                                                                     tmp_path):
    acme = dualkey_stack.tenants["acme"]
    ticket = acme.tickets[0]
    context, page = log_in(chromium, dualkey_stack, "alice")
    try:
        page.goto(f"{dualkey_stack.portal_url}/settings/")
        with page.expect_download() as download_info:
            page.get_by_test_id("gatekeeper-toml-download").click()
        download = download_info.value
        assert download.suggested_filename == "gatekeeper-acme.toml"
        config_path = tmp_path / "gatekeeper.toml"
        download.save_as(config_path)
        # A real grant for Alice, as her report page asks for it (session and CSRF token).
        csrf = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
        answer = context.request.post(f"{dualkey_stack.portal_url}/api/v1/tickets/{ticket['id']}/grant",
                                      headers={"X-CSRFToken": csrf, "Accept": "application/json"})
        assert answer.status == 200, answer.text()
        grant = answer.json()["grant"]
    finally:
        context.close()

    text = config_path.read_text()
    assert "FILL-IN" not in text.replace("# FILL IN", "")  # the portal knew everything Acme needs
    port = support.free_port()
    url = f"http://127.0.0.1:{port}"
    proc = support.start_process(
        [support.PYTHON, "-m", "gatekeeper", "serve", "--config", str(config_path), "--port", str(port)],
        url + "/v1/health", env={"GATEKEEPER_AUDIT_URL": f"sqlite:///{tmp_path}/audit.db"},
        log_path=tmp_path / "gatekeeper.log")
    try:
        health = requests.get(url + "/v1/health", timeout=10).json()
        assert (health["gatekeeper_id"], health["bucket"], health["storage"]) == ("gk-acme", acme.bucket, "ok")
        signed = requests.post(url + "/v1/sign", timeout=10, headers={"Authorization": f"Bearer {grant}"},
                               json={"ops": [{"op": "list", "prefix": ticket["prefix"]}]})
        assert signed.status_code == 200, signed.text
        [listing] = signed.json()["results"]
        keys = sorted(item["key"] for item in listing["objects"])
        assert keys == sorted(dualkey_stack.stored_objects("acme", ticket["prefix"]))
        get = requests.post(url + "/v1/sign", timeout=10, headers={"Authorization": f"Bearer {grant}"},
                            json={"ops": [{"op": "get", "key": keys[0]}]}).json()["results"][0]
        assert requests.get(get["url"], timeout=10).content == dualkey_stack.stored_objects(
            "acme", ticket["prefix"])[keys[0]]
    finally:
        support.stop_process(proc)
    assert os.path.getsize(tmp_path / "audit.db") > 0  # its own audit log took the records
