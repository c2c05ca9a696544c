"""The agent's upload path: what the desktop help-desk button does, as a library
function and a command-line tool.

    create the ticket at the portal with the file manifest (names, sizes, types, SHA-256)
    → check that the portal's answer names the gatekeeper the customer pinned
    → ask the pinned gatekeeper where its storage is (/v1/health: storage_origin)
    → one /v1/sign call at the pinned gatekeeper with a `put` op per file
    → check every presigned POST is on that storage origin, then upload each
    → tell the portal the ticket is complete

Where uploads go is the customer's decision, not the portal's: the gatekeeper
URL and id come from the agent's own configuration (a file the customer's IT
deploys with it, flags, environment; docs/agent.md), and a portal answer naming
another gatekeeper is refused before any gatekeeper is called.

Report content goes only to storage; the portal sees the manifest. That
includes the subject: it is what the user typed, so it goes in report.json, not
to the portal. The agent token is a secret: it is sent only to the portal and
never printed.

    python -m gatekeeper_client.agent submit --config agent.toml FILE...
    python -m gatekeeper_client.agent demo --config agent.toml [--count N] [--marker M]
(or --portal, --gatekeeper-url, --gatekeeper-id, --token-file; the token from a
token file or DUALKEY_AGENT_TOKEN rather than --token: a command line is visible
to other users of the machine.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

import requests

from gatekeeper_client.client import GatekeeperClient, GatekeeperRefused, upload
from gatekeeper_client.pin import Pin, PinError, check_upload_target, normalise_url

TOKEN_ENV = "DUALKEY_AGENT_TOKEN"
CONFIG_ENV = "DUALKEY_AGENT_CONFIG"
# The agent's configuration: key → environment variable (flags beat environment,
# environment beats the file).
CONFIG_KEYS = {
    "portal_url": "DUALKEY_AGENT_PORTAL_URL",
    "token": TOKEN_ENV,
    "token_file": "DUALKEY_AGENT_TOKEN_FILE",
    "gatekeeper_url": "DUALKEY_AGENT_GATEKEEPER_URL",
    "gatekeeper_id": "DUALKEY_AGENT_GATEKEEPER_ID",
}
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
REPORT_NAME = "report.json"
SUMMARY_NAME = "summary.json"
SUMMARY_SCHEMA_VERSION = 1
SHORT = 200  # the schema's short strings


class SubmitFailed(Exception):
    """One step of a submission was refused or failed. `step` is manifest,
    create, pin, health, sign, upload or complete; `code`/`message` are the
    refusing service's own words, or the agent's for `manifest` and `pin`
    (wrong_gatekeeper, wrong_storage)."""

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


def _short(value: object) -> str | None:
    return value[:SHORT] if isinstance(value, str) and value else None


def summary_of(report: object) -> bytes | None:
    """summary.json from report.json (docs/report-format.md, "summary.json"): what the
    ticket list shows of each ticket — subject, requester, machine — read by the
    browser from the tenant's storage. None when report.json is not an object."""
    if not isinstance(report, dict):
        return None
    user = report.get("user") if isinstance(report.get("user"), dict) else {}
    machine = report.get("machine") if isinstance(report.get("machine"), dict) else {}
    summary = {"schema_version": SUMMARY_SCHEMA_VERSION,
               "subject": _short(report.get("subject")),
               "requester": {"name": _short(user.get("name")), "email": _short(user.get("email"))},
               "machine": {"hostname": _short(machine.get("hostname")), "os": _short(machine.get("os"))},
               "submitted_at": _short(report.get("submitted_at"))}
    summary["requester"] = {k: v for k, v in summary["requester"].items() if v}
    summary["machine"] = {k: v for k, v in summary["machine"].items() if v}
    summary = {k: v for k, v in summary.items() if v}
    return json.dumps(summary, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def with_summary(files: list[File]) -> list[File]:
    """The files, plus summary.json made from report.json when they have a
    report and no summary of their own (protocol 2's ticket list reads it)."""
    names = {name for name, _data, _type in files}
    report = next((data for name, data, _type in files if name == REPORT_NAME), None)
    if report is None or SUMMARY_NAME in names:
        return files
    try:
        summary = summary_of(json.loads(report))
    except ValueError:  # not JSON, or not UTF-8: the report page says so; no summary
        return files
    return files if summary is None else [*files, (SUMMARY_NAME, summary, "application/json")]


def manifest(files: list[File]) -> list[dict[str, Any]]:
    return [{"name": name, "size": len(data), "content_type": content_type,
             "sha256": hashlib.sha256(data).hexdigest()} for name, data, content_type in files]


def submit_ticket(portal_url: str, token: str, files: list[File], *, pin: Pin,
                  session: requests.Session | None = None, timeout: float = TIMEOUT) -> dict:
    """Submit one ticket through the pinned gatekeeper; returns the portal's
    ticket (id, number, prefix, files, status "complete"). Raises SubmitFailed
    naming the step that failed; a ticket whose upload failed, or whose portal
    answer named another gatekeeper than `pin`, stays incomplete at the portal
    and nothing of it is uploaded. A summary.json is added from report.json
    (with_summary)."""
    files = with_summary(files)
    check_files(files)
    http = session or requests.Session()
    portal_url = portal_url.rstrip("/")
    auth = {"Authorization": f"Token {token}"}

    ticket = _portal_post(http, "create", f"{portal_url}/api/v1/tickets",
                          {"files": manifest(files)}, auth, timeout, (201,))
    missing = {"id", "prefix", "gatekeeper_url", "grant"} - ticket.keys()
    if missing:
        raise SubmitFailed("create", f"the portal's answer lacks {sorted(missing)}", code="bad_response")
    # The portal does not choose the gatekeeper: before any gatekeeper is called.
    try:
        pin.check_answer(ticket)
    except PinError as refused:
        raise SubmitFailed("pin", f"{refused}; refusing to upload (is the portal misconfigured "
                           "or compromised? ask your IT department)", code="wrong_gatekeeper") from None
    gatekeeper = GatekeeperClient(pin.url, http, timeout)
    storage_origin = _storage_origin(gatekeeper, pin)

    prefix = ticket["prefix"]
    ops = [{"op": "put", "key": prefix + name, "size": len(data), "content_type": content_type}
           for name, data, content_type in files]
    try:
        results = gatekeeper.sign(ticket["grant"], ops)
    except GatekeeperRefused as refused:
        raise SubmitFailed("sign", refused.message, refused.status, refused.code) from None
    except requests.RequestException as exc:
        raise SubmitFailed("sign", f"could not reach the gatekeeper: {_reason(exc, pin.url)}",
                           code="unreachable") from None
    # Results come back in op order; check it, so no file goes to another's key.
    if [r.get("key") for r in results] != [op["key"] for op in ops]:
        raise SubmitFailed("sign", "the gatekeeper's results do not match the files sent",
                           code="bad_response")
    # Every target is checked before the first byte leaves.
    for op, result in zip(ops, results):
        try:
            check_upload_target(result, op["key"], storage_origin)
        except PinError as refused:
            raise SubmitFailed("pin", f"{refused}; refusing to upload", code="wrong_storage") from None

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


def _storage_origin(gatekeeper: GatekeeperClient, pin: Pin) -> str:
    """The pinned gatekeeper's storage origin, from its own /v1/health."""
    try:
        health = gatekeeper.health()
    except GatekeeperRefused as refused:
        raise SubmitFailed("health", refused.message, refused.status, refused.code) from None
    except requests.RequestException as exc:
        raise SubmitFailed("health", f"could not reach the gatekeeper: {_reason(exc, pin.url)}",
                           code="unreachable") from None
    try:
        origin = pin.check_health(health)
    except PinError as refused:
        code = "wrong_gatekeeper" if health.get("gatekeeper_id") != pin.id else "wrong_storage"
        raise SubmitFailed("pin", f"{refused}; refusing to upload", code=code) from None
    # Its own word that it cannot reach its bucket: every upload would fail with S3's
    # error, so say that instead (an older gatekeeper does not report it).
    if health.get("storage") == "unreachable":
        problem = str(health.get("storage_problem") or "unknown")[:40]
        raise SubmitFailed("health", f"the gatekeeper cannot reach its bucket ({problem}); nothing was "
                           "uploaded: ask your IT department", code="storage_unreachable")
    return origin


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


# --- configuration ---------------------------------------------------------------

class ConfigError(ValueError):
    """The agent's configuration is incomplete or wrong. The message names the
    key and where it came from, never a token."""


@dataclass(frozen=True)
class AgentConfig:
    portal_url: str
    token: str
    pin: Pin

    def __repr__(self) -> str:  # the token stays out of tracebacks and logs
        return f"AgentConfig(portal_url={self.portal_url!r}, pin={self.pin!r})"


def load_config(path: str | Path | None = None, *, env: Mapping[str, str] | None = None,
                **given: str | None) -> AgentConfig:
    """The agent's configuration from `given` (flags: portal_url, token, token_file,
    gatekeeper_url, gatekeeper_id), else the environment (CONFIG_KEYS), else the
    TOML file at `path` (or $DUALKEY_AGENT_CONFIG). A relative token_file in the
    file is relative to the file. Raises ConfigError."""
    env = os.environ if env is None else env
    unknown = set(given) - set(CONFIG_KEYS)
    if unknown:
        raise TypeError(f"unknown configuration keys {sorted(unknown)}")
    path = path or env.get(CONFIG_ENV) or None
    from_file = _read_config_file(Path(path)) if path else {}
    values, source, rank = {}, {}, {}
    for key, env_name in CONFIG_KEYS.items():
        for level, (where, value) in enumerate(((f"--{key.replace('_', '-')}", given.get(key)),
                                                (f"${env_name}", env.get(env_name)),
                                                (f"{path}: {key}", from_file.get(key)))):
            if value:
                values[key], source[key], rank[key] = value, where, level
                break
    for key in ("portal_url", "gatekeeper_url", "gatekeeper_id"):
        if key not in values:
            raise ConfigError(f"no {key}: set it in the agent's configuration file (--config or ${CONFIG_ENV}), "
                              f"${CONFIG_KEYS[key]} or --{key.replace('_', '-')}")
    token = values.get("token")
    if "token_file" in values and rank["token_file"] < rank.get("token", len(rank)):
        token_file = Path(values["token_file"])
        if source["token_file"].startswith(f"{path}:") and not token_file.is_absolute():
            token_file = Path(path).parent / token_file
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {token_file} ({source['token_file']}): "
                              f"{exc.strerror}") from None
        if not token:
            raise ConfigError(f"the token file {token_file} is empty")
    if not token:
        raise ConfigError(f"no agent token: set token_file in the configuration file, ${TOKEN_ENV}, "
                          "or --token-file")
    try:
        portal_url = normalise_url(values["portal_url"], what=f"portal_url ({source['portal_url']})")
        pin = Pin.of(values["gatekeeper_url"], values["gatekeeper_id"])
    except PinError as bad:
        raise ConfigError(str(bad)) from None
    return AgentConfig(portal_url, token, pin)


