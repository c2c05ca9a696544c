"""The customer's configuration: a TOML file, and/or environment variables.

Every key can come from `GATEKEEPER_<SECTION>_<KEY>` (for the Lambda deployment,
where there is no file); the environment wins over the file. Lists in the
environment are JSON arrays or comma-separated; `GATEKEEPER_VENDOR_KEYS` is a JSON
object or `kid:key,kid:key`, and replaces the file's whole [vendor_keys] table (a
key rotated out in the environment must not stay trusted through the file).

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
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .errors import ConfigError

ENV_PREFIX = "GATEKEEPER_"
ENV_VENDOR_KEYS = "GATEKEEPER_VENDOR_KEYS"
ENV_CONFIG_PATH = "GATEKEEPER_CONFIG"  # the Lambda adapter's file path, not a key
ENCRYPTION_MODES = ("sse-s3", "sse-kms")
MAX_PRESIGN_TTL = 3600
MAX_GRANT_LIFETIME = 3600
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AclConfig:
    allow: tuple[Network, ...]
    deny: tuple[Network, ...]


@dataclass(frozen=True)
class StorageConfig:
    bucket: str
    region: str
    endpoint_url: str = ""
    encryption: str = "sse-s3"
    kms_key_id: str = ""


@dataclass(frozen=True)
class Config:
    gatekeeper_id: str
    issuer: str
    allowed_origins: frozenset[str]
    vendor_keys: Mapping[str, Ed25519PublicKey]
    storage: StorageConfig
    acl: AclConfig
    upload_acl: AclConfig
    presign_ttl: int = 60
    max_grant_lifetime: int = 300
    clock_leeway: int = 30
    max_upload_bytes: int = 100 * 1024 * 1024
    enabled: bool = True
    countries: frozenset[str] = frozenset()
    geoip_db: str = ""
    country_header: str = ""
    trusted_proxies: tuple[Network, ...] = ()
    audit_url: str = "sqlite:gatekeeper-audit.db"
    audit_retention_days: int = 180
    not_before: int = 0
    revoked_subjects: frozenset[str] = frozenset()
    vendor_key_ids: tuple[str, ...] = field(default=())


# The schema: section -> key -> kind. "" is the top level.
SCHEMA: dict[str, dict[str, str]] = {
    "": {
        "gatekeeper_id": "str", "issuer": "str", "allowed_origins": "list",
        "presign_ttl": "int", "max_grant_lifetime": "int", "clock_leeway": "int",
        "max_upload_bytes": "int", "enabled": "bool",
    },
    "vendor_keys": {},  # free-form kid -> key
    "storage": {
        "bucket": "str", "region": "str", "endpoint_url": "str",
        "encryption": "str", "kms_key_id": "str",
    },
    "acl": {
        "allow": "list", "deny": "list", "countries": "list", "geoip_db": "str",
        "country_header": "str", "trusted_proxies": "list",
    },
    "acl.upload": {"allow": "list", "deny": "list"},
    "audit": {"url": "str", "retention_days": "int"},
    "revocation": {"not_before": "int", "subjects": "list"},
}

EVERYWHERE = ["0.0.0.0/0", "::/0"]
IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
KID_RE = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


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
    if any(key.startswith("vendor_keys.") for key in from_env):
        flat = {key: value for key, value in flat.items() if not key.startswith("vendor_keys.")}
    flat.update(from_env)
    return _build(flat)


def _flatten(raw: dict[str, Any]) -> dict[str, Any]:
    """TOML tree -> {"section.key": value}, refusing unknown sections and keys."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SCHEMA and key:
            if not isinstance(value, dict):
                raise ConfigError(key, "must be a table")
            for sub, subvalue in value.items():
                if key == "acl" and sub == "upload":
                    if not isinstance(subvalue, dict):
                        raise ConfigError("acl.upload", "must be a table")
                    for k, v in subvalue.items():
                        _check_known("acl.upload", k)
                        flat[f"acl.upload.{k}"] = v
                    continue
                if key != "vendor_keys":
                    _check_known(key, sub)
                flat[f"{key}.{sub}"] = subvalue
        else:
            _check_known("", key)
            flat[key] = value
    return flat


