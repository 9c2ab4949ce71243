"""Forms of the repo pages. Secrets are typed, never shown: an empty secret field keeps the stored
one, and an optional one (``CLEARABLE_SECRETS``) is removed with its "remove" box."""

from django import forms
from django.db import models

from glint.repos.choices import CloudKind
from glint.repos.models import CLEARABLE_SECRETS, KIND_FIELDS, SECRET_FIELDS, Repo
from glint.validators import validate_site_name

KEEP_SECRET_HELP = "Leave empty to keep the stored one."


def _formfield(field, **kwargs):
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"  # an auth URL typed without a scheme is meant for TLS
    return field.formfield(**kwargs)


def _secret_input() -> forms.CharField:
    return forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


_OPENSTACK_AUTH_URL, *_OPENSTACK_REST = KIND_FIELDS[CloudKind.OPENSTACK]

#: The form's fields for each kind, in order: the shared ones around the kind's own.
KIND_FORM_FIELDS = {
    CloudKind.OPENSTACK: [
        "name",
        "site",
        _OPENSTACK_AUTH_URL,
        "region",
        *_OPENSTACK_REST,
        "enabled",
    ],
    CloudKind.EC2: ["name", "site", "region", *KIND_FIELDS[CloudKind.EC2], "enabled"],
}


class RepoForm(forms.ModelForm):
    """Add or edit a repo of one kind, with that kind's fields only (``KIND_FORM_FIELDS``).

    The kind is the instance's (chosen when the repo is added, fixed afterwards). The cloud
    check happens in ``services.save_repo`` after this form.
    """

    password = _secret_input()
    application_credential_secret = _secret_input()
    secret_access_key = _secret_input()
    session_token = _secret_input()

    class Meta:
        model = Repo
        # The secret fields are declared above, not taken from the model, so an empty one never
        # overwrites the stored secret; ``clean`` hands typed ones to the instance.
        fields = [
            "name", "site", "auth_url", "region", "interface", "auth_type", "username",
            "application_credential_id", "project_name", "project_id", "project_domain_name",
            "project_domain_id", "user_domain_name", "user_domain_id", "ca_bundle",
            "access_key_id", "role_arn", "endpoint_url", "enabled",
        ]  # fmt: skip
        formfield_callback = _formfield
        widgets = {"ca_bundle": forms.Textarea(attrs={"rows": 6, "spellcheck": "false"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: The stored secrets this change removes (for the audit record), once clean.
        self.cleared: list[str] = []
        fields = {}
        for name in KIND_FORM_FIELDS[self.instance.kind]:
            fields[name] = self.fields[name]
            stored = self.instance.pk and name in SECRET_FIELDS and getattr(self.instance, name)
            if stored:
                fields[name].help_text = KEEP_SECRET_HELP
            if stored and name in CLEARABLE_SECRETS:
                fields[_clear(name)] = forms.BooleanField(
                    required=False,
                    label=f"Remove the stored {_label(name)}",
                )
        self.fields = fields

    def clean(self):
        """Hand typed secrets to the instance before the model's own checks see it, and remove
        those whose "remove" box is ticked."""
        cleaned = super().clean()
        for name in SECRET_FIELDS:
            if cleaned.get(_clear(name)):
                if cleaned.get(name):
                    self.add_error(
                        _clear(name),
                        f"Type a new {_label(name)} or remove the stored one, not both.",
                    )
                    continue
                setattr(self.instance, name, "")
                self.cleared.append(name)
            elif cleaned.get(name):
                setattr(self.instance, name, cleaned[name])
        return cleaned


def _clear(name: str) -> str:
    return f"clear_{name}"


def _label(name: str) -> str:
    return str(Repo._meta.get_field(name).verbose_name)


class ImportForm(forms.Form):
    """Upload a clouds.yaml; ``ca_bundle`` stands in for the ``cacert`` files it names."""

    file = forms.FileField(label="clouds.yaml")
    clouds = forms.CharField(
        required=False,
        help_text="Only these clouds (names separated by spaces or commas); empty imports all.",
    )
    ca_bundle = forms.FileField(
        required=False,
        label="CA bundle",
        help_text="PEM file used for every cloud whose entry names a cacert.",
    )
    site = forms.CharField(
        required=False,
        max_length=50,
        validators=[validate_site_name],
        help_text="The site of every imported repo (see a repo's site).",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError("The clouds.yaml must be UTF-8 text.") from None

    def clean_clouds(self):
        return [name for name in self.cleaned_data["clouds"].replace(",", " ").split() if name]

    def clean_ca_bundle(self):
        upload = self.cleaned_data.get("ca_bundle")
        if not upload:
            return ""
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError("The CA bundle must be PEM text.") from None
