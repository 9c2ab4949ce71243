"""Shapes of matrix rows, cells and conflicts in the API (read-only: they are computed, not stored)."""

from rest_framework import serializers

from glint.inventory.models import Image


class CopySerializer(serializers.Serializer):
    """One image in one repo, as the matrix knows it."""

    repo = serializers.IntegerField(source="repo_id")
    image_id = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    owner = serializers.CharField()
    visibility = serializers.CharField()


class CellSerializer(serializers.Serializer):
    """One repo's cell of a row, as the matrix page shows it: what the last poll found, unless a
    job speaks for the cell (in the list; a row's own page shows the polled cells)."""

    repo = serializers.IntegerField()
    state = serializers.CharField(help_text="present, foreign or absent (polled); queued, copying, verifying, "
                                            "deleting or failed (a job's)")
    progress = serializers.IntegerField(allow_null=True, help_text="Percent copied, while copying.")
    reason = serializers.CharField(help_text="Why a job's target failed (or is being retried).")
    copies = CopySerializer(many=True)


class RowSerializer(serializers.Serializer):
    """A matrix row: one (name, content key) pair, with a cell for every repo of the group."""

    id = serializers.CharField()
    name = serializers.CharField()
    content_key = serializers.CharField()
    verifiable = serializers.BooleanField()
    hidden = serializers.BooleanField()
    owned = serializers.BooleanField()
    size = serializers.IntegerField(allow_null=True)
    formats = serializers.CharField()
    created_at = serializers.DateTimeField(allow_null=True)
    conflict_types = serializers.ListField(child=serializers.IntegerField())
    cells = serializers.SerializerMethodField()

    def get_cells(self, row) -> list[dict]:
        return [
            CellSerializer({"repo": repo_id, "state": cell.state.value, "progress": cell.progress,
                            "reason": cell.reason, "copies": cell.copies}).data
            for repo_id, cell in row.cells.items()
        ]

    def to_representation(self, row):
        data = super().to_representation(row)
        data["conflict_types"] = sorted(data["conflict_types"])
        return data


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
            "repo", "image_id", "name", "status", "size", "virtual_size", "disk_format",
            "container_format", "checksum", "os_hash_algo", "os_hash_value", "owner", "visibility",
            "protected", "os_hidden", "member_status", "min_disk", "min_ram", "properties", "tags",
            "created_at", "updated_at", "glint_sha256", "glint_source_repo", "glint_source_id",
            "first_seen", "last_seen",
        ]


class RowDetailSerializer(RowSerializer):
    """A row with the full record of each copy."""

    images = serializers.SerializerMethodField()

    def get_images(self, row) -> list[dict]:
        return ImageSerializer(self.context["images"], many=True).data


class ConflictSerializer(serializers.Serializer):
    """A conflict group: its type (1 same name/other content, 2 duplicate, 3 same content/other
    names), where (a repo, or across the group's repos), and every image involved."""

    id = serializers.SerializerMethodField()
    kind = serializers.CharField(source="kind.value")
    type = serializers.IntegerField()
    repo = serializers.IntegerField(source="repo_id", allow_null=True)
    subject = serializers.CharField()
    rows = serializers.SerializerMethodField()
    copies = CopySerializer(many=True)
    acknowledged = serializers.BooleanField()

    def get_id(self, conflict) -> str:
        return f"{self.context['group'].pk}-{conflict.key}"

    def get_rows(self, conflict) -> list[str]:
        return [row.id for row in conflict.rows]


class SyncPropertiesSerializer(serializers.Serializer):
    """Which copy's properties the others are made equal to."""

    source_repo = serializers.IntegerField(help_text="The repo holding the copy whose properties win.")


class RenameSerializer(serializers.Serializer):
    """One copy of a conflict, by its cloud image id (and repo, if two repos share the id), and its new name."""

    image = serializers.CharField(max_length=255, help_text="The copy's image id in its cloud.")
    repo = serializers.IntegerField(required=False, help_text="The copy's repo, when the image id alone is ambiguous.")
    name = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=10_000,
                                 help_text="The new name (1 to 255 characters, not used in that repo yet).")


class RefreshSerializer(serializers.Serializer):
    requested = serializers.ListField(child=serializers.IntegerField(), help_text="Repos to be polled.")
