"""What an upload looks like in ``/api/v1/uploads/`` (never a web link's credentials)."""

from rest_framework import serializers
from rest_framework.reverse import reverse

from glint.replication import ConflictPolicy
from glint.transfers import formats
from glint.transfers.models import Upload, UploadState
from glint.transfers.services import VISIBILITIES

__all__ = ["UploadCreateSerializer", "UploadSerializer"]


class UploadSerializer(serializers.ModelSerializer):
    requester = serializers.CharField(source="requester_dn", read_only=True)
    url = serializers.CharField(
        source="url_shown", read_only=True, help_text="The web link, without credentials."
    )
    checksum = serializers.SerializerMethodField()
    job_state = serializers.CharField(source="job.state", read_only=True, default=None)
    upload_url = serializers.SerializerMethodField(
        help_text="PUT the raw bytes here (while state is waiting)."
    )

    class Meta:
        model = Upload
        fields = [
            "id",
            "group",
            "requester",
            "name",
            "disk_format",
            "container_format",
            "min_disk",
            "min_ram",
            "visibility",
            "properties",
            "conflict_policy",
            "targets",
            "url",
            "checksum",
            "size",
            "bytes_received",
            "sha256",
            "state",
            "error_code",
            "error",
            "job",
            "job_state",
            "upload_url",
            "created",
        ]
        read_only_fields = fields

    def get_checksum(self, upload) -> str | None:
        return (
            f"{upload.expected_algo}:{upload.expected_digest}" if upload.expected_digest else None
        )

    def get_upload_url(self, upload) -> str | None:
        if upload.from_url or upload.state != UploadState.WAITING:
            return None
        return reverse("api-upload-data", args=[upload.pk], request=self.context.get("request"))


class UploadCreateSerializer(serializers.Serializer):
    """A new upload: the image's metadata, the repos it goes to, and a web link or none (a file
    follows with ``PUT upload_url``)."""

    group = serializers.IntegerField(required=False, help_text="Default: the caller's group.")
    name = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="Required for a file; for a link, default: the link's last path segment.",
    )
    targets = serializers.ListField(
        child=serializers.CharField(),
        allow_empty=False,
        help_text="Repos (ids or names) of the group to upload to.",
    )
    disk_format = serializers.ChoiceField(
        choices=formats.DISK_FORMATS,
        required=False,
        allow_blank=True,
        help_text="Default: detected from the bytes.",
    )
    container_format = serializers.ChoiceField(choices=formats.CONTAINER_FORMATS, default="bare")
    min_disk = serializers.IntegerField(min_value=0, default=0)
    min_ram = serializers.IntegerField(min_value=0, default=0)
    visibility = serializers.ChoiceField(choices=VISIBILITIES, default="private")
    properties = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False
    )
    conflict_policy = serializers.ChoiceField(
        choices=[p.value for p in ConflictPolicy],
        default="report",
        help_text="A target that already has the name with other content.",
    )
    size = serializers.IntegerField(
        min_value=0, required=False, help_text="Bytes the PUT will send."
    )
    checksum = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Expected sha256 or sha512 (hex, optionally 'sha256:' first).",
    )
    url = serializers.URLField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Fetch the image from this http(s) link instead of a PUT.",
    )
    checksum_url = serializers.URLField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="A SHA256SUMS-style file listing the image's checksum.",
    )
    checksum_entry = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="The image's name in that file (default: the link's last segment).",
    )
