"""What the portal keeps about a person's sign-in, beside Django's User: the
session epoch ("sign out everywhere"), second factors, and each tenant's sign-in
policy and SSO configuration. Secrets are sealed with DUALKEY_MASTER_KEY
(accounts/sealed.py), as the signing keys are."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from tenants.models import Membership, Tenant


class AccountState(models.Model):
    """Bumping `session_epoch` ends every session the account has (accounts/sessions.py)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_state")
    session_epoch = models.PositiveIntegerField(default=0)


class Authenticator(models.Model):
    """A second factor. TOTP: its sealed secret. Passkey: the credential's id, public
    key and signature counter. Recovery codes: the SHA-256 of each unused code."""

    class Kind(models.TextChoices):
        TOTP = "totp", "Authenticator app (TOTP)"
        PASSKEY = "passkey", "Passkey"
        RECOVERY = "recovery", "Recovery codes"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="authenticators")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=100, blank=True)
    secret_sealed = models.BinaryField(null=True, blank=True)
    credential_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    public_key = models.TextField(blank=True)
    sign_count = models.PositiveBigIntegerField(default=0)
    code_hashes = models.JSONField(default=list, blank=True)
    last_counter = models.PositiveBigIntegerField(default=0)  # TOTP: the last time step used (no replay)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["kind", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user"], condition=Q(kind="totp"), name="one_totp_per_user"),
            models.UniqueConstraint(fields=["user"], condition=Q(kind="recovery"), name="one_recovery_set_per_user"),
        ]

    def __str__(self):
        return f"{self.user} {self.kind} {self.name}"


class SignInPolicy(models.Model):
    """A tenant's rules for signing in, set by its admins on /settings/sign-in/."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="sign_in_policy")
    mfa_required = models.BooleanField(default=False)
    sso_enabled = models.BooleanField(default=False)
    sso_required = models.BooleanField(default=False)
    issuer = models.CharField(max_length=200, blank=True)
    client_id = models.CharField(max_length=200, blank=True)
    client_secret_sealed = models.BinaryField(null=True, blank=True)
    # Lower-case domains, one per line: who signs in with SSO by giving an address there.
    email_domains = models.TextField(blank=True)
    default_role = models.CharField(max_length=10, choices=Membership.Role.choices, default=Membership.Role.STAFF)
    # If set, a person whose ID token's `groups` claim holds this value joins as admin.
    admin_group = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    def domains(self) -> list[str]:
        return [d for d in self.email_domains.split() if d]


class SSOIdentity(models.Model):
    """The IdP's subject (`sub`) an account was made for or linked to, per tenant."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="sso_identities")
    subject = models.CharField(max_length=255)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identity")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "subject"], name="one_account_per_sso_subject")]
