"""Django choices for jobs, built from the raw values in ``glint.jobs.states``."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from glint.jobs import states

__all__ = ["JobKind", "JobState", "TargetStateChoices"]


class JobKind(models.TextChoices):
    COPY = states.COPY, _("copy")
    DELETE = states.DELETE, _("delete")
    UPLOAD = states.UPLOAD, _("upload")
    PROPERTY_SYNC = states.PROPERTY_SYNC, _("property sync")
    CONVERT = states.CONVERT, _("conversion")


class JobState(models.TextChoices):
    QUEUED = states.QUEUED, _("queued")
    RUNNING = states.RUNNING, _("running")
    DONE = states.DONE, _("done")
    PARTIAL = states.PARTIAL, _("partial")
    FAILED = states.FAILED, _("failed")
    CANCELLED = states.CANCELLED, _("cancelled")


TargetStateChoices = models.TextChoices(
    "TargetStateChoices", [(value.upper(), (value, value)) for value in states.TARGET_STATES]
)
