"""The agent's upload path: what the desktop help-desk button does, as a library
function and a command-line tool.

    create the ticket at the portal with the file manifest (names, sizes, types, SHA-256)
    → one /v1/sign call at the tenant's gatekeeper with a `put` op per file
    → one presigned POST per file, straight to the tenant's storage
    → tell the portal the ticket is complete

Report content goes only to storage; the portal sees the manifest. That
includes the subject: it is what the user typed, so it goes in report.json, not
to the portal. The agent token is a secret: it is sent only to the portal and
never printed.

    python -m gatekeeper_client.agent submit --portal URL FILE...
    python -m gatekeeper_client.agent demo --portal URL [--count N] [--marker M]
(the token comes from --token or, better, from DUALKEY_AGENT_TOKEN: a command
line is visible to other users of the machine.)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from gatekeeper_client.client import GatekeeperClient, GatekeeperRefused, upload

TOKEN_ENV = "DUALKEY_AGENT_TOKEN"
TIMEOUT = 30
# Mirrors portal/tickets/manifest.py (which this Django-free package cannot import).
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")   # used with fullmatch
MAX_FILES = 100
MAX_FILE_SIZE = 100 * 1024 * 1024
CONTENT_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
    ".json": "application/json", ".txt": "text/plain", ".log": "text/plain",
    ".csv": "text/csv",
}
ALLOWED_TYPES = set(CONTENT_TYPES.values()) | {"application/octet-stream"}

File = tuple[str, bytes, str]


class SubmitFailed(Exception):
    """One step of a submission was refused or failed. `step` is create, sign,
    upload or complete; `code`/`message` are the refusing service's own words."""

    def __init__(self, step: str, message: str, status: int | None = None, code: str | None = None):
        self.step, self.message, self.status, self.code = step, message, status, code
        where = " ".join(filter(None, [f"HTTP {status}" if status else None, code]))
        super().__init__(f"{step}: {where}: {message}" if where else f"{step}: {message}")


def check_files(files: list[File]) -> None:
    """Refuse locally what the portal would refuse, before anything is sent."""
    if not files:
        raise SubmitFailed("manifest", "a ticket needs at least one file", code="no_files")
    if len(files) > MAX_FILES:
        raise SubmitFailed("manifest", f"at most {MAX_FILES} files a ticket", code="too_many_files")
    seen = set()
    for name, data, content_type in files:
        if not NAME_RE.fullmatch(name):
            raise SubmitFailed("manifest", f"file name not allowed: {name!r}", code="bad_name")
        if len(data) > MAX_FILE_SIZE:
            raise SubmitFailed("manifest", f"{name} is over {MAX_FILE_SIZE // 2**20} MiB", code="too_large")
        if name in seen:
            raise SubmitFailed("manifest", f"file name repeated: {name!r}", code="bad_name")
        if content_type not in ALLOWED_TYPES:
            raise SubmitFailed("manifest", f"content type not allowed: {content_type!r}",
                               code="bad_content_type")
        seen.add(name)


def manifest(files: list[File]) -> list[dict[str, Any]]:
    return [{"name": name, "size": len(data), "content_type": content_type,
             "sha256": hashlib.sha256(data).hexdigest()} for name, data, content_type in files]


def submit_ticket(portal_url: str, token: str, files: list[File],
                  session: requests.Session | None = None, timeout: float = TIMEOUT) -> dict:
    """Submit one ticket; returns the portal's ticket (id, number, prefix, files,
    status "complete"). Raises SubmitFailed naming the step that failed; a ticket
    whose upload failed stays incomplete at the portal."""
    check_files(files)
    http = session or requests.Session()
    portal_url = portal_url.rstrip("/")
    auth = {"Authorization": f"Token {token}"}

    ticket = _portal_post(http, "create", f"{portal_url}/api/v1/tickets",
                          {"files": manifest(files)}, auth, timeout, (201,))
    missing = {"id", "prefix", "gatekeeper_url", "grant"} - ticket.keys()
    if missing:
        raise SubmitFailed("create", f"the portal's answer lacks {sorted(missing)}", code="bad_response")
    prefix = ticket["prefix"]
    ops = [{"op": "put", "key": prefix + name, "size": len(data), "content_type": content_type}
           for name, data, content_type in files]
    try:
        results = GatekeeperClient(ticket["gatekeeper_url"], http, timeout).sign(ticket["grant"], ops)
    except GatekeeperRefused as refused:
        raise SubmitFailed("sign", refused.message, refused.status, refused.code) from None
    except requests.RequestException as exc:
        raise SubmitFailed("sign", "could not reach the gatekeeper: "
                           f"{_reason(exc, ticket['gatekeeper_url'])}",
                           code="unreachable") from None
    # Results come back in op order; check it, so no file goes to another's key.
    if [r.get("key") for r in results] != [op["key"] for op in ops]:
        raise SubmitFailed("sign", "the gatekeeper's results do not match the files sent",
                           code="bad_response")

    for (name, data, _type), result in zip(files, results):
        try:
            upload(result, data, timeout=max(timeout, 60), session=http)
        except GatekeeperRefused as refused:
            raise SubmitFailed("upload", f"{name}: {refused.message}", refused.status,
                               refused.code) from None
        except requests.RequestException as exc:
            raise SubmitFailed("upload", f"{name}: could not reach storage: "
                               f"{_reason(exc, result['url'])}",
                               code="unreachable") from None

    done = _portal_post(http, "complete", f"{portal_url}/api/v1/tickets/{ticket['id']}/complete",
                        {}, auth, timeout, (200,))
    return {**{k: v for k, v in ticket.items() if k != "grant"}, "status": done.get("status")}


