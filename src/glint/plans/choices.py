"""Choices of the plans app. The raw values are plain strings so the planner needs no Django."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Action(models.TextChoices):
    """What a person asked of one cell: tick (copy there) or untick (delete there)."""

    COPY = "copy", _("copy")
    DELETE = "delete", _("delete")


class ItemStatus(models.TextChoices):
    """The planner's verdict on one cell change."""

    PLANNED = "planned", _("planned")  # becomes (part of) a job on apply
    NOOP = "noop", _("nothing to do")  # already there, already queued, already absent
    REFUSED = "refused", _("refused")  # with the reason


class PlanState(models.TextChoices):
    """A plan is applied at most once."""

    OPEN = "open", _("open")
    APPLIED = "applied", _("applied")
