"""Forms of the account pages. Rights are checked by ``glint.accounts.services``, not here."""

from __future__ import annotations

from cryptography import x509
from django import forms

from glint.accounts.certificates import IdentityError, identity_from_chain
from glint.accounts.choices import CopiesRunAt, RawCopiesFormat, Role
from glint.accounts.dn import DNError, canonical_from_string
from glint.accounts.models import Group

MAX_PEM_BYTES = 64 * 1024


def dn_from_pem(data: bytes) -> str:
    """The person's canonical DN from an uploaded certificate (PEM; a proxy file maps to its user).

    Raises:
        forms.ValidationError: not a PEM certificate.
    """
    try:
        chain = x509.load_pem_x509_certificates(data)
        return identity_from_chain(chain).subject_dn
    except DNError as exc:
        raise forms.ValidationError(f"This certificate's subject cannot be used: {exc}") from None
    except (ValueError, IdentityError) as exc:
        raise forms.ValidationError(f"This is not a PEM certificate: {exc}") from None


class PersonForm(forms.Form):
    """A DN pasted in any form Glint understands, or a certificate to read it from."""

    dn = forms.CharField(
        label="DN",
        required=False,
        help_text="Slash form (/C=CA/O=Grid/CN=Jane Doe; \\/ for a / inside a value) or RFC 4514 "
        "(CN=Jane Doe,O=Grid,C=CA).",
    )
    certificate = forms.FileField(
        label="or a certificate (PEM)",
        required=False,
        help_text="The person's certificate; only its subject is read.",
    )

    def clean(self):
        data = super().clean()
        upload = data.get("certificate")
        if upload is not None:
            if upload.size > MAX_PEM_BYTES:
                raise forms.ValidationError("That file is too large to be a certificate.")
            data["dn"] = dn_from_pem(upload.read())
        elif not data.get("dn"):
            raise forms.ValidationError("Paste a DN or choose a certificate file.")
        else:
            try:
                data["dn"] = canonical_from_string(data["dn"])
            except DNError as exc:
                self.add_error("dn", str(exc))
        return data


class MemberForm(PersonForm):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class UserFlagsForm(forms.Form):
    is_admin = forms.BooleanField(
        label="Admin",
        required=False,
        help_text="Admins manage every group, person and access request.",
    )
    is_active = forms.BooleanField(
        label="Active",
        required=False,
        help_text="A deactivated person is refused, but keeps their memberships.",
    )


def _group_setting(name: str, label: str, choices) -> forms.ChoiceField:
    """The field of one of a group's settings, explained by the model's help text."""
    field = Group._meta.get_field(name)
    return forms.ChoiceField(
        label=label,
        choices=choices,
        required=False,
        initial=field.default,
        help_text=field.help_text,
    )


class GroupForm(forms.Form):
    #: The settings a form that leaves them out keeps as they were (a new group: the defaults).
    SETTINGS = ("copies_run_at", "raw_copies_format")

    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=200, required=False)
    copies_run_at = _group_setting("copies_run_at", "Copies run at", CopiesRunAt.choices)
    raw_copies_format = _group_setting(
        "raw_copies_format", "Copies from raw-only clouds", RawCopiesFormat.choices
    )

    def clean(self) -> dict:
        data = super().clean()
        for name in self.SETTINGS:
            if name in data and not data[name]:
                data[name] = self.initial.get(name, Group._meta.get_field(name).default)
        return data


class ApproveForm(forms.Form):
    group = forms.ModelChoiceField(queryset=Group.objects.all(), empty_label=None)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class DefaultGroupForm(forms.Form):
    default_group = forms.ModelChoiceField(
        queryset=Group.objects.none(), required=False, empty_label="(first group)"
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_group"].queryset = user.visible_groups()
