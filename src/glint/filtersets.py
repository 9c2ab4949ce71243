"""Filter types that the apps' filtersets share (``<app>/filtersets.py``, django-filter)."""

import django_filters
from django import forms

__all__ = ["IntegerFilter"]


class IntegerFilter(django_filters.Filter):
    """A whole number (django-filter's ``NumberFilter`` takes decimals too)."""

    field_class = forms.IntegerField
