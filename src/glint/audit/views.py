"""The audit page: admins see every record, group managers those of their groups."""

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render

from glint.audit.filters import AuditFilterForm, may_see_audit, visible_records

PAGE_SIZE = 100


def audit_list(request):
    if not may_see_audit(request.user):
        raise PermissionDenied("The audit trail is for admins and group managers.")
    form = AuditFilterForm(request.GET or None, viewer=request.user)
    records = visible_records(request.user)
    if form.is_bound and form.is_valid():
        records = form.apply(records)
    elif form.is_bound:
        records = records.none()
    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/list.html", {"form": form, "page": page, "query": query.urlencode()})
