"""Tenants and everything that belongs to one: memberships, signing keys, agent
tokens. Views never query these directly; see tenants/access.py."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from tenants.validators import (
    origin_of,
    validate_bucket,
    validate_gatekeeper_id,
    validate_gatekeeper_url,
    validate_origin,
    validate_region,
    validate_slug,
)


class Tenant(models.Model):
    class DataLocation(models.TextChoices):
        VENDOR = "vendor", "Vendor-hosted bucket"
        CUSTOMER = "customer", "Customer's own bucket"

    class Status(models.TextChoices):
        ONBOARDING = "onboarding", "Onboarding"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    slug = models.CharField(max_length=40, unique=True, validators=[validate_slug])
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ONBOARDING)
    data_location = models.CharField(max_length=20, choices=DataLocation.choices, default=DataLocation.VENDOR)
    region = models.CharField(max_length=30, blank=True, validators=[validate_region])
    bucket = models.CharField(max_length=63, blank=True, validators=[validate_bucket])
    gatekeeper_url = models.CharField(max_length=200, blank=True, validators=[validate_gatekeeper_url])
    gatekeeper_id = models.CharField(max_length=64, blank=True, validators=[validate_gatekeeper_id])
    # Where browsers fetch objects from (the presigned URLs' origin): named in the
    # report page's CSP connect-src and img-src.
    storage_origin = models.CharField(max_length=200, blank=True, validators=[validate_origin])
    # The customer's IdP for its gatekeeper's [identity] (non-secret): the pages get the
    # person's ID token from this issuer with this public client, in the browser.
    idp_issuer = models.URLField(max_length=200, blank=True)
    idp_client_id = models.CharField(max_length=200, blank=True)
    # Per-tenant ticket numbers are handed out from this counter (see tickets.services).
    last_ticket_number = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug

    # Kept as the mirror of the tenant's active StorageLocation (tenants/locations.py).
    MIRRORED_FIELDS = frozenset({"data_location", "region", "bucket", "gatekeeper_url", "gatekeeper_id",
                                 "storage_origin"})

    def save(self, *args, **kwargs):
        """The mirror goes one way, location -> tenant: a save never rewrites a
        location (a stale instance saved during a cut over cannot point the new
        active location at the old gatekeeper); the mirrored fields are read back
        from the active location, created from them only if the tenant has none."""
        super().save(*args, **kwargs)
        fields = kwargs.get("update_fields")
        if fields is None or self.MIRRORED_FIELDS.intersection(fields):
            from tenants.locations import mirror_from_active

            mirror_from_active(self)

    @property
    def has_gatekeeper(self) -> bool:
        return bool(self.gatekeeper_url and self.gatekeeper_id)

    @property
    def gatekeeper_origin(self) -> str:
        return origin_of(self.gatekeeper_url) if self.gatekeeper_url else ""

    @property
    def identity_gatekeepers(self) -> str:
        """The gatekeeper origins the pages send the person's ID token to (X-Identity-Token;
        base.html's <meta name="dualkey-idp" data-gatekeepers>), space-separated: those of
        the tenant's own (customer) locations, not retired, whose recorded health said they
        ask for it ([identity]). Never a vendor-hosted location's, whatever its health says
        (the vendor runs it), nor an origin one of them shares. One query."""
        live = [location for location in self.locations.exclude(state=StorageLocation.State.RETIRED)
                if location.gatekeeper_url]
        vendors = {location.gatekeeper_origin for location in live if location.kind == self.DataLocation.VENDOR}
        return " ".join(sorted({location.gatekeeper_origin for location in live
                                if location.kind == self.DataLocation.CUSTOMER and location.identity_ops} - vendors))


class StorageLocation(models.Model):
    """Where a tenant's tickets are written: a gatekeeper and the storage behind it.
    Exactly one location per tenant is active (takes new tickets); each ticket
    keeps the location it was written to (Ticket.location), so switching never
    breaks an old ticket. Bucket, region and encryption are as the gatekeeper
    reported them (its /v1/health, fetched by an admin's browser: the portal never
    contacts a gatekeeper), beside what the admin chose. tenants/locations.py
    changes them; views reach them through tenants/access.py."""

    class State(models.TextChoices):
        CONNECTING = "connecting", "Connecting"
        ACTIVE = "active", "Active (takes new tickets)"
        DRAINING = "draining", "Draining (old tickets only)"
        RETIRED = "retired", "Retired"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="locations")
    kind = models.CharField(max_length=20, choices=Tenant.DataLocation.choices, default=Tenant.DataLocation.VENDOR)
    gatekeeper_url = models.CharField(max_length=200, blank=True, validators=[validate_gatekeeper_url])
    gatekeeper_id = models.CharField(max_length=64, blank=True, validators=[validate_gatekeeper_id])
    storage_origin = models.CharField(max_length=200, blank=True, validators=[validate_origin])
    # What the admin chose (the launch parameters): compared with what is reported.
    chosen_bucket = models.CharField(max_length=63, blank=True, validators=[validate_bucket])
    chosen_region = models.CharField(max_length=30, blank=True, validators=[validate_region])
    # As the gatekeeper's health last reported them, and when.
    reported_bucket = models.CharField(max_length=63, blank=True)
    reported_region = models.CharField(max_length=30, blank=True)
    reported_storage = models.CharField(max_length=20, blank=True)  # ok | unreachable
    reported_storage_problem = models.CharField(max_length=200, blank=True)
    reported_encryption = models.CharField(max_length=20, blank=True)
    reported_kms_key_id = models.CharField(max_length=200, blank=True)
    # The ops its gatekeeper asks the person's ID token for ([identity]'s ops), comma-separated; "" for none.
    reported_identity_ops = models.CharField(max_length=64, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.CONNECTING)
    state_changed_at = models.DateTimeField()
    state_changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                         on_delete=models.SET_NULL, related_name="+")
    state_changed_by_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant"], condition=Q(state="active"),
                                    name="one_active_location_per_tenant"),
        ]

    def __str__(self):
        return f"{self.tenant} location {self.pk} ({self.state})"

    @property
    def has_gatekeeper(self) -> bool:
        return bool(self.gatekeeper_url and self.gatekeeper_id)

    @property
    def gatekeeper_origin(self) -> str:
        return origin_of(self.gatekeeper_url) if self.gatekeeper_url else ""

    @property
    def identity_ops(self) -> frozenset[str]:
        """What its gatekeeper, as last reported, serves only with the person's ID token."""
        return frozenset(filter(None, self.reported_identity_ops.split(",")))

    def mismatches(self) -> list[str]:
        """Where the gatekeeper's report differs from what the admin chose."""
        if self.reported_at is None:
            return []
        found = []
        for what, chosen, reported in (("bucket", self.chosen_bucket, self.reported_bucket),
                                       ("region", self.chosen_region, self.reported_region)):
            if chosen and reported and chosen != reported:
                found.append(f"You chose {what} {chosen}, the gatekeeper reports {reported}.")
        return found


