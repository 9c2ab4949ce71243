"""Which audit records a person may see, and the filters of ``/audit/`` and ``/api/v1/audit/``.

Admins see everything. A group manager sees the records of the groups they manage (and nothing
that belongs to no group: account changes of other people are admin business). Others see none.

Both faces bind the same :class:`AuditFilterSet` to the query string (same names, same checks):
the API answers a bad value with 400 and the message, the page shows the message.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import django_filters
from django import forms

from glint.audit.models import AuditRecord, Outcome
from glint.filtersets import IntegerFilter

if TYPE_CHECKING:  # audit sits below the apps that record into it: no import of theirs at run time
    from glint.accounts.models import User

__all__ = ["AuditFilterSet", "may_see_audit", "visible_records"]


def visible_records(user: User):
    if user.is_admin:
        return AuditRecord.objects.all()
    managed = user.managed_groups().values_list("pk", flat=True)
    return AuditRecord.objects.filter(group_ref__in=list(managed))


def may_see_audit(user: User) -> bool:
    return user.is_admin or user.managed_groups().exists()


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, dt.UTC)


class AuditFilterSet(django_filters.FilterSet):
    """The filters; ``viewer`` decides which groups the page offers to choose from."""

    action = django_filters.CharFilter(
        method="filter_action",
        label="Action",
        help_text="An action code, or its start (repo. for every repo action).",
    )
    user = django_filters.CharFilter(
        field_name="user_dn",
        lookup_expr="icontains",
        label="User",
        help_text="Part of the DN of who acted.",
    )
    group = IntegerFilter(field_name="group_ref", min_value=1, label="Group")
    outcome = django_filters.ChoiceFilter(
        choices=Outcome.choices, empty_label="any", label="Outcome"
    )
    since = django_filters.DateFilter(
        method="filter_since", label="Since", help_text="From this day (UTC), YYYY-MM-DD."
    )
    until = django_filters.DateFilter(
        method="filter_until",
        label="Until",
        help_text="Up to and including this day (UTC), YYYY-MM-DD.",
    )
    request_id = django_filters.CharFilter(max_length=64, label="Request id")

    class Meta:
        model = AuditRecord
        fields: list[str] = []

    def __init__(self, data=None, queryset=None, *, viewer: User, **kwargs):
        super().__init__(data, queryset, **kwargs)
        groups = viewer.managed_groups()  # an admin manages every group
        self.filters["group"].extra["widget"] = forms.Select(
            choices=[("", "any")] + [(g.pk, g.name) for g in groups]
        )

    def filter_action(self, records, name, value):
        if value.endswith("."):
            return records.filter(action__startswith=value)
        return records.filter(action=value)

    def filter_since(self, records, name, value):
        return records.filter(created__gte=_day_start(value))

    def filter_until(self, records, name, value):
        return records.filter(created__lt=_day_start(value + dt.timedelta(days=1)))
