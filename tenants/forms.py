from django import forms

from tenants.invitations import account_for, can_join, invitation_pending, username_taken
from tenants.models import Membership, SupportAccess, Tenant
from tenants.support_access import DEFAULT_HOURS, MAX_HOURS, MAX_REASON_BYTES
from tenants.validators import validate_printable


class StorageSettingsForm(forms.ModelForm):
    """Where the tenant's data lives and how the portal reaches its gatekeeper."""

    class Meta:
        model = Tenant
        fields = ["data_location", "region", "bucket", "gatekeeper_url", "gatekeeper_id", "storage_origin",
                  "idp_issuer", "idp_client_id"]
        labels = {
            "idp_issuer": "Identity provider issuer (for the gatekeeper's [identity])",
            "idp_client_id": "Its public client id for Dualkey's pages (PKCE)",
            "gatekeeper_url": "Gatekeeper URL",
            "gatekeeper_id": "Gatekeeper id (the grants' audience)",
            "storage_origin": "Storage origin (where browsers fetch objects)",
        }

    def clean(self):
        cleaned = super().clean()
        # Report pages fetch objects from the storage origin, and their CSP names
        # exactly it: a gatekeeper without one would leave every report blank.
        if cleaned.get("gatekeeper_url"):
            if not cleaned.get("gatekeeper_id") and "gatekeeper_id" not in self.errors:
                self.add_error("gatekeeper_id", "Required with a gatekeeper URL: its gatekeeper_id, "
                                                "which every grant is addressed to.")
            if not cleaned.get("storage_origin") and "storage_origin" not in self.errors:
                self.add_error("storage_origin", "Required with a gatekeeper URL: the origin of its presigned "
                                                 "URLs, such as https://BUCKET.s3.REGION.amazonaws.com.")
        for given, missing in (("idp_issuer", "idp_client_id"), ("idp_client_id", "idp_issuer")):
            if cleaned.get(given) and not cleaned.get(missing) and missing not in self.errors:
                self.add_error(missing, "The identity provider needs both its issuer and the client id.")
        return cleaned


class AgentTokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Token name", validators=[validate_printable])


class ActivateKeyForm(forms.Form):
    """Rotation, step 2, names the next key the admin saw the gatekeeper trust;
    tenants.signing.activate_next_key refuses any other (a stale page)."""

    SAY_WHICH = "Say which next key to switch to (kid)."
    # Taken exactly as sent (no stripping): a kid that is not the next key's is refused.
    kid = forms.CharField(max_length=64, strip=False,
                          error_messages={"required": SAY_WHICH, "max_length": SAY_WHICH})


class TenantCreateForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = ["slug", "name", "data_location", "region"]

    def clean_name(self):
        name = self.cleaned_data["name"]
        validate_printable(name)
        return name


class TenantStatusForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = ["status"]


class InviteAdminForm(forms.Form):
    username = forms.RegexField(
        r"\A[A-Za-z0-9_.@+-]{1,150}\Z", max_length=150, error_messages={"invalid": "Letters, digits and @.+-_ only."}
    )
    email = forms.EmailField()

    def clean_username(self):
        username = self.cleaned_data["username"]
        if username_taken(username):
            raise forms.ValidationError("That username is taken.")
        return username


class InviteMemberForm(InviteAdminForm):
    """An admin's invitation: the same username and address rules, and a role."""

    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.STAFF)

    def clean_username(self):
        # An account that belongs to no tenant (a removed member, say) may be invited:
        # it joins once its owner signs in and opens the link (invitations.join).
        account = account_for(self.cleaned_data["username"])
        if account is None or not can_join(account) or invitation_pending(account.get_username()):
            return super().clean_username()
        return account.get_username()


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices,
                             error_messages={"required": "Choose a role.",
                                             "invalid_choice": "Choose a role: staff or admin."})


# --- vendor support access (tenants/support_access.py) -------------------------------------

class SupportAccessRequestForm(forms.Form):
    """Vendor support asks to read one ticket of a tenant."""

    number = forms.IntegerField(min_value=1, label="Ticket number")
    reason_code = forms.ChoiceField(choices=SupportAccess.Reason.choices, label="Reason")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=1024,
                             label="Why (at most 1 KB; the tenant's admins read it)")
    hours = forms.IntegerField(min_value=1, max_value=MAX_HOURS, initial=DEFAULT_HOURS,
                               label=f"For how many hours (at most {MAX_HOURS}, 7 days)")
    ops = forms.MultipleChoiceField(choices=[("get", "Read the files (get)"), ("list", "List them (list)")],
                                    initial=["get", "list"], widget=forms.CheckboxSelectMultiple,
                                    label="Access")

    def clean_reason(self):
        reason = self.cleaned_data["reason"]
        if len(reason.encode("utf-8")) > MAX_REASON_BYTES:
            raise forms.ValidationError(f"At most {MAX_REASON_BYTES} bytes.")
        if any(not (ch.isprintable() or ch in "\r\n") for ch in reason):
            raise forms.ValidationError("Only printable text, please.")
        return reason


class ApprovalForm(forms.Form):
    """One approver's JWS: made by this page's browser key, or pasted from the CLI."""

    approval = forms.CharField(max_length=2048, strip=True, label="Approval (JWS)")


class ApproverKeyForm(forms.Form):
    """The public half of a key the admin's browser just made."""

    approver_id = forms.CharField(max_length=64)
    public_jwk = forms.CharField(max_length=1024)
