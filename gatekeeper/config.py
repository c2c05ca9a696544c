"""The customer's configuration: a TOML file, and/or environment variables.

Every key is one row of KEYS: its name in the file, its kind, its default and
bounds; its environment variable (`GATEKEEPER_<SECTION>_<KEY>`, for the Lambda
deployment, where there is no file) and its Config field follow from the name. The
environment wins over the file. Lists in the environment are JSON arrays or
comma-separated; `GATEKEEPER_VENDOR_KEYS` is a JSON object or `kid:key,kid:key`,
and replaces the file's whole [vendor_keys] table (a key rotated out in the
environment must not stay trusted through the file); `GATEKEEPER_APPROVERS_KEYS`,
a JSON object, does the same for [approvers.keys].

Anything wrong refuses to start with a ConfigError naming the offending key.
Unknown keys are errors too, in the file and among GATEKEEPER_* variables: a
misspelt `deny` must not silently allow everyone.
Nothing the vendor sends at run time can change any of this.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
import tomllib
from dataclasses import dataclass, field, make_dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import ECAlgorithm
from jwt.exceptions import InvalidKeyError

from .errors import OPS, ConfigError
from .paths import Network, is_int

ENV_PREFIX = "GATEKEEPER_"
ENV_VENDOR_KEYS = "GATEKEEPER_VENDOR_KEYS"
ENV_APPROVER_KEYS = "GATEKEEPER_APPROVERS_KEYS"
FREE_FORM = ("vendor_keys", "approvers.keys")  # tables of id -> key, not of KEYS
ENV_CONFIG_PATH = "GATEKEEPER_CONFIG"  # the Lambda adapter's file path, not a key
ENCRYPTION_MODES = ("sse-s3", "sse-kms")
MAX_PRESIGN_TTL = 3600
MAX_GRANT_LIFETIME = 3600
EVERYWHERE = ("0.0.0.0/0", "::/0")
IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
KID_RE = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
DYNAMO_TABLE_RE = re.compile(r"^[A-Za-z0-9_.\-]{3,255}$")
MIN_SECRET_CHARS = 32
AUDIT_URL_FORMS = "must be sqlite:///ABSOLUTE/PATH, sqlite:RELATIVE/PATH or dynamodb://TABLE"


# --- checks of single values: (key, value) -> the value to keep ------------------

def _ensure(test: Callable[[Any], Any], problem: str) -> Callable[[str, Any], Any]:
    """A check that keeps a value `test` accepts and refuses any other, saying
    `problem` (where "{!r}" or "{}" stands for the value)."""
    def check(key: str, value: Any) -> Any:
        if not test(value):
            raise ConfigError(key, problem.format(value))
        return value
    return check


def _endpoint_url(key: str, text: str) -> str:
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ConfigError(key, "must be like https://s3.example:9000")
    return f"{parts.scheme}://{parts.netloc}"


def _url(key: str, text: str) -> str:
    """"" or an https URL (http only on loopback, for a test IdP)."""
    parts = urlsplit(text)
    if text and not (parts.netloc and (parts.scheme == "https" or (
            parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")))):
        raise ConfigError(key, f"{text!r} is not an https URL")
    return text


def _audit_url(key: str, url: str) -> str:
    parse_audit_url(url)
    return url


def _origins(key: str, texts: list[str]) -> frozenset[str]:
    origins = set()
    for text in texts:
        parts = urlsplit(text)
        if text == "*" or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(key, f"{text!r} is not an origin like https://portal.example")
        if parts.path not in ("", "/") or parts.query or parts.fragment or "*" in text:
            raise ConfigError(key, f"{text!r}: an origin has no path, query or wildcard")
        origins.add(f"{parts.scheme}://{parts.netloc}".lower())
    return frozenset(origins)


def _networks(key: str, texts: list[str]) -> tuple[Network, ...]:
    out = []
    for text in texts:
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError:
            raise ConfigError(key, f"{text!r} is not a CIDR network (host bits set?)") from None
        # Clients are compared as IPv4 (paths.parse_ip): a rule in this form matches nobody.
        if network.version == 6 and network.subnet_of(IPV4_MAPPED):
            raise ConfigError(key, f"{text!r} is IPv4-mapped and would never match: write it as IPv4")
        out.append(network)
    return tuple(out)


def _ops(key: str, names: list[str]) -> frozenset[str]:
    unknown = sorted(set(names) - set(OPS))
    if unknown:
        raise ConfigError(key, f"{unknown[0]!r} is not an op (one of {', '.join(OPS)})")
    return frozenset(names)


def _countries(key: str, codes: list[str]) -> frozenset[str]:
    for code in codes:
        if not COUNTRY_RE.match(code):
            raise ConfigError(key, f"{code!r} is not an ISO 3166 alpha-2 code")
    return frozenset(codes)


# --- the table ------------------------------------------------------------------------

REQUIRED = None  # the default of a key that must be given


@dataclass(frozen=True)
class Key:
    name: str  # as in the file: "storage.bucket"
    kind: str  # what the file holds: "str", "int", "bool" or "list" (of strings)
    default: Any = REQUIRED
    bounds: tuple[int, int] | None = None  # inclusive, for ints
    check: Callable[[str, Any], Any] | None = None  # validates, and gives the value kept
    field: str = ""  # the Config attribute, when it is not the name's last part
    secret: bool = False  # kept out of repr(), so that logging a Config leaks nothing

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.replace(".", "_").upper()


KEYS = (
    Key("gatekeeper_id", "str", check=_ensure(bool, "must not be empty")),
    Key("issuer", "str", check=_ensure(bool, "must not be empty")),
    Key("allowed_origins", "list", (), check=_origins),
    Key("presign_ttl", "int", 60, (1, MAX_PRESIGN_TTL)),
    Key("max_grant_lifetime", "int", 300, (1, MAX_GRANT_LIFETIME)),
    Key("clock_leeway", "int", 30, (0, 300)),
    Key("max_upload_bytes", "int", 100 * 1024**2, (1, 5 * 1024**3)),
    Key("enabled", "bool", True),
    # The customer's switch for the gatekeeper's own powers (its IAM role lacks the rest).
    Key("allowed_ops", "list", OPS, check=_ops),
    Key("storage.bucket", "str", check=_ensure(BUCKET_RE.match, "{!r} is not a valid S3 bucket name")),
    Key("storage.region", "str", check=_ensure(REGION_RE.match, "{!r} is not a region like us-east-1")),
    Key("storage.endpoint_url", "str", "", check=_endpoint_url),
    Key("storage.encryption", "str", "sse-s3", check=_ensure(lambda mode: mode in ENCRYPTION_MODES,
                                                             f"must be one of {', '.join(ENCRYPTION_MODES)}")),
    Key("storage.kms_key_id", "str", ""),
    Key("acl.allow", "list", EVERYWHERE, check=_networks),
    Key("acl.deny", "list", (), check=_networks),
    Key("acl.countries", "list", (), check=_countries, field="countries"),
    Key("acl.geoip_db", "str", "", check=_ensure(lambda path: not path or os.path.isfile(path),
                                                 "file not found: {}"), field="geoip_db"),
    Key("acl.country_header", "str", "", field="country_header"),
    Key("acl.trusted_proxies", "list", (), check=_networks, field="trusted_proxies"),
    Key("acl.upload.allow", "list", EVERYWHERE, check=_networks),
    Key("acl.upload.deny", "list", (), check=_networks),
    Key("audit.url", "str", "sqlite:gatekeeper-audit.db", check=_audit_url, field="audit_url"),
    Key("audit.retention_days", "int", 180, (1, 3650), field="audit_retention_days"),
    Key("audit.cursor_secret", "str", "", check=_ensure(
        lambda text: not text or len(text) >= MIN_SECRET_CHARS,
        f"must be at least {MIN_SECRET_CHARS} characters (e.g. openssl rand -hex 32), or unset"),
        field="audit_cursor_secret", secret=True),
    Key("revocation.not_before", "int", 0, (0, 2**40), field="not_before"),
    Key("revocation.subjects", "list", (), check=lambda _, texts: frozenset(texts), field="revoked_subjects"),
    Key("revocation.approvals", "list", (), check=lambda _, texts: frozenset(texts), field="revoked_approvals"),
    Key("approvers.required", "int", 1, (1, 2), field="approvers_required"),
    # The customer's IdP (identity.py): off while issuer is "".
    Key("identity.issuer", "str", "", check=_url),
    Key("identity.audience", "str", ""),
    Key("identity.jwks_url", "str", "", check=_url),
    Key("identity.jwks_file", "str", "", check=_ensure(lambda path: not path or os.path.isfile(path),
                                                       "file not found: {}")),
    Key("identity.claim", "str", "email", check=_ensure(bool, "must not be empty")),
    Key("identity.max_age", "int", 43200, (60, 30 * 86400)),
    Key("identity.leeway", "int", 30, (0, 300)),
    Key("identity.ops", "list", ("get", "list", "delete", "audit"), check=_ops),
)
KEYS_BY_NAME = {key.name: key for key in KEYS}
KEYS_BY_ENV = {key.env: key for key in KEYS}
SECTIONS = {key.name.rpartition(".")[0] for key in KEYS} | set(FREE_FORM)


def _default(name: str) -> Any:
    key = KEYS_BY_NAME[name]
    return key.check(name, list(key.default)) if key.check and key.kind == "list" else key.default


# --- the parsed configuration -------------------------------------------------------------
# Frozen dataclasses whose fields follow from KEYS, so that a key is declared once:
# storage.* on StorageConfig, identity.* on IdentityConfig (Config.identity is None
# while identity.issuer is unset), the two address lists on AclConfig, every other key
# on Config (as its `field`, else its name), beside what the free-form tables give.

@dataclass(frozen=True)
class AclConfig:
    allow: tuple[Network, ...]
    deny: tuple[Network, ...]


def _attribute(key: Key) -> str:
    return key.field or key.name.rpartition(".")[2]


def _dataclass(name: str, keys: list[Key], *more: tuple) -> type:
    """A frozen dataclass with a field per key of `keys` (required, or with its default;
    a secret kept out of repr()), then the fields `more`."""
    own = [(_attribute(key), Any) if key.default is REQUIRED else
           (_attribute(key), Any, field(default=_default(key.name), repr=not key.secret)) for key in keys]
    return make_dataclass(name, [*own, *more], frozen=True, kw_only=name == "Config")


def _section(section: str) -> list[Key]:
    return [key for key in KEYS if key.name.startswith(section + ".")]


TOP_KEYS = [key for key in KEYS if key.field or "." not in key.name]
StorageConfig = _dataclass("StorageConfig", _section("storage"))
IdentityConfig = _dataclass("IdentityConfig", _section("identity"))
Config = _dataclass(
    "Config", TOP_KEYS,
    ("vendor_keys", Mapping[str, Ed25519PublicKey]), ("vendor_key_ids", tuple[str, ...]),
    ("approver_keys", Mapping[str, ec.EllipticCurvePublicKey]),  # empty: none approves
    ("storage", StorageConfig), ("acl", AclConfig), ("upload_acl", AclConfig),
    ("identity", IdentityConfig | None),  # None: no IdP token is asked for
)


# --- reading ------------------------------------------------------------------------------

def load(path: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the file (if any), overlay the environment, validate everything."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError("--config", f"file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("--config", f"not valid TOML: {exc}") from None
    flat = _flatten(raw)
    from_env = _from_env(env)
    for table in FREE_FORM:
        if any(key.startswith(table + ".") for key in from_env):
            flat = {key: value for key, value in flat.items() if not key.startswith(table + ".")}
    flat.update(from_env)
    return _build(flat)


def _flatten(raw: dict[str, Any], section: str = "") -> dict[str, Any]:
    """TOML tree -> {"section.key": value}, refusing unknown sections and keys."""
    flat: dict[str, Any] = {}
    for name, value in raw.items():
        dotted = f"{section}.{name}" if section else name
        if section in FREE_FORM:
            flat[dotted] = value  # free-form: id -> key
        elif dotted in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(dotted, "must be a table")
            flat.update(_flatten(value, dotted))
        elif dotted in KEYS_BY_NAME:
            flat[dotted] = value
        else:
            raise ConfigError(dotted, "unknown key (misspelt?)")
    return flat


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """GATEKEEPER_<SECTION>_<KEY> -> {"section.key": parsed value}."""
    out: dict[str, Any] = {}
    for name, text in env.items():
        if name in KEYS_BY_ENV:
            key = KEYS_BY_ENV[name]
            out[key.name] = _parse_env_value(name, text, key.kind)
        elif name.startswith(ENV_PREFIX) and name not in (ENV_VENDOR_KEYS, ENV_APPROVER_KEYS, ENV_CONFIG_PATH):
            raise ConfigError(name, "unknown variable (misspelt?)")
    if ENV_VENDOR_KEYS in env:
        for kid, key in _parse_vendor_keys_env(env[ENV_VENDOR_KEYS]).items():
            out[f"vendor_keys.{kid}"] = key
    if ENV_APPROVER_KEYS in env:
        approvers = _json(ENV_APPROVER_KEYS, env[ENV_APPROVER_KEYS], "must be a JSON object: id -> key")
        if not isinstance(approvers, dict):
            raise ConfigError(ENV_APPROVER_KEYS, "must be a JSON object: id -> key")
        out.update({f"approvers.keys.{approver}": key for approver, key in approvers.items()})
    return out


BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True,
              "0": False, "false": False, "no": False, "off": False}


def _parse_env_value(name: str, text: str, kind: str) -> Any:
    text = text.strip()
    if kind == "str":
        return text
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ConfigError(name, "must be an integer") from None
    if kind == "bool":
        if text.lower() not in BOOL_WORDS:
            raise ConfigError(name, "must be true or false")
        return BOOL_WORDS[text.lower()]
    if text.startswith("["):
        return _json(name, text, "must be a JSON array or comma-separated")
    return _comma_separated(text)


def _parse_vendor_keys_env(text: str) -> dict[str, str]:
    text = text.strip()
    if text.startswith("{"):
        return _json(ENV_VENDOR_KEYS, text, "not valid JSON")  # parsed, it is an object
    pairs = {}
    for kid, sep, key in (item.partition(":") for item in _comma_separated(text)):
        if not sep:
            raise ConfigError(ENV_VENDOR_KEYS, "entries are kid:key")
        pairs[kid.strip()] = key.strip()
    return pairs


def _json(name: str, text: str, problem: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ConfigError(name, problem) from None


def _comma_separated(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


# --- validating ---------------------------------------------------------------------------

KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {  # kind -> (test, what a wrong value hears)
    "str": (lambda v: isinstance(v, str), "must be a string"),
    "int": (is_int, "must be an integer"),
    "bool": (lambda v: isinstance(v, bool), "must be true or false"),
    "list": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "must be a list of strings"),
}


def _value(flat: dict[str, Any], key: Key) -> Any:
    """The key's value from `flat` or its default, type-checked, bounded and checked."""
    if key.name not in flat and key.default is REQUIRED:
        raise ConfigError(key.name, "is required")
    value = flat.get(key.name, key.default)
    value = list(value) if isinstance(value, tuple) else value  # a default list
    well_typed, problem = KINDS[key.kind]
    if not well_typed(value):
        raise ConfigError(key.name, problem)
    if key.bounds and not key.bounds[0] <= value <= key.bounds[1]:
        raise ConfigError(key.name, f"must be between {key.bounds[0]} and {key.bounds[1]}")
    return key.check(key.name, value) if key.check else value


