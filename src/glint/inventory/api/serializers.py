"""Shapes of the inventory in the API: a repo's poll status, a copy's full record, a refresh.

The matrix's rows, cells and conflicts (computed, not stored) are ``glint.plans.api.serializers``.
"""

from rest_framework import serializers

from glint.inventory.models import Image


class RepoStatusSerializer(serializers.Serializer):
    """A matrix column: a repo and how its last poll went."""

    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    last_poll_at = serializers.DateTimeField(allow_null=True)
    last_poll_ok = serializers.BooleanField(allow_null=True)
    last_poll_error = serializers.CharField()
    last_poll_duration = serializers.FloatField(allow_null=True)


class ImageSerializer(serializers.ModelSerializer):
    """Everything the last poll learned about one copy."""

    class Meta:
        model = Image
        fields = [
            "repo",
            "image_id",
            "name",
            "status",
            "size",
            "virtual_size",
            "disk_format",
            "container_format",
            "checksum",
            "os_hash_algo",
            "os_hash_value",
            "owner",
            "visibility",
            "protected",
            "os_hidden",
            "member_status",
            "min_disk",
            "min_ram",
            "properties",
            "tags",
            "created_at",
            "updated_at",
            "glint_sha256",
            "glint_source_repo",
            "glint_source_id",
            "glint_made_from",
            "first_seen",
            "last_seen",
        ]


class RefreshSerializer(serializers.Serializer):
    requested = serializers.ListField(
        child=serializers.IntegerField(), help_text="Repos to be polled."
    )
