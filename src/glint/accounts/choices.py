"""Roles a person can hold in a group."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    MANAGER = "manager", _("Manager")  # changes the group's repos and members
    MEMBER = "member", _("Member")  # uses the group's repos


class CopiesRunAt(models.TextChoices):
    """Whose site's workers run a group's copies (repos name their site; see ``Repo.site``)."""

    TARGET = "target", _("each target's site")  # the write is the long part: near the target
    SOURCE = "source", _("the source's site")  # e.g. a source only that site's workers can reach
