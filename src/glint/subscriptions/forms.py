"""The form of the subscription pages: add and edit share it; the token is typed, never shown."""

from django import forms

from glint.repos.models import Repo
from glint.subscriptions.choices import CONFLICT_POLICIES, OnRemoval

KEEP_TOKEN_HELP = "Leave empty to keep the stored one; type a single '-' to remove it."


class SubscriptionForm(forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.CharField(
        label="List URL",
        required=False,
        max_length=2000,
        help_text="The signed HEPiX image list (http or https). Empty keeps the stored one.",
    )
    token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Optional user:password, sent as basic auth to the list's host.",
    )
    endorser_dn = forms.CharField(
        label="Endorser DN",
        max_length=1024,
        help_text="The subject of the certificate that signs the list, e.g. "
        "/DC=ch/DC=cern/OU=computers/CN=vm-catalogue.cern.ch",
    )
    endorser_ca = forms.CharField(
        label="Endorser's CA DN", max_length=1024, help_text="The issuer of that certificate."
    )
    targets = forms.ModelMultipleChoiceField(
        queryset=Repo.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text="The repos that keep the list's images.",
    )
    images = forms.CharField(
        required=False,
        help_text="Only these images (their list identifiers, separated by spaces or commas); "
        "empty takes them all.",
    )
    name_prefix = forms.CharField(required=False, max_length=100)
    refresh_seconds = forms.IntegerField(label="Refresh every (seconds)", initial=3600)
    on_removal = forms.ChoiceField(
        label="When an image leaves the list", choices=OnRemoval.choices, initial=OnRemoval.DELETE
    )
    conflict_policy = forms.ChoiceField(
        label="When a target has the image's name (an updated image)",
        choices=CONFLICT_POLICIES,
        initial="replace",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, group, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["targets"].queryset = group.repos.filter(enabled=True).order_by("name")
        if editing:
            self.fields["token"].help_text = KEEP_TOKEN_HELP
        else:
            self.fields["url"].required = True
            self.fields["url"].help_text = "The signed HEPiX image list (http or https)."

    def clean_images(self) -> list[str]:
        text = self.cleaned_data["images"].replace(",", " ")
        return list(dict.fromkeys(text.split()))
