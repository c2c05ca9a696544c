"""A complete gatekeeper.toml for a tenant's self-hosted gatekeeper, as the settings
page offers it for download: every value the portal knows filled in (id, issuer,
origin, the vendor's public keys, bucket, region, storage endpoint), the customer's
own choices (ACL, proxies, encryption, audit) as working defaults marked CHOOSE,
and what only the customer knows as placeholders marked FILL IN, which the
gatekeeper's config loader refuses until they are replaced (so a file used
unread does not start). Nothing in it is secret: the vendor keys are public keys.

The keys are the gatekeeper's own (gatekeeper/config.py KEYS; docs/operations.md);
tests/tenants/test_gatekeeper_toml.py loads the result with that loader.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlsplit

from tenants.models import Tenant, TenantSigningKey

# Invalid on purpose (upper case), so that check-config names the key until it is replaced.
BUCKET_PLACEHOLDER = "FILL-IN-your-bucket"
REGION_PLACEHOLDER = "FILL-IN-your-region"
# Not a URL, so the loader names identity.jwks_url until it is replaced: the gatekeeper
# does not discover it, and where an IdP keeps its keys has no one convention.
JWKS_PLACEHOLDER = "FILL-IN-the-jwks_uri-of-your-IdP"
# Where the systemd unit of docs/operations.md keeps its state (StateDirectory=dualkey-gatekeeper).
AUDIT_URL = "sqlite:///var/lib/dualkey-gatekeeper/audit.db"
EVERYWHERE = ["0.0.0.0/0", "::/0"]
LOCAL_PROXY = ["127.0.0.1/32", "::1/128"]


def value(v) -> str:
    """A TOML value: JSON's strings, lists and integers are TOML's too."""
    return json.dumps(v, ensure_ascii=False)


def comment(text: str) -> str:
    """Text for a comment line: a line break in it would start a line of TOML."""
    return "".join(c if c.isprintable() else "?" for c in text)


def gatekeeper_id_for(tenant: Tenant) -> str:
    return tenant.gatekeeper_id or f"gk-{tenant.slug}"


def endpoint_url_for(storage_origin: str) -> str:
    """The storage origin as an S3-compatible endpoint_url, or "" for AWS itself,
    whose presigned URLs' origin follows from bucket and region."""
    host = urlsplit(storage_origin).hostname or ""
    return "" if not storage_origin or host.endswith(".amazonaws.com") else storage_origin


