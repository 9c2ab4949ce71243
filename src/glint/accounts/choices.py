"""Roles a person can hold in a group."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    MANAGER = "manager", _("Manager")  # changes the group's repos and members
    MEMBER = "member", _("Member")  # uses the group's repos
