"""What a subscription looks like in ``/api/v1/subscriptions/``: never its URL's secrets, never its
token."""

from rest_framework import serializers

from glint.accounts.models import Group
from glint.repos.models import Repo
from glint.subscriptions.choices import OnRemoval
from glint.subscriptions.models import Subscription

__all__ = ["RefreshResultSerializer", "SubscriptionSerializer"]


class SubscriptionSerializer(serializers.ModelSerializer):
    group = serializers.PrimaryKeyRelatedField(queryset=Group.objects.none())
    url = serializers.CharField(
        write_only=True, required=False, help_text="The list's http(s) URL."
    )
    url_shown = serializers.CharField(read_only=True, help_text="The URL, credentials redacted.")
    token = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        help_text="user:password sent as basic auth to the list's host; empty removes it.",
    )
    token_set = serializers.BooleanField(read_only=True)
    targets = serializers.PrimaryKeyRelatedField(many=True, queryset=Repo.objects.none())
    images = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="List identifiers of the images to take; empty: all.",
    )
    on_removal = serializers.ChoiceField(choices=OnRemoval.choices, default=OnRemoval.DELETE)

    class Meta:
        model = Subscription
        # What the last refresh found: the server writes these, never a client.
        read_only_fields = [
            "list_identifier",
            "list_title",
            "list_version",
            "list_expires",
            "list_accepted_at",
            "last_refresh_at",
            "last_refresh_ok",
            "last_error",
            "next_refresh_at",
        ]
        fields = [
            "id",
            "group",
            "name",
            "url",
            "url_shown",
            "token",
            "token_set",
            "endorser_dn",
            "endorser_ca",
            "targets",
            "images",
            "name_prefix",
            "refresh_seconds",
            "on_removal",
            "conflict_policy",
            "enabled",
            *read_only_fields,
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user = getattr(self.context.get("request"), "user", None)
        if user is not None and user.is_authenticated:
            self.fields["group"].queryset = user.visible_groups()
            self.fields["targets"].child_relation.queryset = Repo.objects.filter(
                group__in=user.visible_groups()
            )


class RefreshResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="The list verified and is in force.")
    error = serializers.CharField(help_text="Why the list was refused.")
    fetching = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Image name: the repos an upload now brings it to.",
    )
    present = serializers.ListField(
        child=serializers.CharField(), help_text="Images every target holds."
    )
    removed = serializers.ListField(
        child=serializers.CharField(), help_text="Rows removed or hidden: their images left."
    )
    failed = serializers.DictField(
        child=serializers.CharField(), help_text="Image name: why it could not be started."
    )
