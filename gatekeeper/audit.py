"""The customer's audit log, and the registry of single-use grant ids (jti).

Both live in one store because both must be durable and shared by every gatekeeper
instance. Two stores, plug-ins that app.py chooses from the configuration: SQLite
for a self-hosted gatekeeper (audit_sqlite.py), DynamoDB for the AWS (Lambda)
deployment (audit_dynamodb.py). This module holds what they share: the records,
the search queries, cursors and the interface. Every storage failure on a write
or a claim raises AuditUnavailable, and the caller refuses the request: fail closed.

Searching (`POST /v1/audit/search`) returns records newest first, `limit` at a
time, with an opaque `cursor` for the next page. Follow the cursor until it is
null: a page may hold fewer than `limit` records (DynamoDB stops after a bounded
amount of work per call) without being the last one.

Record `op` names (errors.AUDIT_OPS): the protocol's ops (get, list, put,
delete), "audit" for an audit search, and "request" for a refusal that happened
before any op could be named (bad body, bad grant, refused address). Search
accepts exactly these names. A request to an unknown path is answered 404 and
not audited: it names no op, no key and no grant.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import json
import secrets
import unicodedata
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Protocol

from .errors import AUDIT_OPS, OUTCOMES, BadRequest
from .paths import REFUSED_CATEGORIES, is_int, parse_ip

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_FILTER_CHARS = 1024  # a key is at most 1,024 bytes; nothing else needs more
MAX_CURSOR_CHARS = 1024
MAX_TIME_TEXT = 64
MAX_TS = 253402300799  # 9999-12-31T23:59:59Z
PROCESS_CURSOR_KEY = secrets.token_bytes(32)  # cursors' key when audit.cursor_secret is unset
MAX_FIELD_CHARS = 2048  # stored text fields are cut here: a user agent is not a novel
DAY = 86400


# --- records --------------------------------------------------------------------

@dataclass(slots=True)
class AuditRecord:
    ts: float  # epoch seconds
    request_id: str = ""
    client_ip: str = ""
    country: str = ""
    user_agent: str = ""
    origin: str = ""
    op: str = ""
    key: str = ""  # the key, or the list prefix; "" if none
    outcome: str = ""  # "allow" or "deny"
    reason: str = ""  # reason code; "" when allowed
    status: int = 0
    jti: str = ""
    sub: str = ""
    name: str = ""  # the grant's display name, so the log reads "Bob", not "user:7"
    kid: str = ""
    approval: str = ""  # a support grant's approval id (approvals.py), "" for any other
    approvers: str = ""  # the approver ids that signed it, comma-separated
    idp_sub: str = ""  # the person as the customer's IdP names them (identity.py), "" without a token
    idp_iss: str = ""  # that IdP

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in FIELDS}


FIELDS = tuple(f.name for f in fields(AuditRecord))
TEXT_FIELDS = tuple(name for name in FIELDS if name not in ("ts", "status"))


def clean_text(text: str) -> str:
    """Bounded, inert text: header values and unverified claims are attacker input.
    The characters keys may not hold (paths.REFUSED_CATEGORIES: controls such as
    U+000A, U+0085, U+009B, bidi overrides such as U+202E, separators, lone
    surrogates, which would also make the write fail) and the backslash are stored
    escaped, as \\uXXXX (\\UXXXXXXXX above U+FFFF): the log reads one way, and an
    escape in it always stands for the character."""
    text = str(text)[:MAX_FIELD_CHARS]
    if text.isprintable() and "\\" not in text:  # the usual case, at once
        return text
    return "".join(
        (f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        if ch == "\\" or unicodedata.category(ch) in REFUSED_CATEGORIES else ch
        for ch in text
    )


# --- search queries ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Filters are ANDed. `since` is inclusive, `until` exclusive (epoch seconds)."""

    since: float | None = None
    until: float | None = None
    op: str | None = None
    outcome: str | None = None
    client_ip: str | None = None
    client_net: str | None = None  # a CIDR range, "10.0.0.0/8": each store checks in_net()
    sub: str | None = None
    key_prefix: str | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    cursor_key: bytes = field(default=PROCESS_CURSOR_KEY, repr=False, compare=False)  # see cursors

    def comparisons(self) -> list[tuple[str, str, object]]:
        """(record field, operator, value) of every filter set but key_prefix: what
        a store's query compares (a key prefix is a range, which each store spells)."""
        wanted = [(name, "=", getattr(self, name)) for name in ("op", "outcome", "client_ip", "sub")]
        wanted += [("ts", ">=", self.since), ("ts", "<", self.until)]
        return [(name, operator, value) for name, operator, value in wanted if value is not None]

    def in_net(self, client_ip: str) -> bool:
        """Whether a record's address lies in `client_net` (True when it is not set)."""
        return self.client_net is None or in_net(client_ip, self.client_net)