def _table(flat: dict[str, Any], table: str, what: str):
    """(dotted name, id, value) of each entry of a free-form table, its id checked."""
    for dotted, value in flat.items():
        if dotted.startswith(table + "."):
            if not KID_RE.match(dotted.removeprefix(table + ".")):
                raise ConfigError(dotted, f"{what} is 1-64 letters, digits, '.', '_' or '-'")
            yield dotted, dotted.removeprefix(table + "."), value


def _vendor_keys(flat: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    keys = {}
    for dotted, kid, value in _table(flat, "vendor_keys", "a key id"):
        if not isinstance(value, str):
            raise ConfigError(dotted, "must be a base64url string")
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raise ConfigError(dotted, "is not base64url") from None
        if len(raw) != 32:
            raise ConfigError(dotted, "an Ed25519 public key is 32 bytes")
        keys[kid] = Ed25519PublicKey.from_public_bytes(raw)
    if not keys:
        raise ConfigError("vendor_keys", "at least one vendor key is required")
    return keys


def _approver_keys(flat: dict[str, Any]) -> dict[str, ec.EllipticCurvePublicKey]:
    """[approvers.keys]: id -> an ECDSA P-256 public key, as a JWK (a TOML table or
    its JSON text) or PEM. Never a private key: its holder alone may have that."""
    keys = {}
    for dotted, approver, value in _table(flat, "approvers.keys", "an approver id"):
        try:
            if isinstance(value, str) and value.lstrip().startswith("{"):
                value = json.loads(value)
            if isinstance(value, dict):
                if "d" in value:
                    raise ConfigError(dotted, "is a private key: paste only the public half")
                key = ECAlgorithm.from_jwk(value)
            elif isinstance(value, str) and value.lstrip().startswith("-----BEGIN PUBLIC KEY-----"):
                key = load_pem_public_key(value.strip().encode())
            else:
                raise ConfigError(dotted, "must be a JWK (table or JSON) or a PEM public key")
        except (ValueError, TypeError, InvalidKeyError):
            raise ConfigError(dotted, "is not a valid ECDSA P-256 public key") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ConfigError(dotted, "must be an ECDSA P-256 public key")
        keys[approver] = key
    return keys


def _build(flat: dict[str, Any]) -> Config:
    values = {key.name: _value(flat, key) for key in KEYS}
    # What no single key can say alone.
    if values["storage.encryption"] == "sse-kms" and not values["storage.kms_key_id"]:
        raise ConfigError("storage.kms_key_id", "is required when encryption is sse-kms")
    if values["acl.country_header"] and not values["acl.trusted_proxies"]:
        raise ConfigError("acl.country_header", "is only believed from trusted_proxies; set them")
    keys = _vendor_keys(flat)
    approvers = _approver_keys(flat)
    if values["approvers.required"] > max(len(approvers), 1):
        raise ConfigError("approvers.required", "asks for more approvers than [approvers.keys] lists")
    identity = {_attribute(key): values[key.name] for key in _section("identity")}
    if any(identity[name] for name in ("issuer", "audience", "jwks_url", "jwks_file")):
        for name in ("issuer", "audience"):
            if not identity[name]:
                raise ConfigError(f"identity.{name}", "is required when [identity] is set")
        if bool(identity["jwks_url"]) == bool(identity["jwks_file"]):
            raise ConfigError("identity.jwks_url", "give exactly one of jwks_url and jwks_file")
    return Config(
        **{_attribute(key): values[key.name] for key in TOP_KEYS},
        vendor_keys=keys, vendor_key_ids=tuple(sorted(keys)), approver_keys=approvers,
        identity=IdentityConfig(**identity) if identity["issuer"] else None,
        storage=StorageConfig(**{_attribute(key): values[key.name] for key in _section("storage")}),
        acl=AclConfig(values["acl.allow"], values["acl.deny"]),
        upload_acl=AclConfig(values["acl.upload.allow"], values["acl.upload.deny"]),
    )


# --- audit store URLs ---------------------------------------------------------------------

def parse_audit_url(url: str) -> tuple[str, str]:
    """("sqlite", file) or ("dynamodb", table); ConfigError("audit.url") otherwise."""
    path = sqlite_path(url)
    if path is not None:
        return "sqlite", path
    table = url.removeprefix("dynamodb://")
    if url.startswith("dynamodb://") and DYNAMO_TABLE_RE.match(table):
        return "dynamodb", table
    raise ConfigError("audit.url", AUDIT_URL_FORMS)


def sqlite_path(url: str) -> str | None:
    """The file of an SQLite audit URL, or None if `url` is not one.

    `sqlite:///var/lib/gatekeeper/audit.db` is /var/lib/gatekeeper/audit.db, as a
    reader expects; `sqlite:////var/...` (the SQLAlchemy spelling of an absolute
    path) is the same file. `sqlite:audit.db` or `sqlite:var/audit.db` is relative
    to the working directory. `sqlite://HOST/...` has no meaning here: refused."""
    if url.startswith("sqlite:///"):
        path = "/" + url.removeprefix("sqlite:///").lstrip("/")
    elif url.startswith("sqlite:") and not url.startswith("sqlite:/"):
        path = url.removeprefix("sqlite:")
    else:
        return None
    return path if path.strip("/") else None