class Membership(models.Model):
    """One tenant per user: the OneToOne makes a second membership impossible."""

    class Role(models.TextChoices):
        STAFF = "staff", "Help-desk staff"
        ADMIN = "admin", "Tenant admin"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.user} @ {self.tenant} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN


class TenantSigningKey(models.Model):
    """The vendor's Ed25519 key for one tenant. Only the public half leaves the
    portal; the private half is stored encrypted (tenants/signing.py)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active (signs grants)"
        NEXT = "next", "Next (published, not signing yet)"
        PREVIOUS = "previous", "Previous (verifying grants still alive)"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="signing_keys")
    kid = models.CharField(max_length=64, unique=True)
    public_key = models.CharField(max_length=64)
    private_key_encrypted = models.BinaryField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField()
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(status="active"), name="one_active_signing_key_per_tenant"
            ),
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(status="next"), name="one_next_signing_key_per_tenant"
            ),
        ]

    def __str__(self):
        return self.kid


class AgentToken(models.Model):
    """A credential for the help-desk agent. Only its SHA-256 is stored; the token
    itself is shown once, when it is created (tenants/tokens.py)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="agent_tokens")
    name = models.CharField(max_length=100)
    # The first characters, kept so an admin can tell tokens apart.
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class SecurityEvent(models.Model):
    """A change a tenant's admins must hear about: where its data goes (the
    gatekeeper and storage origin) and who belongs to it. Written by
    tenants/events.py, which also emails the admins; listed on /settings/."""

    class Kind(models.TextChoices):
        GATEKEEPER_URL = "gatekeeper_url", "Gatekeeper URL changed"
        GATEKEEPER_ID = "gatekeeper_id", "Gatekeeper id changed"
        STORAGE_ORIGIN = "storage_origin", "Storage origin changed"
        INVITED = "invited", "Member invited"
        INVITATION_RESENT = "invitation_resent", "Invitation re-sent"
        INVITATION_REVOKED = "invitation_revoked", "Invitation revoked"
        JOINED = "joined", "Member joined"
        ROLE_CHANGED = "role_changed", "Role changed"
        REMOVED = "removed", "Member removed"
        MFA_RESET = "mfa_reset", "Second factors reset"
        SESSIONS_ENDED = "sessions_ended", "Signed out everywhere"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        PASSWORD_RESET = "password_reset", "Password reset by mail link"
        SIGN_IN_POLICY = "sign_in_policy", "Sign-in settings changed"
        BREAK_GLASS = "break_glass", "Signed in without SSO (break-glass)"
        APPROVER_KEY_ADDED = "approver_key_added", "Approver key added"
        SUPPORT_ACCESS_REQUESTED = "support_access_requested", "Vendor support asked for access"
        SUPPORT_ACCESS_APPROVED = "support_access_approved", "Vendor support access approved"
        SUPPORT_ACCESS_REFUSED = "support_access_refused", "Vendor support access refused"
        SUPPORT_ACCESS_ENDED = "support_access_ended", "Vendor support access ended"
        LOCATION_ADDED = "location_added", "Storage location added"
        LOCATION_CUT_OVER = "location_cut_over", "New tickets go to another storage location"
        LOCATION_RETIRED = "location_retired", "Storage location retired"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="security_events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    # Who did it: the account, and its name as it was (kept if the account goes).
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_name = models.CharField(max_length=200)
    # Whom it concerns (a member's username or an invited address), and what changed.
    subject = models.CharField(max_length=254, blank=True)
    old_value = models.CharField(max_length=254, blank=True)
    new_value = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="security_event_tenant_time")]

    def __str__(self):
        return f"{self.tenant}: {self.get_kind_display()} by {self.actor_name}"