_network = functools.lru_cache(maxsize=64)(ipaddress.ip_network)  # parsed once, not per record


def in_net(client_ip: str, network: str) -> bool:
    """A recorded address (never malformed, but "" for none) in a parsed network."""
    try:
        return ipaddress.ip_address(client_ip) in _network(network)
    except ValueError:
        return False


SEARCH_FILTERS = ("since", "until", "op", "outcome", "client_ip", "client_net", "sub", "key_prefix")
SEARCH_FIELDS = frozenset(SEARCH_FILTERS + ("limit", "cursor"))


def parse_search(body: object, cursor_key: bytes = PROCESS_CURSOR_KEY) -> SearchQuery:
    """Validate the JSON body of an audit search. Raises only BadRequest."""
    if not isinstance(body, dict):
        raise BadRequest("the audit search body must be a JSON object", code="bad_filter")
    unknown = sorted(str(name) for name in body if name not in SEARCH_FIELDS)
    if unknown:
        raise BadRequest(f"unknown audit search field {unknown[0]!r}", code="bad_filter")
    since = _field(body, "since", _time)
    until = _field(body, "until", _time)
    if since is not None and until is not None and since > until:
        raise BadRequest("'since' must not be after 'until'", code="bad_filter")
    limit = body.get("limit", DEFAULT_LIMIT)
    if not is_int(limit) or not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"'limit' must be an integer from 1 to {MAX_LIMIT}", code="bad_filter")
    query = SearchQuery(
        since=since,
        until=until,
        op=_field(body, "op", _choice, AUDIT_OPS),
        outcome=_field(body, "outcome", _choice, OUTCOMES),
        client_ip=_field(body, "client_ip", _ip),
        client_net=_field(body, "client_net", _net),
        sub=_field(body, "sub", _text, MAX_FILTER_CHARS),
        key_prefix=_field(body, "key_prefix", _text, MAX_FILTER_CHARS) or None,
        limit=limit,
        cursor=_field(body, "cursor", _text, MAX_CURSOR_CHARS),
        cursor_key=cursor_key,
    )
    decode_cursor(query)  # a bad cursor is refused here, before the search is audited as allowed
    return query


def _field(body: dict, name: str, parse: Callable[..., Any], *args: object) -> Any:
    """None for a filter that is absent or null, else parse(name, value, *args): each
    parser below checks a value that is there, raising BadRequest."""
    value = body.get(name)
    return None if value is None else parse(name, value, *args)


def _text(name: str, value: object, max_chars: int) -> str:
    if not isinstance(value, str) or len(value) > max_chars:
        raise BadRequest(f"{name!r} must be a string of at most {max_chars} characters", code="bad_filter")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape from JSON
        raise BadRequest(f"{name!r} is not valid Unicode", code="bad_filter") from None
    return clean_text(value)  # spelt as the log stores it


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise BadRequest(f"{name!r} must be one of {', '.join(allowed)}", code="bad_filter")
    return value


def _ip(name: str, value: object) -> str:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return str(parse_ip(value))  # spelt as the log records client addresses
    raise BadRequest(f"{name!r} must be an IPv4 or IPv6 address", code="bad_filter")


def _net(name: str, value: object) -> str:
    """Strict: ADDRESS/PREFIX with no host bits set ("10.0.0.0/8", not "10.0.0.1/8")."""
    problem = f"{name!r} must be a CIDR range like 10.0.0.0/8 or 2001:db8::/32"
    if not isinstance(value, str) or value.count("/") != 1 or len(value) > 64:
        raise BadRequest(problem, code="bad_filter")
    try:
        return str(ipaddress.ip_network(value.strip(), strict=True))
    except ValueError as wrong:  # its text says what: "has host bits set", "not a valid netmask"
        raise BadRequest(f"{problem} ({clean_text(str(wrong))[:120]})", code="bad_filter") from None