def _portal_post(http, step, url, body, headers, timeout, ok) -> dict:
    try:
        response = http.post(url, json=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise SubmitFailed(step, f"could not reach the portal: {_reason(exc, url)}",
                           code="unreachable") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code not in ok or not isinstance(answer, dict):
        code = answer.get("error") if isinstance(answer, dict) else None
        raise SubmitFailed(step, _portal_message(answer, response), response.status_code,
                           code if isinstance(code, str) else None)
    return answer


def _portal_message(answer: Any, response: requests.Response) -> str:
    # DRF answers {"detail": ...}; our own errors {"error", "message"}; field
    # errors {"field": ["..."]}. Show whichever is there, briefly.
    if isinstance(answer, dict):
        for key in ("message", "detail"):
            if isinstance(answer.get(key), str):
                return answer[key]
        return "; ".join(f"{k}: {v}" for k, v in answer.items())[:300] or response.reason
    return response.reason or "unexpected answer"


def _reason(exc: Exception, url: str) -> str:
    # requests' messages are long chains that may quote a presigned URL; the
    # class name and the host say enough.
    return f"{type(exc).__name__} ({urlsplit(url).netloc})"


# --- command line ----------------------------------------------------------------

def _read_files(paths: list[str]) -> list[File]:
    files = []
    for path in map(Path, paths):
        content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        files.append((path.name, path.read_bytes(), content_type))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gatekeeper_client.agent",
                                     description="Submit tickets to a Dualkey portal.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("submit", "submit files as one ticket"),
                            ("demo", "submit generated demo reports")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--portal", required=True, help="portal base URL")
        sub.add_argument("--token", help=f"agent token (default: ${TOKEN_ENV})")
    submit = commands.choices["submit"]
    submit.add_argument("files", nargs="+", metavar="FILE")
    demo = commands.choices["demo"]
    demo.add_argument("--count", type=int, default=1)
    demo.add_argument("--seed", type=int, default=1, help="first seed; report i uses seed+i")
    demo.add_argument("--marker", help="plant this string in each report")
    demo.add_argument("--extra-logs", type=int, default=0, help="add this many small logs per report")
    args = parser.parse_args(argv)

    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        parser.error(f"no agent token: pass --token or set {TOKEN_ENV}")

    session = requests.Session()
    try:
        if args.command == "submit":
            try:
                files = _read_files(args.files)
            except OSError as exc:
                print(f"error: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
                return 2
            tickets = [(submit_ticket(args.portal, token, files, session=session), files)]
        else:
            tickets = submit_demo_reports(args.portal, token, count=args.count, seed=args.seed,
                                          marker=args.marker, extra_logs=args.extra_logs, session=session)
    except SubmitFailed as failed:
        print(f"error: {failed}", file=sys.stderr)
        return 1
    for ticket, files in tickets:
        print(f"ticket {ticket.get('number', '?')} ({ticket['id']}) {ticket['status']}: "
              f"{len(files)} files under {ticket['prefix']}")
    return 0


def submit_demo_reports(portal_url: str, token: str, *, count: int = 1, seed: int = 1,
                        marker: str | None = None, extra_logs: int = 0,
                        session: requests.Session | None = None) -> list[tuple[dict, list[File]]]:
    """Generate `count` demo reports and submit each the real way; returns
    (ticket, files) pairs. Raises SubmitFailed at the first refusal."""
    from gatekeeper_client.demo_report import build_demo_report

    submitted = []
    for i in range(count):
        files = build_demo_report(seed + i, marker, extra_logs)
        submitted.append((submit_ticket(portal_url, token, files, session=session), files))
    return submitted


if __name__ == "__main__":
    sys.exit(main())