class Invitation(models.Model):
    """A single-use, expiring link by email to join a tenant and set one's own
    password (tenants/invitations.py). Only the token's SHA-256 is stored: the
    link exists in the invitee's mail and nowhere else."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    username = models.CharField(max_length=150)
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Membership.Role.choices, default=Membership.Role.ADMIN)
    token_hash = models.CharField(max_length=64, unique=True)
    # Made by vendor support while the tenant had no admin: void once it has one,
    # so support cannot keep a spare way in past onboarding.
    onboarding = models.BooleanField(default=False)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The account that accepting it made, or (an admin's invitation) the existing one that joined.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.username} <{self.email}> @ {self.tenant}"

    @property
    def is_open(self) -> bool:
        """Neither accepted nor revoked (it may still have expired)."""
        return self.accepted_at is None and self.revoked_at is None


class ApproverKey(models.Model):
    """The public half of an approver key an admin made in their browser (WebCrypto
    ECDSA P-256, non-extractable, kept in that browser's IndexedDB): shown on the
    settings page as the gatekeeper's [approvers.keys] block. The portal never
    holds a private half; keys made with the gatekeeper's CLI are not listed here."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="approver_keys")
    approver_id = models.CharField(max_length=64)
    public_jwk = models.JSONField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["approver_id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "approver_id"], name="one_approver_id_per_tenant")]

    def __str__(self):
        return f"{self.approver_id} @ {self.tenant}"


class SupportAccess(models.Model):
    """Vendor support's request to read one ticket, and the customer's answer. The
    id is the approval id (`jti`) the approvers sign (tenants/support_access.py);
    the approvals are the JWS they signed, which the report page sends to the
    gatekeeper, the only judge of them (docs/protocol.md, §1a)."""

    class Reason(models.TextChoices):
        CUSTOMER_ASKED = "customer_asked", "The customer asked support to look"
        BUG = "bug", "Investigating a suspected bug"
        DATA = "data", "A data problem (upload, move, integrity)"
        OTHER = "other", "Other (see the text)"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REFUSED = "refused", "Refused"
        ENDED = "ended", "Ended early"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="support_accesses")
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="support_accesses")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason_code = models.CharField(max_length=20, choices=Reason.choices)
    reason = models.TextField(max_length=1024)
    duration = models.PositiveIntegerField()  # seconds the approval is asked for
    ops = models.JSONField()  # a subset of ["get", "list"]
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    # [{"approver": id, "jws": text, "by": username, "at": iso time}], one per approver
    approvals = models.JSONField(default=list)
    starts_at = models.DateTimeField(null=True, blank=True)  # the approvals' window, as signed
    ends_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.requested_by} -> {self.ticket_id} ({self.status})"

    @property
    def approval_id(self) -> str:
        return str(self.id)

    def state(self, now) -> str:
        """pending, approved, refused, ended (early, by an admin) or expired."""
        if self.status == self.Status.APPROVED and self.ends_at is not None and now >= self.ends_at:
            return "expired"
        return self.status


class OnboardingStep(models.Model):
    """One step of a tenant's onboarding checklist as it was recorded: who did it
    and when (tenants/onboarding.py says which steps there are and how each is
    recorded). One row per tenant and step, the latest; steps the portal can read
    from elsewhere (the first admin's membership, the tenant's tickets) have none."""

    class Step(models.TextChoices):
        LOCATION_CHOSEN = "location_chosen", "Data location and region chosen"
        DEPLOYED = "deployed", "Gatekeeper deployed"
        CONNECTED = "connected", "Gatekeeper connected"
        VERIFIED = "verified", "Verified in an admin's browser"
        CUT_OVER = "cut_over", "Cut over"
        LIVE = "live", "Live"

    class State(models.TextChoices):
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="onboarding_steps")
    step = models.CharField(max_length=20, choices=Step.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.DONE)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_name = models.CharField(max_length=200)
    at = models.DateTimeField()
    # What the step was done for: the gatekeeper URL and id it concerned, and for
    # `verified` each check's outcome (pass/fail/...): never any report content.
    detail = models.JSONField(default=dict)

    class Meta:
        ordering = ["tenant", "step"]
        constraints = [models.UniqueConstraint(fields=["tenant", "step"], name="one_onboarding_row_per_step")]

    def __str__(self):
        return f"{self.tenant}: {self.step} {self.state} by {self.actor_name}"
