"""A tenant admin erases one ticket in a real browser: the page's script takes a
single-use delete grant to the customer's gatekeeper, every version and delete marker
under the ticket's prefix goes from (versioned) storage, the receipt downloaded matches
what storage held, and the portal's servers never touched the customer's gatekeeper or
storage (the network guard's log stays empty)."""

from __future__ import annotations

import json

import pytest

from tests.stack import log_in

pytestmark = pytest.mark.e2e


def versions(stack, slug, prefix) -> list[tuple[str, str, int, bool]]:
    page = stack.s3().list_object_versions(Bucket=stack.tenants[slug].bucket, Prefix=prefix)
    return sorted([(v["Key"], v["VersionId"], v["Size"], False) for v in page.get("Versions", [])]
                  + [(m["Key"], m["VersionId"], 0, True) for m in page.get("DeleteMarkers", [])])


def test_alice_erases_a_ticket_from_her_browser_and_downloads_its_receipt(dualkey_stack, chromium):
    from gatekeeper_client.demo_report import build_demo_report

    stack = dualkey_stack
    ticket = stack.submit_files("acme", build_demo_report(411))
    prefix, bucket = ticket["prefix"], stack.tenants["acme"].bucket
    # An older version of one file and a key only a delete marker hides: erasure takes them too.
    first = ticket["files"][0]["name"]
    stack.s3().put_object(Bucket=bucket, Key=prefix + "left-over.log", Body=b"old")
    stack.s3().delete_object(Bucket=bucket, Key=prefix + "left-over.log")
    held = versions(stack, "acme", prefix)
    assert len(held) == len(ticket["files"]) + 2
    netguard_before = len(stack.netguard_attempts())

    context, page = log_in(chromium, stack, "alice")
    try:
        page.goto(f"{stack.portal_url}/tickets/{ticket['id']}/erase/")
        assert first in page.get_by_test_id("erase-files").text_content()
        page.get_by_test_id("erase-confirm").fill(str(ticket["number"] + 1))  # the wrong number
        page.get_by_test_id("erase-submit").click()
        page.get_by_test_id("erase-status").filter(has_text="to confirm").wait_for()  # the portal's refusal
        assert versions(stack, "acme", prefix) == held
        page.get_by_test_id("erase-confirm").fill(str(ticket["number"]))
        page.get_by_test_id("erase-submit").click()
        page.get_by_test_id("receipt-link").wait_for(state="visible", timeout=20_000)
        with page.expect_download() as download:
            page.get_by_test_id("receipt-link").click()
        receipt = json.loads(open(download.value.path(), "rb").read())
        page.goto(f"{stack.portal_url}/tickets/{ticket['id']}/")
        assert "by Alice" in page.get_by_test_id("tombstone-line").text_content()
    finally:
        context.close()

    assert versions(stack, "acme", prefix) == []
    assert sorted((o["key"], v["version_id"], v["size"], v["delete_marker"]) for o in receipt["objects"]
                  for v in o["versions"]) == held
    hashes = {o["key"]: o["manifest"]["sha256"] for o in receipt["objects"] if "manifest" in o}
    assert hashes == {prefix + f["name"]: f["sha256"] for f in ticket["files"]}
    [request_id] = receipt["request_ids"]
    # The customer's log: alice's erasure, from her browser, under the receipt's request id.
    alice = f"user:{stack.user_ids()['alice']}"
    rows = [r for r in stack.audit_rows("acme") if r["request_id"] == request_id]
    assert {(r["op"], r["sub"], r["outcome"]) for r in rows} == {("delete", alice, "allow")}
    assert {r["key"] for r in rows} == {prefix} | {key for key, *_ in held}
    # The receipt is kept at the vendor's own S3, as the portal wrote it.
    stored = stack.vendor_s3.list_objects_v2(Bucket="dualkey-receipts")["Contents"]
    assert any(o["Key"].endswith(f"{ticket['id'].replace('-', '')}.json") for o in stored)
    assert stack.netguard_attempts()[netguard_before:] == []
