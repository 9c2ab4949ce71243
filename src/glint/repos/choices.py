"""Choices of the repos app: cloud kinds, catalog interfaces, ways to authenticate."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class CloudKind(models.TextChoices):
    """Which driver serves a repo; the value is a ``glint.clouds`` driver kind."""

    OPENSTACK = "openstack", _("OpenStack")
    EC2 = "ec2", _("Amazon EC2")

    @property
    def stores_raw_only(self) -> bool:
        """Whether the kind's clouds store raw disks only (its driver's
        ``Capabilities.disk_formats``): a group's ``raw_copies_format`` is for copies from
        them."""
        return self is CloudKind.EC2


class Interface(models.TextChoices):
    """The Keystone catalog interface whose image endpoint is used."""

    PUBLIC = "public", _("public")
    INTERNAL = "internal", _("internal")
    ADMIN = "admin", _("admin")


class AuthType(models.TextChoices):
    """How a repo authenticates: a user's password, or an application credential."""

    PASSWORD = "password", _("Password")
    APPLICATION_CREDENTIAL = "application_credential", _("Application credential")
