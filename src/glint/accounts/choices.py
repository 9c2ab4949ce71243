"""Choices of the accounts app: roles in a group, and a group's copy settings."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    MANAGER = "manager", _("Manager")  # changes the group's repos and members
    MEMBER = "member", _("Member")  # uses the group's repos


class CopiesRunAt(models.TextChoices):
    """Whose site's workers run a group's copies (repos name their site; see ``Repo.site``)."""

    TARGET = "target", _("each target's site")  # the write is the long part: near the target
    SOURCE = "source", _("the source's site")  # e.g. a source only that site's workers can reach


class RawCopiesFormat(models.TextChoices):
    """The disk format a group's copies from a cloud that stores raw disks only (EC2) are stored
    in, where the target stores any format (Glance); docs/architecture.md "Conversions"."""

    RAW = "raw", _("raw, as the source stores it")  # the same bytes: nothing to convert
    QCOW2 = "qcow2", _("qcow2")  # sparse and smaller, converted on the way
