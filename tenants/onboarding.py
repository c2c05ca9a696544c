"""A tenant's onboarding checklist, from invited to live, and the pieces its steps need:
the CloudFormation "Launch stack" link, the probe grants of the browser's
verification, and the record of what that verification found.

The steps, in order (STEPS): the first admin joined → data location and region
chosen → gatekeeper deployed → connected (URL, id) → verified in an admin's
browser → cut over → existing tickets moved → live. Each shows its state, who
did it and when: from an OnboardingStep row where the portal records the step,
read from elsewhere where it already knows (the first admin's membership, the
tenant's tickets, its status). Admins see the whole checklist; vendor support
sees `progress` (state, who, when: never a URL, a check's detail or any data).

Which gatekeeper the steps are about: `target_for(tenant)`, the storage location
being connected (tenants/locations.py: the newest in state `connecting`) when
there is one, else the active location (the tenant's own fields mirror it). So
a tenant moving to its own gatekeeper adds a location, and the checklist, the
Launch stack link, the gatekeeper.toml download and the verification follow it:
"connected" is recorded when the admin's browser posts its gatekeeper's health
(`location_connected`), "verified" when the browser's round trip through it
passes, "cut over" by the locations' cut-over action (`record_cut_over`); after
the cut over the target is the active location again, now that one.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from django.conf import settings
from django.core.files.storage import storages

from gatekeeper import VERSION
from gatekeeper_client.grants import mint_grant
from tenants.events import describe
from tenants.gatekeeper_toml import gatekeeper_id_for
from tenants.models import Membership, OnboardingStep, StorageLocation, Tenant, TenantSigningKey
from tenants.signing import active_signing_key
from tenants.validators import origin_of

Step = OnboardingStep.Step
STEPS = ("admin_joined", Step.LOCATION_CHOSEN, Step.DEPLOYED, Step.CONNECTED, Step.VERIFIED, Step.CUT_OVER,
         "tickets_moved", Step.LIVE)
TITLES = {"admin_joined": "First admin joined", "tickets_moved": "Existing tickets moved",
          **{step.value: step.label for step in Step}}
# A step's state as the checklist shows it.
DONE, FAILED, TODO, OUTDATED, UNAVAILABLE, NOT_NEEDED = (
    "done", "failed", "todo", "outdated", "unavailable", "not_needed")
STATE_LABELS = {DONE: "Done", FAILED: "Failed", TODO: "To do", OUTDATED: "Outdated", UNAVAILABLE: "Not yet available",
                NOT_NEEDED: "Not needed"}


# --- where the gatekeeper being connected is (the storage locations' merge point) -----

@dataclass(frozen=True)
class Target:
    gatekeeper_url: str
    gatekeeper_id: str
    storage_origin: str
    region: str
    bucket: str
    location_id: int | None = None
    # True for a location being connected (not yet cut over to); False for the active one.
    connecting: bool = False
    # When its gatekeeper's health was last posted by an admin's browser (a connecting location).
    reported_at: dt.datetime | None = None
    # vendor | customer: who runs it (verify.js sends the person's ID token to the customer's alone).
    kind: str = ""

    @property
    def connected(self) -> bool:
        """A gatekeeper URL and id are known: it can be verified."""
        return bool(self.gatekeeper_url and self.gatekeeper_id)

    @property
    def gatekeeper_origin(self) -> str:
        return origin_of(self.gatekeeper_url) if self.gatekeeper_url else ""

    def facts(self) -> dict:
        """What a recorded step was done for: compared with the target now."""
        return {"gatekeeper_url": self.gatekeeper_url, "gatekeeper_id": self.gatekeeper_id,
                "storage_origin": self.storage_origin}


def connecting_location(tenant: Tenant) -> StorageLocation | None:
    """The location being connected: the newest `connecting` one with a gatekeeper."""
    return (StorageLocation.objects.filter(tenant=tenant, state=StorageLocation.State.CONNECTING)
            .exclude(gatekeeper_url="").exclude(gatekeeper_id="").order_by("-created_at", "-id").first())


def target_for(tenant: Tenant) -> Target:
    """The gatekeeper the checklist is about: the location being connected, else
    the active one (through the tenant's mirrored fields). A connecting location
    without a region of its own is in the tenant's chosen region."""
    location = connecting_location(tenant)
    if location is not None:
        return Target(location.gatekeeper_url, location.gatekeeper_id, location.storage_origin,
                      location.chosen_region or tenant.region, location.chosen_bucket, location.pk, True,
                      location.reported_at, kind=location.kind)
    return Target(tenant.gatekeeper_url, tenant.gatekeeper_id, tenant.storage_origin, tenant.region, tenant.bucket,
                  kind=tenant.data_location)


# --- the "Launch stack" link (deploy/aws/gatekeeper.yaml) -------------------------------

# The zip the link's stack runs: `make gatekeeper-zip`'s default, published by
# `manage.py publish_gatekeeper` beside the template.
RUNTIME, PYTHON_VERSION, ARCHITECTURE = "python3.12", "3.12", "arm64"
TEMPLATE_KEY = f"gatekeeper/{VERSION}/gatekeeper.yaml"
CODE_KEY = f"gatekeeper/{VERSION}/gatekeeper-{VERSION}-py{PYTHON_VERSION}-{ARCHITECTURE}.zip"
QUICK_CREATE = "https://{region}.console.aws.amazon.com/cloudformation/home?region={region}#/stacks/quickcreate?"


def stack_name_for(tenant: Tenant) -> str:
    return f"dualkey-gatekeeper-{tenant.slug}"


def launch_parameters(tenant: Tenant, keys: list[TenantSigningKey], portal_origin: str) -> dict[str, str]:
    """Every template parameter the portal knows, with its value. The others (the
    access lists, countries, encryption, retention, concurrency, the IdP's JWKS URL)
    are the customer's to choose in the console; the template's defaults stand."""
    target = target_for(tenant)
    parameters = {
        "GatekeeperId": target.gatekeeper_id or gatekeeper_id_for(tenant),
        "PortalOrigin": portal_origin,
        "VendorKeys": ",".join(f"{key.kid}:{key.public_key}" for key in keys),
        "CodeBucket": settings.DUALKEY_ARTIFACTS_BUCKET,
        "CodeKey": CODE_KEY,
        "Runtime": RUNTIME,
        "Architecture": ARCHITECTURE,
    }
    if target.bucket:
        parameters["BucketName"] = target.bucket
    # The tenant's IdP, when both halves are known: the stack's [identity]. Its JWKS URL
    # the portal does not know (the IdP's discovery document names it): the template's
    # Rules refuse the stack until the customer fills it in.
    if tenant.idp_issuer and tenant.idp_client_id:
        parameters["IdentityIssuer"] = tenant.idp_issuer
        parameters["IdentityAudience"] = tenant.idp_client_id
    return parameters


def template_url() -> str:
    return storages["artifacts"].url(TEMPLATE_KEY)


def launch_stack_url(tenant: Tenant, keys: list[TenantSigningKey], portal_origin: str) -> str | None:
    """The console's quick-create page for the chosen region, every known parameter
    filled in; None until a region is chosen (a stack lives in one region)."""
    region = target_for(tenant).region
    if not region:
        return None
    query = {"templateURL": template_url(), "stackName": stack_name_for(tenant)}
    query |= {f"param_{name}": value for name, value in launch_parameters(tenant, keys, portal_origin).items()}
    return QUICK_CREATE.format(region=region) + urlencode(query, quote_via=quote)


# --- recording steps ------------------------------------------------------------------

def record(tenant: Tenant, step: str, actor, *, state: str = OnboardingStep.State.DONE, detail: dict | None = None,
           now: dt.datetime | None = None) -> OnboardingStep:
    row, _ = OnboardingStep.objects.update_or_create(tenant=tenant, step=step, defaults={
        "state": state, "actor": actor, "actor_name": describe(actor), "detail": detail or {},
        "at": now or dt.datetime.now(dt.timezone.utc)})
    return row


def storage_saved(tenant: Tenant, actor) -> None:
    """After the settings' storage form saved: the location step when location or
    region changed (or is set and unrecorded), the connected step likewise for the
    gatekeeper, unless the checklist follows a location being connected (the form
    edits the active one; that location is connected from its own row)."""
    target = target_for(tenant)
    rows = {row.step: row for row in tenant.onboarding_steps.all()}
    location = {"data_location": tenant.data_location, "region": target.region}
    if target.region and (Step.LOCATION_CHOSEN not in rows or rows[Step.LOCATION_CHOSEN].detail != location):
        record(tenant, Step.LOCATION_CHOSEN, actor, detail=location)
    if target.connected and not target.connecting and (Step.CONNECTED not in rows or rows[Step.CONNECTED].detail != target.facts()):
        record(tenant, Step.CONNECTED, actor, detail=target.facts())


def tenant_created(tenant: Tenant, actor) -> None:
    """Support chose location and region when creating the tenant."""
    if target_for(tenant).region:
        record(tenant, Step.LOCATION_CHOSEN, actor,
               detail={"data_location": tenant.data_location, "region": target_for(tenant).region})


def location_connected(tenant: Tenant, location: StorageLocation, actor) -> None:
    """An admin's browser posted the health of `location`'s gatekeeper and the
    portal recorded it: the connected step, when it is the location the checklist
    follows (connecting, or the active one with nothing being connected)."""
    target = target_for(tenant)
    if target.location_id == location.pk or (target.location_id is None
                                             and location.state == StorageLocation.State.ACTIVE):
        record(tenant, Step.CONNECTED, actor, detail=target.facts())


def record_cut_over(tenant: Tenant, actor) -> None:
    """The hook for "new tickets go to the connected gatekeeper from now on": the
    storage locations' cut-over action calls it, and going live records it too
    (status_changed) for a tenant that never needed a second location."""
    active = Target(tenant.gatekeeper_url, tenant.gatekeeper_id, tenant.storage_origin, tenant.region, tenant.bucket)
    record(tenant, Step.CUT_OVER, actor, detail=active.facts())  # the active location's (the tenant's mirror)


def status_changed(tenant: Tenant, old: str, actor) -> None:
    if tenant.status == Tenant.Status.ACTIVE and old != Tenant.Status.ACTIVE:
        record_cut_over(tenant, actor)
        record(tenant, Step.LIVE, actor)


# --- the verification's probe object and its report -------------------------------------

PROBE_PREFIX = "tickets/_probe/"  # inside tickets/: where the stack's role may write at all
PROBE_NAME = "probe.txt"
PROBE_CONTENT_TYPE = "text/plain"
PROBE_GRANT_LIFETIME = 120


@dataclass(frozen=True)
class ProbeGrants:
    key: str
    prefix: str
    put: str
    get: str
    delete: str
    expires_at: dt.datetime


def probe_grants(tenant: Tenant, user, *, now: float | None = None) -> ProbeGrants:
    """Three grants for one fresh probe object's own prefix: put (single use), get,
    delete (single use). Three, because the gatekeeper deletes when it signs: a
    batch of get and delete would delete before the browser read the object."""
    issued = time.time() if now is None else now
    prefix = f"{PROBE_PREFIX}{secrets.token_hex(16)}/"
    key = active_signing_key(tenant)

    def grant(op: str) -> str:
        return mint_grant(key, issuer=settings.DUALKEY_PORTAL_ORIGIN, audience=target_for(tenant).gatekeeper_id,
                          subject=f"user:{user.pk}", name=f"{user.get_username()} (verifying the gatekeeper)",
                          prefix=prefix, ops=(op,), lifetime=PROBE_GRANT_LIFETIME, now=issued,
                          # With [identity], the browser adds the admin's ID token (lib/identity.js).
                          identity=(user.email or "").lower() or None)

    return ProbeGrants(prefix + PROBE_NAME, prefix, grant("put"), grant("get"), grant("delete"),
                       dt.datetime.fromtimestamp(int(issued) + PROBE_GRANT_LIFETIME, tz=dt.timezone.utc))


# The checks the browser reports (static/js/settings/checks.js and verify-checks.js).
HEALTH_CHECKS = ("reachable", "protocol", "gatekeeper_id", "active_kid", "next_kid", "previous_kids", "unknown_kids",
                 "clock", "audit", "enabled", "storage", "bucket", "region", "approvals", "identity", "encryption")
ROUND_TRIP = ("probe_grant", "probe_sign", "probe_upload", "probe_read", "probe_delete")
CHECKS = HEALTH_CHECKS + ROUND_TRIP
OUTCOMES = ("pass", "fail", "warn", "info", "skip")
# Verified means these passed, and nothing failed (the probe's delete may warn: a
# customer may switch delete off, seed 002; verify-checks.js MUST_PASS is the same).
MUST_PASS = ("reachable", "gatekeeper_id", "active_kid", "clock", "audit", "enabled", "storage", *ROUND_TRIP[:-1])
MAX_REPORT_BYTES = 8 * 1024


class ReportError(Exception):
    """A verification report refused: `status` (400 malformed, 409 stale) and why."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def parse_report(data: object, tenant: Tenant) -> dict[str, str]:
    """{check: outcome} from the browser's report, which must name the gatekeeper
    these settings name now (a page loaded before a save verified another)."""
    if not isinstance(data, dict) or set(data) != {"gatekeeper_url", "gatekeeper_id", "storage_origin", "checks"}:
        raise ReportError("The report is {gatekeeper_url, gatekeeper_id, storage_origin, checks}.")
    checks = data["checks"]
    if not isinstance(checks, dict) or not checks:
        raise ReportError("checks: an object of check → outcome.")
    for name, outcome in checks.items():
        if name not in CHECKS:
            raise ReportError(f"checks: unknown check {str(name)[:40]!r}.")
        if outcome not in OUTCOMES:
            raise ReportError(f"checks: {name} is one of {', '.join(OUTCOMES)}.")
    facts = target_for(tenant).facts()
    if any(not isinstance(data[name], str) for name in facts):
        raise ReportError("gatekeeper_url, gatekeeper_id and storage_origin are strings.")
    if not target_for(tenant).connected:
        raise ReportError("No gatekeeper is connected: nothing to verify.", status=409)
    if {name: data[name] for name in facts} != facts:
        raise ReportError("These settings name another gatekeeper now: reload the page and verify again.", status=409)
    return dict(checks)


def verified(checks: dict[str, str]) -> bool:
    return "fail" not in checks.values() and all(checks.get(name) == "pass" for name in MUST_PASS)


def record_verification(tenant: Tenant, actor, checks: dict[str, str], *, now: dt.datetime | None = None
                        ) -> OnboardingStep:
    """The verified step, passed or failed; and deployed, the first time a
    gatekeeper answered the admin's browser (it runs, so it is deployed)."""
    facts = target_for(tenant).facts()
    if checks.get("reachable") == "pass":
        deployed = tenant.onboarding_steps.filter(step=Step.DEPLOYED).first()
        if deployed is None or deployed.detail != facts:
            record(tenant, Step.DEPLOYED, actor, detail=facts, now=now)
    state = OnboardingStep.State.DONE if verified(checks) else OnboardingStep.State.FAILED
    return record(tenant, Step.VERIFIED, actor, state=state, detail={**facts, "checks": checks}, now=now)


# --- the checklist ------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    step: str
    title: str
    state: str
    who: str = ""
    when: dt.datetime | None = None
    note: str = ""  # for admins only: what the state means, what to do
    current: bool = False  # the first step still to do

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def finished(self) -> bool:
        return self.state in (DONE, NOT_NEEDED)


def _first_admin(tenant: Tenant) -> Membership | None:
    return (Membership.objects.select_related("user").filter(tenant=tenant, role=Membership.Role.ADMIN)
            .order_by("created_at", "id").first())


def checklist(tenant: Tenant) -> list[Item]:
    rows = {row.step: row for row in tenant.onboarding_steps.all()}
    target = target_for(tenant)
    items = []
    for step in STEPS:
        items.append(_item(tenant, step, rows.get(step), target))
    current = next((i for i, item in enumerate(items) if not item.finished and item.state != UNAVAILABLE), None)
    if current is not None:
        item = items[current]
        items[current] = Item(item.step, item.title, item.state, item.who, item.when, item.note, current=True)
    return items


def _tickets_moved(tenant: Tenant, title: str) -> Item:
    """Done when every ticket (but erased ones) is at the active location; who and
    when from the last finished move (portal/moves, reached by its reverse relation:
    tenants/ does not import portal/)."""
    elsewhere = (tenant.tickets.filter(erased_at__isnull=True)
                 .exclude(location__state=StorageLocation.State.ACTIVE).count())
    jobs = tenant.move_jobs.order_by("-created_at")
    if not elsewhere:
        last = jobs.filter(state="finished").first()
        if last is None:
            return Item("tickets_moved", title, NOT_NEEDED, note="Every ticket is at the active location.")
        return Item("tickets_moved", title, DONE, last.created_by_name, last.finished_at)
    running = jobs.filter(state__in=["running", "paused"]).first()
    if running is not None:
        return Item("tickets_moved", title, TODO, running.created_by_name, running.created_at,
                    note=f"A move is {running.state}: {elsewhere} ticket{'s' if elsewhere != 1 else ''} "
                    "still at an earlier location. Its progress is under Move tickets.")
    return Item("tickets_moved", title, TODO, note=f"{elsewhere} ticket{'s' if elsewhere != 1 else ''} still at an "
                "earlier location (readable there). Move them under Move tickets, once cut over.")


def _from_row(step: str, row, note: str = "", state: str | None = None) -> Item:
    return Item(step, TITLES[step], state or row.state, row.actor_name, row.at, note)


def _item(tenant: Tenant, step: str, row: OnboardingStep | None, target: Target) -> Item:
    title = TITLES[step]
    if step == "admin_joined":
        admin = _first_admin(tenant)
        if admin is None:
            return Item(step, title, TODO, note="Vendor support invites the first admin by email.")
        return Item(step, title, DONE, admin.user.get_username(), admin.created_at)
    if step == "tickets_moved":
        if not tenant.tickets.exists():
            return Item(step, title, NOT_NEEDED, note="No tickets yet: nothing to move.")
        return _tickets_moved(tenant, title)
    if step == Step.LIVE:
        if tenant.status == Tenant.Status.ACTIVE:
            return _from_row(step, row) if row else Item(step, title, DONE, note="Live before this checklist "
                                                         "recorded who made it so.")
        return Item(step, title, TODO, note="Vendor support makes the tenant active once it is verified.")
    if row is None:
        if step == Step.CONNECTED and target.connected and not target.connecting:
            return Item(step, title, DONE, note="Connected before this checklist recorded who did it.")
        notes = CONNECTING_NOTES if target.connecting else TODO_NOTES
        return Item(step, title, TODO, note=notes.get(step, TODO_NOTES[step]))
    if step in (Step.CONNECTED, Step.VERIFIED, Step.DEPLOYED, Step.CUT_OVER) and row.detail.get(
            "gatekeeper_url") is not None and {k: row.detail.get(k) for k in target.facts()} != target.facts():
        return _from_row(step, row, "Done for another gatekeeper than " + (
            f"{target.gatekeeper_id}, the location being connected." if target.connecting
            else "these settings name now."), OUTDATED)
    if step == Step.VERIFIED and row.state == OnboardingStep.State.FAILED:
        failed = [name for name, outcome in row.detail.get("checks", {}).items() if outcome == "fail"]
        return _from_row(step, row, f"Failed: {', '.join(failed) or 'a required check did not pass'}. "
                         "Fix it and verify again.")
    return _from_row(step, row)


TODO_NOTES = {
    Step.LOCATION_CHOSEN: "Choose where the data lives and its region in the settings below.",
    Step.DEPLOYED: "Launch the gatekeeper's stack in your AWS account, or run it yourself with the downloaded "
                   "gatekeeper.toml. Recorded when it first answers your browser.",
    Step.CONNECTED: "Enter the stack's outputs (gatekeeper URL, id, storage origin) in the settings below and save.",
    Step.VERIFIED: "Verify it from this browser: health, then a probe object written, read back and deleted.",
    Step.CUT_OVER: "New tickets go to your gatekeeper once the tenant goes live.",
}


# The same steps' notes while a new location is being connected (Storage locations).
CONNECTING_NOTES = {
    Step.DEPLOYED: "Launch its stack, or run it yourself with the downloaded gatekeeper.toml (made for the "
                   "location being connected). Recorded when it first answers your browser.",
    Step.CONNECTED: "Press Connect beside the new location under Storage locations: your browser asks its "
                    "gatekeeper for its health and the portal records what it reports.",
    Step.CUT_OVER: "Once verified, cut over to it under Storage locations: new tickets go there, existing ones "
                   "stay readable where they are.",
}


def progress(tenant: Tenant) -> list[dict]:
    """What vendor support sees: each step's title, state, who and when. Nothing
    of the gatekeeper's settings, of what a check found, or of any report."""
    return [{"step": item.step, "title": item.title, "state": item.state, "label": item.label, "who": item.who, "when": item.when,
             "current": item.current} for item in checklist(tenant)]