def _read_config_file(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the agent configuration {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the agent configuration {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:  # a misspelt key must not silently fall back to something else
        raise ConfigError(f"{path}: unknown keys {unknown}; known: {sorted(CONFIG_KEYS)}")
    for key, value in data.items():
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {key} must be a string")
    if data.get("token") and data.get("token_file"):
        raise ConfigError(f"{path}: give token or token_file, not both")
    return data


# --- command line ----------------------------------------------------------------

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")  # docs/report.schema.json's copy (a test checks)
MAX_SCHEMA_ERRORS = 10


def report_problems(files: list[File]) -> list[str]:
    """What is wrong with report.json against the published schema
    (docs/report-format.md), as lines a person can act on; [] if it is fine or
    there is none. Checked before anything is sent."""
    import jsonschema

    data = next((data for name, data, _type in files if name == REPORT_NAME), None)
    if data is None:
        return []
    try:
        report = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return ["report.json is not UTF-8"]
    except ValueError as exc:
        return [f"report.json is not valid JSON: {exc}"]
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    problems = []
    for error in sorted(validator.iter_errors(report), key=lambda e: list(e.absolute_path))[:MAX_SCHEMA_ERRORS]:
        where = "/".join(str(p) for p in error.absolute_path) or "(the top level)"
        problems.append(f"report.json at {where}: {error.message[:300]}")
    return problems


def _read_files(paths: list[str]) -> list[File]:
    files = []
    for path in map(Path, paths):
        content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        files.append((path.name, path.read_bytes(), content_type))
    return files


EXAMPLES = """examples:
  # one ticket from files (report.json is checked against the schema first)
  DUALKEY_AGENT_TOKEN=dkat_... python -m gatekeeper_client.agent submit \\
      --config /etc/dualkey/agent.toml report.json screenshot-1.png application.log

  # the same without a configuration file
  python -m gatekeeper_client.agent submit --portal https://portal.example \\
      --gatekeeper-url https://gk.acme.example --gatekeeper-id gk-acme \\
      --token-file /etc/dualkey/token report.json

  # three generated demo reports
  python -m gatekeeper_client.agent demo --config agent.toml --count 3

When done it prints each ticket's number, id, files and its link on the portal.
Exit status: 0 done, 1 refused or failed (the step and reason on stderr),
2 bad configuration, unreadable files or a report.json the schema refuses.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gatekeeper_client.agent",
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Submit tickets to a Dualkey portal, uploading only "
                                     "through the gatekeeper pinned in the agent's own configuration.",
                                     epilog=EXAMPLES)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("submit", "submit files as one ticket"),
                            ("demo", "submit generated demo reports")):
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("--config", help=f"the agent's TOML configuration (default: ${CONFIG_ENV})")
        sub.add_argument("--portal", dest="portal_url", help="portal base URL")
        sub.add_argument("--gatekeeper-url", help="the tenant's own gatekeeper: the only one uploads go through")
        sub.add_argument("--gatekeeper-id", help="that gatekeeper's id (its grants' audience)")
        sub.add_argument("--token-file", help="a file holding the agent token")
        sub.add_argument("--token", help=f"agent token (better: a token file or ${TOKEN_ENV})")
    submit = commands.choices["submit"]
    submit.add_argument("files", nargs="+", metavar="FILE")
    demo = commands.choices["demo"]
    demo.add_argument("--count", type=int, default=1)
    demo.add_argument("--seed", type=int, default=1, help="first seed; report i uses seed+i")
    demo.add_argument("--marker", help="plant this string in each report")
    demo.add_argument("--extra-logs", type=int, default=0, help="add this many small logs per report")
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config, **{key: getattr(args, key) for key in CONFIG_KEYS})
    except ConfigError as bad:
        parser.error(str(bad))

    session = requests.Session()
    try:
        if args.command == "submit":
            try:
                files = _read_files(args.files)
            except OSError as exc:
                print(f"error: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
                return 2
            problems = report_problems(files)
            if problems:
                print("error: report.json does not match the report schema (docs/report-format.md); "
                      "nothing was sent:", *(f"  {p}" for p in problems), sep="\n", file=sys.stderr)
                return 2
            tickets = [(submit_ticket(config.portal_url, config.token, files, pin=config.pin,
                                      session=session), files)]
        else:
            tickets = submit_demo_reports(config.portal_url, config.token, pin=config.pin, count=args.count,
                                          seed=args.seed, marker=args.marker, extra_logs=args.extra_logs,
                                          session=session)
    except SubmitFailed as failed:
        print(f"error: {failed}", file=sys.stderr)
        return 1
    for ticket, files in tickets:
        # The portal's manifest: the files given plus the summary.json the agent added.
        print(f"ticket {ticket.get('number', '?')} ({ticket['id']}) {ticket['status']}: "
              f"{len(ticket.get('files') or files)} files under {ticket['prefix']}")
        print(f"  {config.portal_url}/tickets/{ticket['id']}/")
    return 0


def submit_demo_reports(portal_url: str, token: str, *, pin: Pin, count: int = 1, seed: int = 1,
                        marker: str | None = None, extra_logs: int = 0,
                        session: requests.Session | None = None) -> list[tuple[dict, list[File]]]:
    """Generate `count` demo reports and submit each the real way, through the
    pinned gatekeeper; returns (ticket, files) pairs. Raises SubmitFailed at the
    first refusal."""
    from gatekeeper_client.demo_report import build_demo_report

    submitted = []
    for i in range(count):
        files = build_demo_report(seed + i, marker, extra_logs)
        submitted.append((submit_ticket(portal_url, token, files, pin=pin, session=session), files))
    return submitted


if __name__ == "__main__":
    sys.exit(main())
