"""The audit page: admins see every record, group managers those of their groups."""

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render

from glint.audit.filtersets import AuditFilterSet, may_see_audit, visible_records

PAGE_SIZE = 100


def audit_list(request):
    if not may_see_audit(request.user):
        raise PermissionDenied("The audit trail is for admins and group managers.")
    filters = AuditFilterSet(request.GET, visible_records(request.user), viewer=request.user)
    valid = filters.is_valid()
    page = Paginator(filters.qs if valid else filters.queryset.none(), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/list.html",
        {"form": filters.form, "page": page, "query": query.urlencode()},
        status=200 if valid else 400,
    )
