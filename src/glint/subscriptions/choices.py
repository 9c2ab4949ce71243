"""Choices of a subscription."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class OnRemoval(models.TextChoices):
    """What happens to Glint's copies of an image that leaves its list, or whose list expired."""

    DELETE = "delete", _("delete Glint's copies")  # never an image Glint did not make for the list
    HIDE = "hide", _("hide the row")
    KEEP = "keep", _("keep them")
