"""No report content reaches the vendor.

A ticket is submitted with a unique marker planted in its subject and its message
(report.json: what the user typed; summary.json, which the ticket list reads) and
in a log, then viewed in a real browser (so the portal mints a grant and the page
runs its whole path), where a help-desk person writes a note holding the marker too. The marker must then be nowhere the vendor keeps anything — every
text and binary column of every table of the portal's database, the database's
files (SQLite) or `pg_dump` (PostgreSQL), the portal's logs — nor in the
gatekeepers' logs and audit stores, nor in the webhook events Acme's help-desk
system is sent about the ticket (a receiver on loopback); and it must be in the
customer's storage, so that the search could have found it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from gatekeeper_client.demo_report import PROBLEMS
from tests.stack import chromium, dualkey_stack, log_in, wait_until_loaded  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e


def sqlite_contents(path: Path) -> list[tuple[str, bytes]]:
    """(where, bytes) for the database files and for every value of every table."""
    found = [(f"file {p.name}", p.read_bytes())
             for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists()]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        db.text_factory = bytes  # compare raw bytes, whatever the column's declared type
        tables = [row[0].decode() for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                found += [(table, value if isinstance(value, bytes) else str(value).encode())
                          for value in row if value is not None]
    return found


def postgres_contents(url: str) -> list[tuple[str, bytes]]:
    """(where, bytes) for every value of every table, and pg_dump's output when it runs."""
    import psycopg

    found = []
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT table_schema, table_name FROM information_schema.tables "
                              "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
                              "('pg_catalog', 'information_schema')").fetchall()
        for schema, table in tables:
            # Every column as text (bytea as its hex form and as raw bytes).
            with conn.cursor(binary=False) as cursor:
                cursor.execute(f'SELECT * FROM "{schema}"."{table}"')
                for row in cursor:
                    for value in row:
                        if value is None:
                            continue
                        raw = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
                        found.append((table, raw))
    pg_dump = shutil.which("pg_dump")
    if pg_dump:
        dump = subprocess.run([pg_dump, "--data-only", "--no-owner", f"--dbname={url}"], capture_output=True)
        if dump.returncode == 0:
            found.append(("pg_dump", dump.stdout))
    return found


