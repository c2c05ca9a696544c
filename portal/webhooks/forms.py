from django import forms

from portal.webhooks.urlcheck import UnsafeURL, check_url


class EndpointForm(forms.Form):
    url = forms.CharField(max_length=500, label="URL", help_text="https://, on a public address")
    description = forms.CharField(max_length=100, required=False)

    def clean_url(self):
        try:
            return check_url(self.cleaned_data["url"].strip())
        except UnsafeURL as refused:
            raise forms.ValidationError(str(refused)) from None


class EnabledForm(forms.Form):
    enabled = forms.TypedChoiceField(choices=[("1", "on"), ("0", "off")], coerce=lambda value: value == "1")
