"""Network guard for the portal's processes in the end-to-end tests.

Put this directory first on PYTHONPATH and Python imports it at start-up
(`sitecustomize`). It wraps `socket.socket.connect`, `connect_ex` and
`socket.create_connection` so that a connection to any address in
DUALKEY_NETGUARD_DENY (comma-separated `host:port`, e.g. the gatekeepers' and
storage's) is refused with ConnectionRefusedError and appended, as one JSON line,
to DUALKEY_NETGUARD_LOG.

The portal never needs to talk to a tenant's gatekeeper or storage: report data
goes from storage to the browser. The guard turns that claim into something a
test can check: an empty log after the browser has rendered a report.

Loopback names are compared as one host (`localhost`, `127.0.0.0/8`, `::1`), so
`localhost:9100` and `127.0.0.1:9100` are the same denied address. Each guarded
process also appends its pid to `<log>.armed` at start-up, so a test can prove
that the process it cares about (the portal's server) really loaded the guard.

Only the standard library; it must import before anything else in the process.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import sys
import time
import traceback

_DENY_ENV = "DUALKEY_NETGUARD_DENY"
_LOG_ENV = "DUALKEY_NETGUARD_LOG"


def _canonical_host(host) -> str:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip().strip("[]").lower().split("%", 1)[0]
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return "loopback" if address.is_loopback else str(address)


def _parse_deny(text: str) -> frozenset[tuple[str, int]]:
    denied = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, _, port = item.rpartition(":")
        denied.add((_canonical_host(host), int(port)))
    return frozenset(denied)


_DENIED = _parse_deny(os.environ.get(_DENY_ENV, ""))
_LOG_PATH = os.environ.get(_LOG_ENV, "")


def _append(path: str, record: dict) -> None:
    # O_APPEND writes of one short line are atomic enough across the portal's threads.
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")


def _is_denied(address) -> bool:
    if not isinstance(address, tuple) or len(address) < 2:
        return False  # AF_UNIX paths and the like
    try:
        return (_canonical_host(address[0]), int(address[1])) in _DENIED
    except (TypeError, ValueError):
        return False


def _refuse(address, via: str):
    record = {
        "time": time.time(), "pid": os.getpid(), "via": via,
        "target": f"{address[0]}:{address[1]}", "argv": sys.argv[:4],
        "stack": [f"{frame.filename}:{frame.lineno} {frame.name}"
                  for frame in traceback.extract_stack(limit=12)[:-2]],
    }
    if _LOG_PATH:
        _append(_LOG_PATH, record)
    return ConnectionRefusedError(errno.ECONNREFUSED, f"netguard: connection to {record['target']} refused")


def _install() -> None:
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_create_connection = socket.create_connection

    def connect(self, address):
        if _is_denied(address):
            raise _refuse(address, "socket.connect")
        return original_connect(self, address)

    def connect_ex(self, address):
        if _is_denied(address):
            _refuse(address, "socket.connect_ex")
            return errno.ECONNREFUSED
        return original_connect_ex(self, address)

    def create_connection(address, *args, **kwargs):
        if _is_denied(address):
            raise _refuse(address, "socket.create_connection")
        return original_create_connection(address, *args, **kwargs)

    connect.__wrapped__ = original_connect
    connect_ex.__wrapped__ = original_connect_ex
    create_connection.__wrapped__ = original_create_connection
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.create_connection = create_connection
    if _LOG_PATH:
        _append(_LOG_PATH + ".armed", {"pid": os.getpid(), "argv": sys.argv[:4],
                                       "denied": sorted(f"{h}:{p}" for h, p in _DENIED)})


if _DENIED:
    _install()
