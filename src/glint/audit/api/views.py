"""``/api/v1/audit/``: the audit trail, read-only, with the audit page's filters."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError

from glint.audit.api.serializers import AuditRecordSerializer
from glint.audit.filtersets import AuditFilterSet, may_see_audit, visible_records
from glint.audit.models import AuditRecord

FILTER_PARAMETERS = [
    OpenApiParameter(name, str, description=str(field.extra.get("help_text") or name))
    for name, field in AuditFilterSet.base_filters.items()
]


@extend_schema_view(list=extend_schema(parameters=FILTER_PARAMETERS))
class AuditRecordViewSet(viewsets.ReadOnlyModelViewSet):
    """Audit records the caller may see (admins: all; managers: their groups'), newest first."""

    serializer_class = AuditRecordSerializer
    queryset = AuditRecord.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return AuditRecord.objects.none()
        user = self.request.user
        if not may_see_audit(user):
            raise PermissionDenied("The audit trail is for admins and group managers.")
        records = visible_records(user)
        if self.action != "list":
            return records
        filters = AuditFilterSet(self.request.query_params, records, viewer=user)
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        return filters.qs