def _check_known(section: str, key: str) -> None:
    if key not in SCHEMA[section]:
        name = f"{section}.{key}" if section else key
        raise ConfigError(name, "unknown key (misspelt?)")


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """GATEKEEPER_<SECTION>_<KEY> -> {"section.key": parsed value}."""
    names: dict[str, tuple[str, str]] = {}
    for section, keys in SCHEMA.items():
        for key, kind in keys.items():
            dotted = f"{section}.{key}" if section else key
            names[ENV_PREFIX + dotted.replace(".", "_").upper()] = (dotted, kind)
    out: dict[str, Any] = {}
    for name, text in env.items():
        if name in names:
            dotted, kind = names[name]
            out[dotted] = _parse_env_value(name, text, kind)
        elif name.startswith(ENV_PREFIX) and name not in (ENV_VENDOR_KEYS, ENV_CONFIG_PATH):
            raise ConfigError(name, "unknown variable (misspelt?)")
    if ENV_VENDOR_KEYS in env:
        for kid, key in _parse_vendor_keys_env(env[ENV_VENDOR_KEYS]).items():
            out[f"vendor_keys.{kid}"] = key
    return out


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
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, "must be true or false")
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            raise ConfigError(name, "must be a JSON array or comma-separated") from None
        return value
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_vendor_keys_env(text: str) -> dict[str, str]:
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            raise ConfigError(ENV_VENDOR_KEYS, "not valid JSON") from None
        if not isinstance(value, dict):
            raise ConfigError(ENV_VENDOR_KEYS, "must be a JSON object")
        return value
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kid, sep, key = item.partition(":")
        if not sep:
            raise ConfigError(ENV_VENDOR_KEYS, "entries are kid:key")
        pairs[kid.strip()] = key.strip()
    return pairs


# --- typed getters that fail loudly -------------------------------------------

def _get(flat, key, kind, default=None, required=False):
    if key not in flat:
        if required:
            raise ConfigError(key, "is required")
        return default
    value = flat[key]
    if kind == "str" and not isinstance(value, str):
        raise ConfigError(key, "must be a string")
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(key, "must be an integer")
    if kind == "bool" and not isinstance(value, bool):
        raise ConfigError(key, "must be true or false")
    if kind == "list" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ConfigError(key, "must be a list of strings")
    return value


def _int_in(flat, key, default, low, high):
    value = _get(flat, key, "int", default)
    if not low <= value <= high:
        raise ConfigError(key, f"must be between {low} and {high}")
    return value


def _networks(flat, key, default) -> tuple[Network, ...]:
    out = []
    for text in _get(flat, key, "list", default):
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError:
            raise ConfigError(key, f"{text!r} is not a CIDR network (host bits set?)") from None
        # Clients are compared as IPv4 (acl.parse_ip): a rule in this form matches nobody.
        if network.version == 6 and network.subnet_of(IPV4_MAPPED):
            raise ConfigError(key, f"{text!r} is IPv4-mapped and would never match: write it as IPv4")
        out.append(network)
    return tuple(out)


def _origin(key: str, text: str) -> str:
    parts = urlsplit(text)
    if text == "*" or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(key, f"{text!r} is not an origin like https://portal.example")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "*" in text:
        raise ConfigError(key, f"{text!r}: an origin has no path, query or wildcard")
    return f"{parts.scheme}://{parts.netloc}".lower()


def _vendor_keys(flat) -> dict[str, Ed25519PublicKey]:
    keys = {}
    for dotted, value in flat.items():
        if not dotted.startswith("vendor_keys."):
            continue
        kid = dotted.removeprefix("vendor_keys.")
        if not KID_RE.match(kid):
            raise ConfigError(dotted, "a key id is 1-64 letters, digits, '.', '_' or '-'")
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


