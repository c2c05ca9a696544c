"""dualkey-gatekeeper (or python -m gatekeeper) serve | check-config | init-audit | purge-audit"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from . import VERSION
from . import config as config_module
from .app import Gatekeeper
from .errors import ConfigError
from .http_server import serve as serve_http

EXIT_CONFIG = 2


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
    args = parser.parse_args(argv)
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
