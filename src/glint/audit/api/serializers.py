"""Shape of an audit record in the API (read-only: the trail is written once, by
``glint.audit``)."""

from rest_framework import serializers

from glint.audit.models import AuditRecord


class AuditRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditRecord
        fields = [
            "id",
            "created",
            "request_id",
            "user",
            "user_dn",
            "action",
            "outcome",
            "group_ref",
            "group_name",
            "repo_ref",
            "repo_name",
            "image",
            "details",
        ]
        read_only_fields = fields