def database_contents(stack) -> list[tuple[str, bytes]]:
    url = stack.database_url
    if url.startswith("sqlite:///"):
        return sqlite_contents(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgres://", "postgresql://")):
        return postgres_contents(url)
    pytest.fail(f"no way to search the database at {url.split('://')[0]}://")


def file_contents(paths) -> list[tuple[str, bytes]]:
    return [(str(p), p.read_bytes()) for p in paths if p.exists()]


def occurrences(needle: str, haystack: list[tuple[str, bytes]]) -> list[str]:
    forms = {needle.encode(), needle.lower().encode(), needle.encode().hex().encode(),
             needle.encode("utf-16-le")}
    return [where for where, data in haystack if any(form in data or form in data.lower() for form in forms)]


ADD_WEBHOOK = """
from tenants.models import Tenant
from portal.webhooks.services import add_endpoint
print(add_endpoint(Tenant.objects.get(slug="acme"), "{url}", "no-content check", None)[0].id)
"""
# Disabled, not deleted: its deliveries stay in the database searched below; later
# tickets (other tests share the stack) send nothing.
DISABLE_WEBHOOK = ("from portal.webhooks.models import WebhookEndpoint; "
                   "WebhookEndpoint.objects.filter(id={id}).update(enabled=False)")


def test_report_content_never_reaches_the_vendor(dualkey_stack, chromium):  # noqa: F811  (fixtures)
    marker = f"DKMARKER{uuid.uuid4().hex}"
    # Acme's help-desk system is told of the ticket (portal/webhooks): what it is sent,
    # and the deliveries the portal logs, are searched for the marker too.
    from tests.portal.test_webhooks import Receiver

    receiver = Receiver()
    endpoint_id = dualkey_stack.manage("shell", "-c", ADD_WEBHOOK.format(url=receiver.url)).stdout.split()[-1]
    try:
        (ticket,) = dualkey_stack.submit("acme", marker=marker, seed=101)
    finally:
        dualkey_stack.manage("shell", "-c", DISABLE_WEBHOOK.format(id=int(endpoint_id)))
        receiver.close()
    sent = b"".join(body for _, body in receiver.requests)
    assert {headers["Dualkey-Event"] for headers, _ in receiver.requests} == {"ticket.created", "ticket.completed"}
    assert ticket["id"].encode() in sent and marker.encode() not in sent
    assert b"DKMARKER" not in sent

    context, page = log_in(chromium, dualkey_stack, "bob")
    try:
        page.goto(f"{dualkey_stack.portal_url}/tickets/{ticket['id']}/")
        wait_until_loaded(page)
        assert page.get_by_test_id("error-banner").is_hidden()
        assert marker in page.get_by_test_id("message").text_content()  # the browser has it...
        assert any(marker in text for text in page.get_by_test_id("log").all_text_contents())
        # What help-desk people type about a ticket is report data too: a note with the marker.
        page.get_by_test_id("note-input").fill(f"Spoke to the user about {marker}.")
        with page.expect_navigation():
            page.get_by_test_id("note-submit").click()
        wait_until_loaded(page)
        page.get_by_test_id("note").locator("[data-note-text]").wait_for()
        assert marker in page.get_by_test_id("note").text_content()
    finally:
        context.close()

    # ...and storage has it, so a search for it can succeed: in the report's
    # subject and message (report.json) and in a log,
    stored = dualkey_stack.stored_objects("acme", ticket["prefix"])
    marked = sorted(key for key, data in stored.items() if marker.encode() in data)
    notes = [key for key in marked if key.startswith(ticket["prefix"] + "notes/")]
    assert len(notes) == 1 and notes[0].endswith("/note.txt")  # the note, in the customer's storage
    assert sorted(set(marked) - set(notes)) == sorted(
        ticket["prefix"] + name for name in ("report.json", "summary.json", "application.log"))
    report = json.loads(stored[ticket["prefix"] + "report.json"])
    assert marker in report["subject"] and marker in report["message"]

    # ...and the searches below do see what the vendor does hold about this ticket,
    database = database_contents(dualkey_stack)
    ticket_id_forms = (ticket["id"], ticket["id"].replace("-", ""))  # PostgreSQL's uuid, SQLite's char(32)
    assert any(occurrences(form, database) for form in ticket_id_forms), "the ticket is not in the dumped database"
    report_sha = hashlib.sha256(stored[ticket["prefix"] + "report.json"]).hexdigest()
    assert occurrences(report_sha, database), "the manifest is not in the dumped database"
    # (the portal's log is live: a request it refuses now shows up in it)
    probe = f"/log-probe-{uuid.uuid4().hex}"
    assert requests.get(dualkey_stack.portal_url + probe, timeout=10).status_code == 404
    portal_logs = file_contents(dualkey_stack.portal_log_files())
    assert occurrences(probe, portal_logs), "the portal's log does not record what it does"

    # ...but the vendor holds none of the content: not the marker, nor any demo
    # subject at all (what the user typed, marked or not).
    assert occurrences(marker, database) == []
    assert occurrences(marker, portal_logs) == []
    for subject, _app, _error in PROBLEMS:
        assert occurrences(subject, database) == [], subject
        assert occurrences(subject, portal_logs) == [], subject

    # The customer's gatekeepers never see the bytes either (only keys and audit records).
    gatekeepers = file_contents(dualkey_stack.gatekeeper_log_files())
    for tenant in dualkey_stack.tenants.values():
        gatekeepers += file_contents([tenant.audit_path, Path(f"{tenant.audit_path}-wal")])
    assert gatekeepers
    assert occurrences(marker, gatekeepers) == []