def _time(name: str, value: object) -> float:
    """Epoch seconds as a number, or an ISO-8601 string (no offset means UTC)."""
    problem = f"{name!r} must be epoch seconds or an ISO-8601 time between 1970 and 9999"
    if isinstance(value, str) and len(value) <= MAX_TIME_TEXT:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise BadRequest(problem, code="bad_filter") from None
        value = moment.replace(tzinfo=moment.tzinfo or dt.timezone.utc).timestamp()
    if not is_time(value):
        raise BadRequest(problem, code="bad_filter")
    return float(value)


def is_time(value: object) -> bool:
    """Epoch seconds from 1970 to 9999. Compared as they are: NaN fails every
    comparison, and a huge int stays exact (float() or SQLite would overflow)."""
    return (is_int(value) or isinstance(value, float)) and 0 <= value <= MAX_TS


# --- cursors ------------------------------------------------------------------------
# A cursor is base64url(JSON {f: filters fingerprint, p: position} + HMAC-SHA256 of
# it), keyed with the gatekeeper's audit.cursor_secret, or else with a random key of
# this process. A client cannot make one, only hand back what this search gave it:
# a store never reads a position it did not write (and still checks its bounds).

CURSOR_CONTEXT = b"dualkey-audit-cursor-v1"
CURSOR_CHECK_BYTES = 32


def _fingerprint(q: SearchQuery) -> str:
    # What a cursor is bound to: every filter, not the page size and position.
    filters = {name: getattr(q, name) for name in SEARCH_FILTERS}
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(q: SearchQuery, position: list) -> str:
    payload = json.dumps({"f": _fingerprint(q), "p": position}, separators=(",", ":")).encode()
    check = _cursor_check(q, payload)
    return base64.urlsafe_b64encode(payload + check).decode().rstrip("=")


def _cursor_check(q: SearchQuery, payload: bytes) -> bytes:
    return hmac.new(q.cursor_key, CURSOR_CONTEXT + payload, hashlib.sha256).digest()


def invalid_cursor() -> BadRequest:
    return BadRequest("'cursor' is not a cursor from this search", code="bad_filter")


def decode_cursor(q: SearchQuery) -> list | None:
    """The position stored in q.cursor, or None for the first page. A store checks
    the position's shape, raising invalid_cursor()."""
    if q.cursor is None:
        return None
    invalid = invalid_cursor()
    try:
        raw = base64.urlsafe_b64decode(q.cursor + "=" * (-len(q.cursor) % 4))
        payload, check = raw[:-CURSOR_CHECK_BYTES], raw[-CURSOR_CHECK_BYTES:]
        if len(raw) <= CURSOR_CHECK_BYTES or not hmac.compare_digest(check, _cursor_check(q, payload)):
            raise invalid
        data = json.loads(payload)
    except ValueError:  # includes bad base64 (binascii.Error), bad UTF-8 and bad JSON
        raise invalid from None
    if not isinstance(data, dict) or data.get("f") != _fingerprint(q) or not isinstance(data.get("p"), list):
        raise invalid
    return data["p"]


# --- the store interface --------------------------------------------------------------

class AuditStore(Protocol):
    def write(self, records: list[AuditRecord], now: float | None = None) -> None:
        """All records or none; any storage failure raises AuditUnavailable."""

    def search(self, q: SearchQuery, now: float | None = None) -> tuple[list[dict], str | None]:
        """A page of records (as dicts) newest first, and the next page's cursor.
        `now` only matters to DynamoDB, which hides records TTL has not deleted yet."""

    def claim_jti(self, jti: str, expires_at: float, now: float) -> bool:
        """True once per grant id until it expires; AuditUnavailable on failure.
        A claimed jti stays spent while now <= expires_at, the grant's last
        acceptable instant (grants.py refuses only now > exp + leeway)."""

    def release_jti(self, jti: str) -> None:
        """Forget a claim, for a request refused after it claimed its grant (so that
        the grant is not used up); AuditUnavailable on failure."""

    def purge(self, now: float) -> int:
        """Drop records older than the retention and expired jtis; return how many."""

    def check(self) -> None:
        """For startup, so that a broken store stops the gatekeeper instead of failing
        every request: the store is reachable, has the expected shape and (SQLite)
        takes a write, which is rolled back. Changes nothing. Raises ConfigError
        ("audit.url") with a reason that names no secret."""

    def healthy(self) -> bool:
        """For /v1/health when no request has written lately: a real write, committed,
        of one item no search returns; False if it fails (nothing raises)."""


def jti_digest(jti: str) -> str:
    """Fixed-size and always encodable, whatever the grant's jti claim contains."""
    return hashlib.sha256(jti.encode("utf-8", "surrogatepass")).hexdigest()
