"""Choices of a subscription."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class OnRemoval(models.TextChoices):
    """What happens to Glint's copies of an image that leaves its list, or whose list expired."""

    DELETE = "delete", _("delete Glint's copies")  # never an image Glint did not make for the list
    HIDE = "hide", _("hide the row")
    KEEP = "keep", _("keep them")


#: What a target that holds the image's name with other content does (an updated image): the
#: values of ``glint.replication.ConflictPolicy``, ``replace`` first as the subscription's default.
CONFLICT_POLICIES = [
    ("replace", _("replace: copy the new image, verify it, then delete the old")),
    ("rename-old", _("rename the old: copy and verify the new, then rename the old one")),
    ("skip", _("skip: leave the target's image as it is")),
    ("report", _("report: copy nothing there and show the conflict")),
]
