"""The filters of the jobs list, one set for ``/jobs/`` and ``/api/v1/jobs/`` (same names).

Both faces bind the same :class:`JobFilterSet` to the query string, so a value means the same on
the page and in the API, and a bad value gets the same message: the API answers 400 with it, the
page shows it above an empty list. The group is not a filter but an access check (each face finds
it through ``glint.accounts.access``).
"""

from __future__ import annotations

import django_filters
from django.db.models import Q

from glint.filtersets import IntegerFilter
from glint.jobs import states
from glint.jobs.models import Job

__all__ = ["JobFilterSet"]


class JobFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(
        choices=[(state, state) for state in states.JOB_STATES],
        empty_label="any",
        error_messages={"invalid_choice": f"Use one of {', '.join(states.JOB_STATES)}."},
    )
    kind = django_filters.CharFilter()
    requester = django_filters.CharFilter(
        method="filter_requester", help_text="A user id, or text the requester's DN contains."
    )
    repo = IntegerFilter(
        method="filter_repo",
        min_value=0,
        error_messages={"invalid": "Give the repo's id.", "min_value": "Give the repo's id."},
        help_text="Jobs that read from or write to this repo.",
    )

    class Meta:
        model = Job
        fields: list[str] = []

    def filter_requester(self, jobs, name, value):
        value = value.strip()
        if not value:
            return jobs
        if value.isdigit():
            return jobs.filter(requester_id=int(value))
        return jobs.filter(requester_dn__icontains=value)

    def filter_repo(self, jobs, name, value):
        return jobs.filter(Q(source_repo_id=value) | Q(targets__repo_id=value)).distinct()