def gatekeeper_toml(tenant: Tenant, keys: list[TenantSigningKey], portal_origin: str, now: dt.datetime,
                    made_by: str, *, target=None) -> str:
    """`target` (tenants/onboarding.py Target): the location the file is for, its
    gatekeeper id, storage origin, bucket and region; by default the tenant's own
    fields (its active location). The settings page passes the location being
    connected, when there is one."""
    target = target or tenant
    gatekeeper_id = target.gatekeeper_id or gatekeeper_id_for(tenant)
    endpoint_url = endpoint_url_for(target.storage_origin)
    lines = [
        f"# gatekeeper.toml for {comment(tenant.name)} (tenant {tenant.slug!r}), from the Dualkey portal at "
        f"{portal_origin},",
        f"# made {now.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by {comment(made_by)}.",
        "#",
        "# Values the portal knows are filled in. FILL IN marks a placeholder the gatekeeper refuses",
        "# until you replace it; CHOOSE marks a working default that is your decision. Then:",
        "#   dualkey-gatekeeper check-config --config /etc/dualkey/gatekeeper.toml",
        "#   dualkey-gatekeeper init-audit   --config /etc/dualkey/gatekeeper.toml",
        "# Every key: docs/operations.md, \"Configuration reference\". Nothing here is secret.",
        "",
        "# The audience of every grant the portal signs for your tenant."
        + ("" if target.gatekeeper_id else " Not saved in the portal yet: enter the same id in its settings."),
        f"gatekeeper_id = {value(gatekeeper_id)}",
        "# The portal: the issuer of every grant, and the one browser origin allowed (CORS).",
        f"issuer = {value(portal_origin)}",
        f"allowed_origins = {value([portal_origin])}",
        "# CHOOSE: a kill switch (false refuses everything).",
        "enabled = true",
        "",
        "# The portal's public keys for your tenant. After a key rotation, download this again",
        "# (or copy the settings page's [vendor_keys] block) and restart the gatekeeper.",
        "[vendor_keys]",
        *[f"{value(key.kid)} = {value(key.public_key)}" for key in keys],
        "",
        "[storage]",
    ]
    if target.bucket:
        lines += ["# Your bucket, as entered in the portal's settings.", f"bucket = {value(target.bucket)}"]
    else:
        lines += ["# FILL IN: your bucket's name.", f"bucket = {value(BUCKET_PLACEHOLDER)}"]
    if target.region:
        lines += ["# Its region, as chosen in the portal's settings.", f"region = {value(target.region)}"]
    else:
        lines += ["# FILL IN: the bucket's region, such as eu-west-1.", f"region = {value(REGION_PLACEHOLDER)}"]
    if endpoint_url:
        lines += ["# The S3-compatible store at the storage origin saved in the portal's settings.",
                  f"endpoint_url = {value(endpoint_url)}"]
    else:
        lines += ["# S3-compatible stores only (MinIO, Ceph...): endpoint_url = \"https://s3.example:9000\""]
    lines += [
        "# CHOOSE: \"sse-s3\" (keys S3 manages) or \"sse-kms\" with kms_key_id = \"arn:aws:kms:...\".",
        "encryption = \"sse-s3\"",
        "",
        "[acl]",
        "# CHOOSE: who may read reports and search the audit log (CIDRs; deny beats allow).",
        f"allow = {value(EVERYWHERE)}",
        "deny = []",
        "# CHOOSE: the reverse proxy in front (TLS): its X-Forwarded-For is believed, and the client",
        "# is the right-most address it did not add. These are a proxy on the same machine.",
        f"trusted_proxies = {value(LOCAL_PROXY)}",
        "# Optional: countries = [\"DE\", \"AT\"] with geoip_db = \"/var/lib/GeoIP/GeoLite2-Country.mmdb\"",
        "",
        "[acl.upload]",
        "# CHOOSE: where your agents may upload from.",
        f"allow = {value(EVERYWHERE)}",
        "deny = []",
        "",
        "[audit]",
        "# The audit log: an SQLite file in the systemd unit's StateDirectory (docs/operations.md).",
        f"url = {value(AUDIT_URL)}",
        "retention_days = 180",
        "# FILL IN when more than one process answers audit searches: cursor_secret = \"(openssl rand -hex 32)\"",
        "",
        "[revocation]",
        "# Incident switches: refuse grants issued before this epoch second, or for these subjects.",
        "not_before = 0",
        "subjects = []",
        *identity_lines(tenant),
    ]
    return "\n".join(lines) + "\n"


def identity_lines(tenant: Tenant) -> list[str]:
    """[identity] from the tenant's IdP as saved in the settings, when both its issuer
    and client id are; nothing (the gatekeeper asks for no ID token) otherwise."""
    if not (tenant.idp_issuer and tenant.idp_client_id):
        return []
    discovery = tenant.idp_issuer.rstrip("/") + "/.well-known/openid-configuration"
    return [
        "",
        "[identity]",
        "# Your IdP, as saved in the portal's settings: every read also needs the person's ID token",
        "# from it, and its email must be the grant's (docs/operations.md, \"The customer's identity provider\").",
        f"issuer = {value(tenant.idp_issuer)}",
        "# The public client you registered for Dualkey's pages: the aud of its ID tokens.",
        f"audience = {value(tenant.idp_client_id)}",
        "# FILL IN: where your IdP publishes its signing keys, the \"jwks_uri\" of",
        f"# {comment(discovery)}. The gatekeeper does not discover it.",
        "# Or, with no network path to the IdP: jwks_file = \"/etc/dualkey/idp-jwks.json\" instead.",
        f"jwks_url = {value(JWKS_PLACEHOLDER)}",
        "# CHOOSE: the most seconds since the IdP last authenticated the person, and the ops that",
        "# need a token (agents upload without a person).",
        "max_age = 43200",
        "ops = [\"get\", \"list\", \"delete\", \"audit\"]",
    ]
