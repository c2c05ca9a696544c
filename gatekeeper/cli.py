"""dualkey-gatekeeper (or python -m gatekeeper) serve | check-config | init-audit | purge-audit | approvers new-key | approvers approve"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from . import VERSION
from . import config as config_module
from .approvals import ALGORITHM as APPROVAL_ALGORITHM
from .approvals import APPROVABLE_OPS, MAX_APPROVAL_LIFETIME, is_support
from .app import Gatekeeper
from .errors import ConfigError
from .http_server import serve as serve_http

EXIT_CONFIG = 2
EXIT_REFUSED = 1


def main(argv: list[str] | None = None, prog: str = "dualkey-gatekeeper") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Dualkey gatekeeper " + VERSION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8700)
    serve.add_argument("--threads", type=int, default=8)
    for name, text in [("serve", None), ("check-config", "validate the configuration and exit"),
                       ("init-audit", "create the audit table (DynamoDB) or file (SQLite)"),
                       ("purge-audit", "drop audit records past retention")]:
        sub = serve if name == "serve" else commands.add_parser(name, help=text)
        sub.add_argument("--config", help="TOML file (GATEKEEPER_* variables override it)")
    approvers = commands.add_parser("approvers", help="the customer's approver keys and approvals")
    approver_commands = approvers.add_subparsers(dest="approvers_command", required=True)
    new_key = approver_commands.add_parser("new-key", help="make an approver key; print its [approvers.keys] line")
    approve = approver_commands.add_parser("approve", help="sign the approval of a portal access request")
    approve.add_argument("request_file", metavar="REQUEST_FILE", help="the access request's JSON, from the portal")
    approve.add_argument("--yes", action="store_true", help="do not ask before signing")
    for sub in (new_key, approve):
        sub.add_argument("--id", required=True, help="the approver id, as in [approvers.keys]")
        sub.add_argument("--key", "--out", dest="key", required=True, help="the private key file (PEM)")
    args = parser.parse_args(argv)
    if args.command == "approvers":
        return _new_key(args) if args.approvers_command == "new-key" else _approve(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    try:
        config = config_module.load(args.config)
        gatekeeper = Gatekeeper(config)  # opens the GeoIP database, if any: it can fail too
        if args.command == "init-audit" and hasattr(gatekeeper.audit, "create_table"):
            gatekeeper.audit.create_table()
        if args.command in ("serve", "init-audit"):
            gatekeeper.audit.check()  # a missing or outdated audit store refuses to start
    except ConfigError as exc:
        print(f"gatekeeper: refusing to start: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check-config":
        print(f"config ok: gatekeeper_id={config.gatekeeper_id} vendor_kids={','.join(config.vendor_key_ids)}")
    elif args.command == "init-audit":
        print("audit store ready")
    elif args.command == "purge-audit":
        print(f"purged {gatekeeper.audit.purge(time.time())} records")
    else:
        print(f"gatekeeper {config.gatekeeper_id} listening on http://{args.host}:{args.port}", flush=True)
        serve_http(gatekeeper, args.host, args.port, args.threads)
    return 0


# --- approvers: run by the customer on its own machine, never by the gatekeeper --------

def _new_key(args) -> int:
    if not config_module.KID_RE.match(args.id):
        print("gatekeeper: an approver id is 1-64 letters, digits, '.', '_' or '-'", file=sys.stderr)
        return EXIT_REFUSED
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:  # owner-only from the first byte, and never over an existing key
        fd = os.open(args.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        print(f"gatekeeper: cannot create {args.key}: {error.strerror}", file=sys.stderr)
        return EXIT_REFUSED
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    print(f"# the private key is in {args.key} (0600): keep it; paste this into the gatekeeper's config")
    print("[approvers.keys]")
    print(f"{args.id} = '{json.dumps(public_jwk(key.public_key()), separators=(',', ':'))}'")
    return 0


def _approve(args) -> int:
    try:
        with open(args.request_file, encoding="utf-8") as fh:
            request = json.load(fh)
        with open(args.key, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=None)
        if not isinstance(request, dict) or not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the request must be a JSON object and the key an ECDSA P-256 key")
        claims = approval_claims(request, int(time.time()))
    except (OSError, ValueError, TypeError) as error:  # json.JSONDecodeError is a ValueError
        print(f"gatekeeper: cannot approve: {error}", file=sys.stderr)
        return EXIT_REFUSED
    def text(name: str) -> str:  # the vendor's words: no terminal escapes get through
        return "".join(c if c.isprintable() else "?" for c in str(request.get(name, ""))[:1024])
    print(f"Approval {claims['jti']} for gatekeeper {claims['aud']}:\n"
          f"  who:    {claims['sub']} {text('name')}\n"
          f"  what:   {', '.join(claims['scope']['ops'])} under {claims['scope']['prefix']} {text('ticket')}\n"
          f"  until:  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(claims['exp']))} "
          f"({(claims['exp'] - claims['nbf']) // 3600} h; at most {MAX_APPROVAL_LIFETIME // 86400} days)\n"
          f"  reason: {text('reason_code')}: {text('reason')}", file=sys.stderr)
    if not args.yes:
        print("Sign this approval? [y/N] ", end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("gatekeeper: not signed", file=sys.stderr)
            return EXIT_REFUSED
    print(sign(claims, key, args.id))
    return 0


# --- the approver's side: the claims it signs, the signature, the public key ------------

def approval_claims(request: dict, now: int) -> dict:
    """The claims an approver signs for the portal's access request (its JSON, as
    the portal's settings page offers it), from `now` for its `duration`."""
    fields = {"approval_id": str, "gatekeeper_id": str, "subject": str, "prefix": str, "ops": list,
              "duration": int}
    for name, kind in fields.items():
        if not isinstance(request.get(name), kind) or isinstance(request.get(name), bool) or not request[name]:
            raise ValueError(f"the access request lacks a valid {name!r}")
    if not is_support(request["subject"]) or not request["prefix"].endswith("/"):
        raise ValueError("the access request is not for a support subject and a key prefix")
    if not all(op in APPROVABLE_OPS for op in request["ops"]):
        raise ValueError(f"an approval covers only {', '.join(APPROVABLE_OPS)}")
    if not 0 < request["duration"] <= MAX_APPROVAL_LIFETIME:
        raise ValueError(f"an approval lasts at most {MAX_APPROVAL_LIFETIME} seconds")
    return {"aud": request["gatekeeper_id"], "sub": request["subject"], "jti": request["approval_id"],
            "iat": now, "nbf": now, "exp": now + request["duration"],
            "scope": {"prefix": request["prefix"], "ops": list(request["ops"])}}


def sign(claims: dict, key: ec.EllipticCurvePrivateKey, approver: str) -> str:
    return jwt.encode(claims, key, algorithm=APPROVAL_ALGORITHM, headers={"kid": approver})


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict:
    """The public half as the gatekeeper's [approvers.keys] takes it (RFC 7518 §6.2)."""
    return ECAlgorithm.to_jwk(key, as_dict=True)
