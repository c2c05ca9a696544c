"""The gatekeeper's decisions, independent of how requests arrive.

`Gatekeeper.handle(Request) -> Response` is shared by the HTTP server and the
Lambda adapter, so both make exactly the same decisions. Every refusal is a
GatekeeperError mapped to HTTP in one place (`_error_response`), and every
decision, allowed or refused, is written to the customer's audit log before the
answer leaves: if the record cannot be written, nothing is signed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

from .acl import Client, Policy
from .approvals import Approval, ApprovalVerifier, is_support
from .audit import PROCESS_CURSOR_KEY, AuditRecord, AuditStore, parse_search
from .config import Config, parse_audit_url
from .errors import (
    REQUEST_OP, AuditUnavailable, BadRequest, Forbidden, GatekeeperError, MethodNotAllowed,
    NotFound, PayloadTooLarge, StorageUnavailable, Unauthorized,
)
from .geoip import open_database
from .grants import Claimed, Grant, GrantVerifier
from .health import Health
from .identity import Identity, IdentityVerifier
from .paths import check_in_scope, check_path, is_int
from .presign import AwsCredentials
from .storage import Storage

log = logging.getLogger("gatekeeper")

MAX_BODY_BYTES = 64 * 1024
READ_LIMIT = MAX_BODY_BYTES + 1  # what an adapter reads of a body: enough to know it is too big
MAX_BATCH_OPS = 100
# Keys one erase deletes: their audit records are one write (DynamoDB: 100 items a transaction).
MAX_ERASE_KEYS = 100
MAX_CONTENT_TYPE_CHARS = 255
MAX_USER_AGENT_CHARS = 512
PREFLIGHT_MAX_AGE = "600"
SIGN_PATH, AUDIT_PATH, HEALTH_PATH = "/v1/sign", "/v1/audit/search", "/v1/health"
POST_PATHS = (SIGN_PATH, AUDIT_PATH)
JSON_HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))  # every answer's


@dataclass(slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    peer: str


@dataclass(slots=True)
class Response:
    status: int
    body: dict | None
    headers: list[tuple[str, str]] = field(default_factory=list)

    def encoded(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body, separators=(",", ":")).encode()


@dataclass(slots=True)
class Op:
    op: str
    key: str  # the object key, or the prefix for `list`
    size: int = 0
    content_type: str = ""
    whole_prefix: bool = False  # a delete of every key under `key`, a prefix


@dataclass(slots=True)
class Context:
    """What is known about one request, for its audit records."""
    request_id: str
    now: float
    user_agent: str
    origin: str
    client: Client | None = None
    grant: Grant | None = None
    claimed: Claimed = Claimed()  # who a refused grant names (grants.Claimed)
    ops: list[Op] = field(default_factory=list)
    spent: bool = False  # this request claimed its single-use grant
    approval: Approval | None = None  # the customer's approval of a support grant (approvals.py)
    identity: Identity | None = None  # the person as the customer's IdP names them (identity.py)

    def record(self, op: str, key: str, outcome: str, reason: str, status: int) -> AuditRecord:
        who = self.grant or self.claimed
        return AuditRecord(
            ts=self.now, request_id=self.request_id,
            client_ip=self.client.ip if self.client else "",
            country=self.client.country if self.client else "",
            user_agent=self.user_agent, origin=self.origin, op=op, key=key,
            outcome=outcome, reason=reason, status=status,
            jti=who.jti, sub=who.sub, name=who.name, kid=who.kid,
            approval=self.approval.id if self.approval else "",
            approvers=",".join(self.approval.approvers) if self.approval else "",
            idp_sub=self.identity.sub if self.identity else "", idp_iss=self.identity.issuer if self.identity else "",
        )


class Gatekeeper:
    def __init__(self, config: Config, *, audit=None, storage: Storage | None = None,
                 clock: Callable[[], float] = time.time, identity: IdentityVerifier | None = None):
        self.config = config
        self.clock = clock
        # One source of AWS credentials for the bucket and the audit table (and, when
        # botocore is needed after all, one session: it reads its model files once).
        aws = AwsCredentials()
        self.audit = audit or open_store(
            config.audit_url, config.audit_retention_days,
            endpoint_url=config.storage.endpoint_url, region=config.storage.region, aws=aws,
        )
        self.storage = storage or Storage(config.storage, aws)
        self.policy = Policy(config, open_database(config.geoip_db) if config.geoip_db else None)
        self.verifier = GrantVerifier(config)
        self.approvals = ApprovalVerifier(config)
        self.identity = identity or (IdentityVerifier(config.identity) if config.identity else None)
        self.cursor_key = config.audit_cursor_secret.encode() or PROCESS_CURSOR_KEY
        self.status = Health(config, self.storage, self.audit)  # what GET /v1/health reports

    # --- entry point -------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        origin = request.headers.get("origin", "")
        response = self._route(request, origin)
        response.headers.extend(self._common_headers(origin))
        return response

    def _route(self, request: Request, origin: str) -> Response:
        path, method = request.path, request.method
        if path == HEALTH_PATH:
            if method in ("GET", "HEAD"):
                return Response(200, self.health())
            return _error_response(MethodNotAllowed("use GET"), allow="GET")
        if path not in POST_PATHS:
            return _error_response(NotFound("no such endpoint"))
        if method == "OPTIONS":
            return self._preflight(origin)
        if method != "POST":
            return _error_response(MethodNotAllowed("use POST"), allow="POST, OPTIONS")
        context = Context(
            request_id=secrets.token_hex(8), now=self.clock(), origin=origin[:256],
            user_agent=request.headers.get("user-agent", "")[:MAX_USER_AGENT_CHARS],
        )
        try:
            if path == SIGN_PATH:
                return self._sign(request, context)
            return Response(200, self._audit_search(request, context),
                            [("X-Request-Id", context.request_id)])
        except GatekeeperError as refusal:
            return self._refuse(refusal, context)

    # --- POST /v1/sign -------------------------------------------------------------

    def _sign(self, request: Request, context: Context) -> Response:
        self._admit(request, context)
        context.ops = _parse_ops(request.body)
        self._authorize(context, context.ops)
        # Deletes last, so a failing list or signature leaves nothing done. On a
        # failure nothing is answered: every op gets a refusal record (_refuse)
        # except the deletes already done, whose "allow" stays true.
        ops = context.ops
        results: list[dict | None] = [None] * len(ops)
        for i in sorted(range(len(ops)), key=lambda i: ops[i].op == "delete"):
            try:
                results[i] = self._perform(ops[i], context)
            except StorageUnavailable as failure:
                undone = [op for op, result in zip(ops, results) if op.op != "delete" or result is None]
                return self._refuse(failure, context, undone)
        return Response(200, {"results": results, "request_id": context.request_id},
                        [("X-Request-Id", context.request_id)])

    def _perform(self, op: Op, context: Context) -> dict:
        ttl, now = self.config.presign_ttl, context.now
        if op.op == "get":
            url = self.storage.presign_get(op.key, ttl, now)
            return {"op": "get", "key": op.key, "method": "GET", "url": url, "expires_at": int(now) + ttl}
        if op.op == "put":
            url, fields = self.storage.presign_post(op.key, op.content_type, op.size, ttl, now)
            return {"op": "put", "key": op.key, "method": "POST", "url": url, "fields": fields,
                    "expires_at": int(now) + ttl}
        if op.op == "list":
            objects, truncated = self.storage.list(op.key)
            return {"op": "list", "prefix": op.key, "objects": objects, "truncated": truncated}
        # Erasure: every version and delete marker, each key in the audit log before it goes.
        versions, truncated = self.storage.versions(op.key, exact=not op.whole_prefix)
        keys = list(dict.fromkeys(v["key"] for v in versions))
        if len(keys) > MAX_ERASE_KEYS:  # the rest on the next call
            versions, truncated = [v for v in versions if v["key"] in set(keys[:MAX_ERASE_KEYS])], True
            keys = keys[:MAX_ERASE_KEYS]
        self._write([context.record("delete", key, "allow", "", 200) for key in keys if key != op.key], now)
        failed = self.storage.delete_versions(versions)
        refused = {(f["key"], f["version_id"]) for f in failed}
        objects: dict[str, list] = {}
        for v in versions:
            if (v["key"], v["version_id"]) not in refused:
                objects.setdefault(v["key"], []).append({k: v[k] for k in ("version_id", "size", "delete_marker")})
        return {"op": "delete", "prefix" if op.whole_prefix else "key": op.key,
                "objects": [{"key": key, "versions": found} for key, found in objects.items()],
                "failed": failed, "truncated": truncated, "deleted": not failed and not truncated}

    # --- POST /v1/audit/search ---------------------------------------------------

    def _audit_search(self, request: Request, context: Context) -> dict:
        self._admit(request, context)
        query = parse_search(_parse_json(request.body), self.cursor_key)
        self._authorize(context, [Op("audit", "")])  # not context.ops: a refusal is a "request"'s
        entries, cursor = self.audit.search(query, context.now)
        return {"entries": entries, "next": cursor}

    # --- shared steps ----------------------------------------------------------------

    def _admit(self, request: Request, context: Context) -> None:
        """Kill switch, who is calling, the vendor's signature, for a support
        subject the customer's approval, and with [identity] the person's ID token."""
        context.client = self.policy.identify(
            request.peer,
            request.headers.get("x-forwarded-for"),
            request.headers.get(self.config.country_header.lower()) if self.config.country_header else None,
        )
        if not self.config.enabled:
            raise Forbidden("this gatekeeper is switched off by its owner", code="kill_switch")
        # An address no op may come from learns nothing of how its grant or body would fare.
        self.policy.check_any(context.client)
        if len(request.body) > MAX_BODY_BYTES:
            raise BadRequest(f"request body over {MAX_BODY_BYTES} bytes", code="body_too_large")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("an Authorization: Bearer grant is required", code="missing_grant")
        try:
            context.grant = self.verifier.verify(token.strip(), context.now)
        except Unauthorized as refusal:
            context.claimed = refusal.claimed
            raise
        if is_support(context.grant.sub):
            try:
                context.approval = self.approvals.verify(request.headers.get("x-approval"), context.grant,
                                                         context.now)
            except Forbidden as refusal:
                context.approval = refusal.approval  # recorded once its signatures verified
                raise
        if self.identity and self.identity.needed(context.grant):
            context.identity = self.identity.verify(request.headers.get("x-identity-token"), context.now)
            self.identity.check_person(context.identity, context.grant)

    def _authorize(self, context: Context, ops: list[Op]) -> None:
        """Each op: switched on by the customer (allowed_ops, whatever the grant says),
        granted, in the grant's scope; the address for reads and for uploads; the upload
        sizes. Then the single-use claim, and the "allow" records, written before
        anything is signed or done: fail closed."""
        grant = context.grant
        for op in ops:
            if op.op not in self.config.allowed_ops:
                raise Forbidden(f"this gatekeeper's owner has switched off {op.op!r}", code="op_disabled")
            if op.op not in grant.ops:
                raise Forbidden(f"the grant does not allow {op.op!r}", code="op_not_granted")
            if op.op != "audit":  # a search reads the log, no key
                check_in_scope(op.key, grant.prefixes, "prefix" if op.op == "list" or op.whole_prefix else "key")
        for upload in {op.op == "put" for op in ops}:
            self.policy.check(context.client, upload=upload)
        if any(op.op == "put" and op.size > self.config.max_upload_bytes for op in ops):
            raise PayloadTooLarge(f"uploads are limited to {self.config.max_upload_bytes} bytes", code="too_large")
        self._claim_if_single_use(context)
        self._write([context.record(op.op, op.key, "allow", "", 200) for op in ops], context.now)

    def _claim_if_single_use(self, context: Context) -> None:
        """A grant carrying put or delete is good for one request, on any endpoint.
        Claimed after every other check, and released by _refuse if the request then
        fails: a request refused for any reason does not use it up."""
        grant = context.grant
        if not grant.single_use:
            return
        if not self.audit.claim_jti(grant.jti, grant.exp + self.config.clock_leeway, context.now):
            raise Forbidden("this grant has already been used", code="grant_reused")
        context.spent = True

    def _write(self, records: list[AuditRecord], now: float) -> None:
        """Every audit write goes through here, so that /v1/health reports the last one
        (a failure, of a write or of a claim, is noted by _refuse)."""
        self.audit.write(records)
        self.status.wrote(now, True)

    def _refuse(self, refusal: GatekeeperError, context: Context, ops: list[Op] | None = None) -> Response:
        """Audit the refusal (per op of `ops`, by default all the ops read), then answer."""
        named = [(op.op, op.key) for op in (context.ops if ops is None else ops)] or [(REQUEST_OP, "")]
        if context.spent:  # nothing was answered: the grant may be used again
            with contextlib.suppress(AuditUnavailable):  # logged; it stays used, the safe side
                self.audit.release_jti(context.grant.jti)
        if not isinstance(refusal, AuditUnavailable):  # else there is no log to record it in
            try:
                self._write([context.record(op, key, "deny", refusal.code, refusal.status) for op, key in named],
                            context.now)
            except AuditUnavailable as failure:
                refusal = failure  # unrecorded: answered as the audit log's failure
        if isinstance(refusal, AuditUnavailable):
            self.status.wrote(context.now, False)
            log.error("request %s refused: audit log unavailable", context.request_id)
        else:
            log.info("request %s refused: %s %s", context.request_id, refusal.status, refusal.code)
        return _error_response(refusal, request_id=context.request_id)

    def _preflight(self, origin: str) -> Response:
        if origin and origin not in self.config.allowed_origins:
            return _error_response(Forbidden("origin not allowed", code="origin_not_allowed"))
        return Response(204, None, [
            ("Access-Control-Allow-Methods", "POST, OPTIONS"),
            ("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Approval, X-Identity-Token"),
            ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE),
        ])

    def _common_headers(self, origin: str) -> list[tuple[str, str]]:
        headers = [*JSON_HEADERS, ("X-Content-Type-Options", "nosniff"), ("Vary", "Origin")]
        # Exact origins only, echoed back; never "*".
        if origin and origin in self.config.allowed_origins:
            headers.append(("Access-Control-Allow-Origin", origin))
            headers.append(("Access-Control-Expose-Headers", "X-Request-Id"))
        return headers

    def health(self) -> dict:
        return self.status.report(self.clock())


# --- request parsing (pure functions) ---------------------------------------------

def _parse_json(body: bytes) -> object:
    try:
        return json.loads(body.decode("utf-8"), object_pairs_hook=_unique_keys) if body else {}
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("request body is not valid JSON", code="malformed_json") from None


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A key given twice is refused: parsers disagree on which one counts."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


def _parse_ops(body: bytes) -> list[Op]:
    data = _parse_json(body)
    ops = data.get("ops") if isinstance(data, dict) else None
    if not isinstance(ops, list) or not ops:
        raise BadRequest("body must be {\"ops\": [...]} with at least one op", code="empty_batch")
    if len(ops) > MAX_BATCH_OPS:
        raise BadRequest(f"at most {MAX_BATCH_OPS} ops per request", code="batch_too_large")
    return [_parse_op(item) for item in ops]


def _parse_op(item: object) -> Op:
    if not isinstance(item, dict):
        raise BadRequest("each op is an object", code="bad_op")
    name = item.get("op")
    if name == "delete" and "prefix" in item:
        if "key" in item:
            raise BadRequest("delete takes a key or a prefix, not both", code="bad_op")
        return Op(name, check_path(item.get("prefix"), "prefix", prefix=True), whole_prefix=True)
    if name in ("get", "delete"):
        return Op(name, check_path(item.get("key")))
    if name == "list":
        return Op(name, check_path(item.get("prefix"), "prefix", prefix=True))
    if name == "put":
        size, content_type = item.get("size"), item.get("content_type")
        if not is_int(size) or size < 0:
            raise BadRequest("put needs a non-negative integer size", code="bad_op")
        if (not isinstance(content_type, str) or not content_type
                or len(content_type) > MAX_CONTENT_TYPE_CHARS or not content_type.isprintable()
                or not content_type.isascii()):
            raise BadRequest("put needs a printable content_type", code="bad_op")
        return Op(name, check_path(item.get("key")), size, content_type)
    raise BadRequest(f"unknown op {str(name)[:20]!r}", code="unknown_op")


def _error_response(error: GatekeeperError, *, request_id: str = "", allow: str = "") -> Response:
    headers = []
    if request_id:
        headers.append(("X-Request-Id", request_id))
    if allow:
        headers.append(("Allow", allow))
    if error.status == 401:
        headers.append(("WWW-Authenticate", 'Bearer realm="gatekeeper"'))
    return Response(error.status, {"error": error.code, "message": error.message}, headers)


def plain_error(status: int, code: str, message: str) -> Response:
    """What an adapter answers when handle() itself failed (a bug of ours, a refused
    configuration): no details, and none of handle()'s CORS headers."""
    return Response(status, {"error": code, "message": message}, list(JSON_HEADERS))


def open_store(url: str, retention_days: int, endpoint_url: str = "",
               region: str = "us-east-1", aws: AwsCredentials | None = None) -> AuditStore:
    """The audit store `url` names (config.parse_audit_url): an SQLite file, or a
    DynamoDB table (at the S3 endpoint_url when one is set: moto serves both).

    Only the store in use is imported, here rather than at the top: a Lambda's cold
    start does not load sqlite3 and the SQLite store, nor a self-hosted server the
    DynamoDB one. (They are a layer below: this is for speed, not to dodge a cycle.)"""
    kind, where = parse_audit_url(url)
    if kind == "sqlite":
        from .audit_sqlite import SqliteAuditStore
        return SqliteAuditStore(where, retention_days)
    from .audit_dynamodb import DynamoAuditStore
    return DynamoAuditStore(where, retention_days, endpoint_url or None, region, aws)
