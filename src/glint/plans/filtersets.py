"""The filters of the matrix rows, one set for the matrix page and ``/api/v1/images/``.

Rows are computed (``glint.jobs.matrix``), not a queryset, so this is a plain Django form rather
than a django-filter ``FilterSet``; both faces bind it the same way and refuse a bad value with
the same message (the API with 400, the page with 400 and the message above the matrix).
"""

from __future__ import annotations

from django import forms

from glint.matrix.rows import SORT_KEYS, Row, sort_rows

__all__ = ["ORDERS", "RowFilterForm"]

#: Every sort order: a key, or a key with a leading ``-`` (reversed).
ORDERS = sorted(SORT_KEYS) + [f"-{k}" for k in sorted(SORT_KEYS)]


class RowFilterForm(forms.Form):
    q = forms.CharField(required=False, strip=False)
    hidden = forms.CharField(required=False)
    sort = forms.CharField(required=False)

    def clean_hidden(self) -> bool | None:
        """True, False, or None for both (``all`` or nothing)."""
        value = self.cleaned_data["hidden"].lower()
        if value in ("", "all"):
            return None
        if value in ("true", "1", "yes"):
            return True
        if value in ("false", "0", "no"):
            return False
        raise forms.ValidationError("Use true, false or all.")

    def clean_sort(self) -> str:
        value = self.cleaned_data["sort"] or "name"
        if value not in ORDERS:
            raise forms.ValidationError(f"Use one of {', '.join(ORDERS)}.")
        return value

    def rows(self, rows: list[Row]) -> list[Row]:
        """``rows`` narrowed and sorted by the valid filters (call after ``is_valid()``)."""
        hidden, needle = self.cleaned_data["hidden"], self.cleaned_data["q"].strip().lower()
        rows = [
            r for r in rows if (hidden is None or r.hidden == hidden) and needle in r.name.lower()
        ]
        return sort_rows(rows, self.cleaned_data["sort"])
