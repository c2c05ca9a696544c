"""Customer-approved vendor support access: support asks to read one ticket, an
admin of the tenant approves with an approver key only the customer holds (made in
the admin's browser, or with the gatekeeper's CLI), or refuses.

The approval is a JWS (ES256) over the claims of the gatekeeper's approver CLI
(`gatekeeper.cli.approval_claims`): this tenant's gatekeeper, the support person's
subject, the ticket's prefix, the ops, and a window of the requested duration from
the moment of signing. The portal checks that an approval it is handed says
exactly that (and, for a key made in a browser of this tenant, that its signature
verifies), stores it, and hands it out with each grant it mints for the request;
the customer's gatekeeper is the only judge of it (docs/protocol.md, §1a). Ending
an approval early stops the portal minting grants for it at once; the customer's
own hard stop is its gatekeeper's `revocation.approvals`.

Every step is a security event: the tenant's admins are mailed (tenants/events.py).
"""

from __future__ import annotations

import datetime as dt
import json
import re

import jwt
from django.db import transaction
from django.utils import timezone
from jwt.algorithms import ECAlgorithm
from jwt.exceptions import InvalidKeyError

from gatekeeper.approvals import APPROVABLE_OPS, MAX_APPROVAL_LIFETIME, SUPPORT_PREFIX
from tenants import events
from tenants.locations import location_of
from tenants.models import ApproverKey, SecurityEvent, SupportAccess, Tenant

DEFAULT_HOURS = 24
MAX_HOURS = MAX_APPROVAL_LIFETIME // 3600  # 7 days: what a gatekeeper accepts
MAX_REASON_BYTES = 1024
APPROVER_ID_RE = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")  # as the gatekeeper's config takes it
MAX_JWS_CHARS = 2048
Kind = SecurityEvent.Kind


class AccessError(Exception):
    """A step that cannot be taken; the message says why, for the page. `status`:
    400 for what was sent, 409 for a request whose state forbids the step."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def support_subject(user) -> str:
    return f"{SUPPORT_PREFIX}{user.pk}"


def request_json(access: SupportAccess) -> dict:
    """What an approver signs (with `gatekeeper.cli.approval_claims`), and what the
    CLI shows before it does: the settings page's request.json."""
    return {
        # The gatekeeper of the ticket's own location (tenants/locations.py): it judges the approval.
        "approval_id": access.approval_id, "gatekeeper_id": location_of(access.ticket).gatekeeper_id,
        "subject": support_subject(access.requested_by),
        "name": f"{access.requested_by.get_username()} (vendor support)",
        "prefix": access.ticket.prefix, "ops": list(access.ops), "duration": access.duration,
        "reason_code": access.reason_code, "reason": access.reason,
        "ticket": f"#{access.ticket.number}", "tenant": access.tenant.slug,
    }


def _event(kind, access: SupportAccess, detail: str = "") -> SecurityEvent:
    text = f"ticket #{access.ticket.number}" + (f", {detail}" if detail else "")
    return events.event(kind, subject=access.requested_by.get_username(), new=text[:254])


def request_access(user, ticket, *, reason_code: str, reason: str, hours: int, ops: list[str],
                   now: dt.datetime | None = None) -> SupportAccess:
    """Vendor support asks; the tenant's admins are told (mail and the settings page)."""
    if len(reason.encode("utf-8")) > MAX_REASON_BYTES:
        raise AccessError(f"The reason is limited to {MAX_REASON_BYTES} bytes.")
    if not ops or not set(ops) <= set(APPROVABLE_OPS) or not 1 <= hours <= MAX_HOURS:
        raise AccessError("Support may ask to read (get, list) for 1 hour to 7 days.")
    now = now or timezone.now()
    with transaction.atomic():
        access = SupportAccess.objects.create(
            tenant=ticket.tenant, ticket=ticket, requested_by=user, reason_code=reason_code, reason=reason,
            duration=hours * 3600, ops=sorted(ops), created_at=now)
        events.record(ticket.tenant, user, [_event(Kind.SUPPORT_ACCESS_REQUESTED, access,
                                                   f"{hours} h, {access.get_reason_code_display()}")], now=now)
    return access


def approve(access: SupportAccess, jws: str, admin, *, now: dt.datetime | None = None) -> SupportAccess:
    """Store one approver's approval, once it says exactly what was asked."""
    now = now or timezone.now()
    if access.state(now) not in (SupportAccess.Status.PENDING, SupportAccess.Status.APPROVED):
        raise AccessError(f"This request is {access.state(now)}: it can no longer be approved.", 409)
    approver, claims = _check_approval(access, jws.strip(), now)
    if any(a["approver"] == approver for a in access.approvals):
        raise AccessError(f"{approver} has already approved this request: a second approval needs another key.",
                          409)
    if any(a["by"] == admin.get_username() for a in access.approvals):
        raise AccessError("You have already approved this request: a second approval needs another admin.", 409)
    starts = dt.datetime.fromtimestamp(claims["nbf"], tz=dt.timezone.utc)
    ends = dt.datetime.fromtimestamp(claims["exp"], tz=dt.timezone.utc)
    with transaction.atomic():
        access.approvals = [*access.approvals, {"approver": approver, "jws": jws.strip(),
                                                "by": admin.get_username(), "at": now.isoformat()}]
        access.starts_at = max(filter(None, [access.starts_at, starts]))
        access.ends_at = min(filter(None, [access.ends_at, ends]))
        access.status, access.decided_at, access.decided_by = SupportAccess.Status.APPROVED, now, admin
        access.save()
        events.record(access.tenant, admin, [_event(Kind.SUPPORT_ACCESS_APPROVED, access,
                                                    f"by {approver} until {ends:%Y-%m-%d %H:%M} UTC")], now=now)
    return access


