from __future__ import annotations

import re
from urllib.parse import urlsplit

from django import forms
from django.conf import settings

from accounts.models import SignInPolicy
from accounts.sealed import seal

SECRET_PURPOSE = "oidc-client-secret"
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class CodeForm(forms.Form):
    code = forms.CharField(max_length=64, strip=True,
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text"}))


class SSOStartForm(forms.Form):
    identifier = forms.CharField(label="Work email address or organisation", max_length=254, strip=True)


def validate_issuer(value: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises for a port that is not a number)
    except ValueError:
        raise forms.ValidationError("The issuer is not a URL.") from None
    if any(ord(c) < 33 for c in value):
        raise forms.ValidationError("The issuer is not a URL.")
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS and settings.DEBUG:
        pass  # a local IdP in development and tests
    elif parts.scheme != "https":
        raise forms.ValidationError("The issuer must be an https:// URL.")
    if not parts.hostname or parts.query or parts.fragment or parts.username or parts.password:
        raise forms.ValidationError("The issuer is a URL with a host, no query, fragment or credentials.")
    return value.rstrip("/")


class SignInPolicyForm(forms.ModelForm):
    client_secret = forms.CharField(required=False, max_length=500, strip=True,
                                    widget=forms.PasswordInput(render_value=False),
                                    help_text="Leave empty to keep the stored secret.")

    class Meta:
        model = SignInPolicy
        fields = ["mfa_required", "sso_enabled", "sso_required", "issuer", "client_id", "email_domains",
                  "default_role", "admin_group"]
        widgets = {"email_domains": forms.Textarea(attrs={"rows": 2})}

    def clean_issuer(self):
        value = self.cleaned_data["issuer"].strip()
        return validate_issuer(value) if value else ""

    def clean_email_domains(self):
        domains = []
        for domain in self.cleaned_data["email_domains"].lower().split():
            domain = domain.strip(",")
            if not DOMAIN_RE.match(domain):
                raise forms.ValidationError(f"“{domain[:60]}” is not a domain name.")
            if domain not in domains:
                domains.append(domain)
        if len(domains) > 20:
            raise forms.ValidationError("At most 20 domains.")
        taken = SignInPolicy.objects.exclude(tenant_id=self.instance.tenant_id).filter(sso_enabled=True)
        for other in taken:
            clash = set(other.domains()) & set(domains)
            if clash:
                raise forms.ValidationError(f"Another tenant signs in with {sorted(clash)[0]}.")
        return "\n".join(domains)

    def clean(self):
        data = super().clean()
        if data.get("sso_required") and not data.get("sso_enabled"):
            self.add_error("sso_required", "Turn single sign-on on to require it.")
        if data.get("sso_enabled"):
            for name in ("issuer", "client_id"):
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, "Needed for single sign-on.")
            if not data.get("client_secret") and not self.instance.client_secret_sealed:
                self.add_error("client_secret", "Needed for single sign-on.")
        return data

    def store_secret(self, saved: SignInPolicy) -> None:
        secret = self.cleaned_data.get("client_secret")
        if secret:
            saved.client_secret_sealed = seal(secret.encode(), purpose=SECRET_PURPOSE, owner=saved.tenant_id)
            saved.save(update_fields=["client_secret_sealed"])

    @staticmethod
    def describe(policy: SignInPolicy) -> str:
        """What the security event shows; never the secret."""
        parts = [f"MFA {'required' if policy.mfa_required else 'optional'}"]
        if policy.sso_enabled:
            parts.append(f"SSO {'required' if policy.sso_required else 'on'} via {policy.issuer}"
                         f" (client {policy.client_id}, new members {policy.default_role})")
        else:
            parts.append("SSO off")
        return "; ".join(parts)[:254]
