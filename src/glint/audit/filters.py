"""Which audit records a person may see, narrowed by the filters of the page and the API.

Admins see everything. A group manager sees the records of the groups they manage (and nothing
that belongs to no group: account changes of other people are admin business). Others see none.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.db.models import Q

from glint.accounts.models import Group, User
from glint.audit.models import AuditRecord, Outcome


def visible_records(user: User):
    if user.is_admin:
        return AuditRecord.objects.all()
    return AuditRecord.objects.filter(group_ref__in=list(user.managed_groups().values_list("pk", flat=True)))


def may_see_audit(user: User) -> bool:
    return user.is_admin or user.managed_groups().exists()


class AuditFilterForm(forms.Form):
    """The filters, shared by ``/audit/`` and ``/api/v1/audit/`` (same parameter names)."""

    action = forms.CharField(required=False, help_text="An action code, or its start (repo. for every repo action).")
    user = forms.CharField(required=False, help_text="Part of the DN of who acted.")
    group = forms.IntegerField(required=False, min_value=1)
    outcome = forms.ChoiceField(required=False, choices=[("", "any")] + list(Outcome.choices))
    since = forms.DateField(required=False, help_text="From this day (UTC), YYYY-MM-DD.")
    until = forms.DateField(required=False, help_text="Up to and including this day (UTC), YYYY-MM-DD.")
    request_id = forms.CharField(required=False, max_length=64)

    def __init__(self, *args, viewer: User, **kwargs):
        super().__init__(*args, **kwargs)
        groups = Group.objects.all() if viewer.is_admin else viewer.managed_groups()
        self.fields["group"].widget = forms.Select(choices=[("", "any")] + [(g.pk, g.name) for g in groups])

    def apply(self, records):
        """``records`` narrowed by the valid filters (call after ``is_valid()``)."""
        data = self.cleaned_data
        if data.get("action"):
            action = data["action"]
            records = records.filter(action__startswith=action) if action.endswith(".") else records.filter(action=action)
        if data.get("user"):
            records = records.filter(Q(user_dn__icontains=data["user"]))
        if data.get("group"):
            records = records.filter(group_ref=data["group"])
        if data.get("outcome"):
            records = records.filter(outcome=data["outcome"])
        if data.get("since"):
            records = records.filter(created__gte=dt.datetime.combine(data["since"], dt.time.min, dt.timezone.utc))
        if data.get("until"):
            end = dt.datetime.combine(data["until"] + dt.timedelta(days=1), dt.time.min, dt.timezone.utc)
            records = records.filter(created__lt=end)
        if data.get("request_id"):
            records = records.filter(request_id=data["request_id"])
        return records