def _check_approval(access: SupportAccess, jws: str, now: dt.datetime) -> tuple[str, dict]:
    invalid = AccessError("This is not an approval of this request: paste the whole output of "
                          "`python -m gatekeeper approvers approve` for its request.json.")
    if not jws or len(jws) > MAX_JWS_CHARS:
        raise invalid
    try:
        header = jwt.get_unverified_header(jws)
        claims = jwt.decode(jws, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise invalid from None
    approver = header.get("kid")
    if header.get("alg") != "ES256" or not isinstance(approver, str) or not APPROVER_ID_RE.match(approver):
        raise invalid
    asked = request_json(access)
    said = {"aud": claims.get("aud"), "sub": claims.get("sub"), "jti": claims.get("jti"),
            "scope": claims.get("scope")}
    if said != {"aud": asked["gatekeeper_id"], "sub": asked["subject"], "jti": asked["approval_id"],
                "scope": {"prefix": asked["prefix"], "ops": asked["ops"]}}:
        raise AccessError("This approval is for another request, ticket, person or gatekeeper.")
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in (nbf, exp)) \
            or not 0 < exp - nbf <= access.duration:
        raise AccessError("This approval's window is malformed or longer than support asked for.")
    if exp <= now.timestamp():
        raise AccessError("This approval has already ended.")
    key = ApproverKey.objects.filter(tenant=access.tenant, approver_id=approver).first()
    if key is not None:  # made in a browser of this tenant: the portal can check it too
        try:
            jwt.decode(jws, ECAlgorithm.from_jwk(key.public_jwk), algorithms=["ES256"],
                       options={"verify_exp": False, "verify_nbf": False, "verify_aud": False,
                                "verify_iat": False})
        except (jwt.InvalidTokenError, InvalidKeyError):
            raise AccessError(f"This approval's signature does not verify with {approver}'s key.") from None
    return approver, claims


def refuse(access: SupportAccess, admin, *, now: dt.datetime | None = None) -> SupportAccess:
    now = now or timezone.now()
    if access.state(now) != SupportAccess.Status.PENDING:
        raise AccessError(f"This request is {access.state(now)}: only a pending one can be refused.", 409)
    with transaction.atomic():
        access.status, access.decided_at, access.decided_by = SupportAccess.Status.REFUSED, now, admin
        access.save(update_fields=["status", "decided_at", "decided_by"])
        events.record(access.tenant, admin, [_event(Kind.SUPPORT_ACCESS_REFUSED, access)], now=now)
    return access


def end(access: SupportAccess, admin, *, now: dt.datetime | None = None) -> SupportAccess:
    """Ending early: the portal mints no grant for it from now on (portal.tickets.grants).
    A vendor that ignored this could still use the approvals it holds until they
    end: the customer's gatekeeper's `revocation.approvals` is what binds it."""
    now = now or timezone.now()
    if access.state(now) != SupportAccess.Status.APPROVED:
        raise AccessError(f"This request is {access.state(now)}: only a running approval can be ended.", 409)
    with transaction.atomic():
        access.status, access.ended_at = SupportAccess.Status.ENDED, now
        access.save(update_fields=["status", "ended_at"])
        events.record(access.tenant, admin, [_event(
            Kind.SUPPORT_ACCESS_ENDED, access, f"approval {access.approval_id}")], now=now)
    return access


def live_approval(access: SupportAccess, now: dt.datetime) -> str | None:
    """The X-Approval value for a grant minted now, or None: pending, refused,
    ended or expired requests get no grant."""
    if access.state(now) != SupportAccess.Status.APPROVED or not access.approvals:
        return None
    return ",".join(a["jws"] for a in access.approvals)


# --- approver keys made in an admin's browser ---------------------------------------------

def add_approver_key(tenant: Tenant, admin, approver_id: str, public_jwk: str,
                     *, now: dt.datetime | None = None) -> ApproverKey:
    if not APPROVER_ID_RE.match(approver_id):
        raise AccessError("An approver id is 1-64 letters, digits, '.', '_' or '-'.")
    try:
        jwk = json.loads(public_jwk)
        if not isinstance(jwk, dict) or "d" in jwk or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
            raise ValueError
        ECAlgorithm.from_jwk(jwk)
    except (ValueError, TypeError, InvalidKeyError):
        raise AccessError("That is not the public half of an ECDSA P-256 key (a JWK).") from None
    if ApproverKey.objects.filter(tenant=tenant, approver_id=approver_id).exists():
        raise AccessError(f"{approver_id} is taken: choose another id.")
    now = now or timezone.now()
    public = {name: jwk[name] for name in ("kty", "crv", "x", "y")}
    with transaction.atomic():
        key = ApproverKey.objects.create(tenant=tenant, approver_id=approver_id, public_jwk=public,
                                         created_by=admin, created_at=now)
        events.record(tenant, admin, [events.event(Kind.APPROVER_KEY_ADDED, subject=approver_id)], now=now)
    return key


def approvers_toml(tenant: Tenant) -> str:
    """The [approvers.keys] block for the gatekeeper's config, as [vendor_keys]'s is shown."""
    lines = ["[approvers]", "required = 1  # 2: a two-person rule (needs two keys)", "", "[approvers.keys]"]
    lines += [f"{key.approver_id} = '{json.dumps(key.public_jwk, separators=(',', ':'))}'"
              for key in tenant.approver_keys.all()]
    return "\n".join(lines) + "\n"