def _build(flat: dict[str, Any]) -> Config:
    gatekeeper_id = _get(flat, "gatekeeper_id", "str", required=True)
    if not gatekeeper_id:
        raise ConfigError("gatekeeper_id", "must not be empty")
    issuer = _get(flat, "issuer", "str", required=True)
    if not issuer:
        raise ConfigError("issuer", "must not be empty")
    origins = frozenset(
        _origin("allowed_origins", o) for o in _get(flat, "allowed_origins", "list", [])
    )

    bucket = _get(flat, "storage.bucket", "str", required=True)
    if not BUCKET_RE.match(bucket):
        raise ConfigError("storage.bucket", f"{bucket!r} is not a valid S3 bucket name")
    region = _get(flat, "storage.region", "str", required=True)
    if not REGION_RE.match(region):
        raise ConfigError("storage.region", f"{region!r} is not a region like us-east-1")
    endpoint_url = _get(flat, "storage.endpoint_url", "str", "")
    if endpoint_url:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ConfigError("storage.endpoint_url", "must be like https://s3.example:9000")
        endpoint_url = f"{parts.scheme}://{parts.netloc}"
    encryption = _get(flat, "storage.encryption", "str", "sse-s3")
    if encryption not in ENCRYPTION_MODES:
        raise ConfigError("storage.encryption", f"must be one of {', '.join(ENCRYPTION_MODES)}")
    kms_key_id = _get(flat, "storage.kms_key_id", "str", "")
    if encryption == "sse-kms" and not kms_key_id:
        raise ConfigError("storage.kms_key_id", "is required when encryption is sse-kms")

    countries = _get(flat, "acl.countries", "list", [])
    for code in countries:
        if not COUNTRY_RE.match(code):
            raise ConfigError("acl.countries", f"{code!r} is not an ISO 3166 alpha-2 code")
    geoip_db = _get(flat, "acl.geoip_db", "str", "")
    if geoip_db and not os.path.isfile(geoip_db):
        raise ConfigError("acl.geoip_db", f"file not found: {geoip_db}")
    country_header = _get(flat, "acl.country_header", "str", "")
    trusted_proxies = _networks(flat, "acl.trusted_proxies", [])
    if country_header and not trusted_proxies:
        raise ConfigError("acl.country_header", "is only believed from trusted_proxies; set them")

    from .audit import sqlite_path  # here: audit imports acl, which imports this module

    audit_url = _get(flat, "audit.url", "str", "sqlite:gatekeeper-audit.db")
    if sqlite_path(audit_url) is None and not (audit_url.startswith("dynamodb://") and len(audit_url) > 11):
        raise ConfigError("audit.url",
                          "must be sqlite:///ABSOLUTE/PATH, sqlite:RELATIVE/PATH or dynamodb://TABLE")

    keys = _vendor_keys(flat)
    return Config(
        gatekeeper_id=gatekeeper_id,
        issuer=issuer,
        allowed_origins=origins,
        vendor_keys=keys,
        vendor_key_ids=tuple(sorted(keys)),
        storage=StorageConfig(bucket, region, endpoint_url, encryption, kms_key_id),
        acl=AclConfig(_networks(flat, "acl.allow", EVERYWHERE), _networks(flat, "acl.deny", [])),
        upload_acl=AclConfig(
            _networks(flat, "acl.upload.allow", EVERYWHERE), _networks(flat, "acl.upload.deny", [])
        ),
        presign_ttl=_int_in(flat, "presign_ttl", 60, 1, MAX_PRESIGN_TTL),
        max_grant_lifetime=_int_in(flat, "max_grant_lifetime", 300, 1, MAX_GRANT_LIFETIME),
        clock_leeway=_int_in(flat, "clock_leeway", 30, 0, 300),
        max_upload_bytes=_int_in(flat, "max_upload_bytes", 100 * 1024 * 1024, 1, 5 * 1024**3),
        enabled=_get(flat, "enabled", "bool", True),
        countries=frozenset(countries),
        geoip_db=geoip_db,
        country_header=country_header,
        trusted_proxies=trusted_proxies,
        audit_url=audit_url,
        audit_retention_days=_int_in(flat, "audit.retention_days", 180, 1, 3650),
        not_before=_int_in(flat, "revocation.not_before", 0, 0, 2**40),
        revoked_subjects=frozenset(_get(flat, "revocation.subjects", "list", [])),
    )
