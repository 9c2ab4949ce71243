"""People, groups and memberships.

A person is their certificate's canonical subject DN (``glint.accounts.dn``: one string per RDN
sequence, at most ``MAX_DN_LENGTH`` characters); there are no passwords. Admin is a global flag
set only by an admin or on the server's command line. Every other right comes from a membership
role in a group.
"""

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils.translation import gettext_lazy as _

from glint.accounts.choices import CopiesRunAt, RawCopiesFormat, Role
from glint.accounts.dn import MAX_DN_LENGTH, canonical_from_string, display_from_canonical

__all__ = ["AccessRequest", "Group", "Membership", "TokenIdentity", "User"]


class UserManager(BaseUserManager):
    def create_user(self, dn: str, *, is_admin: bool = False, **fields) -> "User":
        user = self.model(dn=canonical_from_string(dn), is_admin=is_admin, **fields)
        user.set_unusable_password()
        user.save(using=self._db)
        return user


class User(AbstractBaseUser):
    """A person, known by the canonical subject DN of their grid certificate."""

    dn = models.CharField(_("DN"), max_length=MAX_DN_LENGTH, unique=True)
    is_admin = models.BooleanField(_("admin"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    default_group = models.ForeignKey(
        "accounts.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)

    objects = UserManager()
    USERNAME_FIELD = "dn"

    class Meta:
        ordering = ["dn"]

    def __str__(self) -> str:
        return self.display_dn

    @property
    def display_dn(self) -> str:
        return display_from_canonical(self.dn)

    def role_in(self, group: "Group") -> str | None:
        """The person's role in ``group``; admins act as managers everywhere."""
        if self.is_admin:
            return Role.MANAGER
        membership = self.memberships.filter(group=group).first()
        return membership.role if membership else None

    def visible_groups(self):
        """Groups whose repos and images this person may see."""
        if self.is_admin:
            return Group.objects.all()
        return Group.objects.filter(memberships__user=self).distinct()

    def managed_groups(self):
        """Groups whose repos and members this person may change."""
        if self.is_admin:
            return Group.objects.all()
        return Group.objects.filter(
            memberships__user=self, memberships__role=Role.MANAGER
        ).distinct()


class Group(models.Model):
    """A research group: its members share a set of repos and one image matrix."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    copies_run_at = models.CharField(
        _("copies run at"),
        max_length=10,
        choices=CopiesRunAt.choices,
        default=CopiesRunAt.TARGET,
        help_text=_(
            "Which site's workers run a copy: each target's (a copy to two sites is split, one "
            "job per site) or the source's. Only matters with separate workers per site."
        ),
    )
    raw_copies_format = models.CharField(
        _("format of copies from raw-only clouds"),
        max_length=10,
        choices=RawCopiesFormat.choices,
        default=RawCopiesFormat.RAW,
        help_text=_(
            "The disk format a copy from a cloud that stores raw disks only (EC2) is stored in, "
            "where the target stores any format (Glance): raw as it is, or converted to qcow2."
        ),
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A person's role in one group."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="memberships")
    group = models.ForeignKey(
        "accounts.Group", on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        ordering = ["group__name", "user__dn"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "group"],
                name="%(app_label)s_%(class)s_unique_user_group",
                violation_error_message="This person is already in this group.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.group} as {self.role}"


class AccessRequest(models.Model):
    """A valid certificate whose DN no admin has added yet: all a first visit creates."""

    dn = models.CharField(_("DN"), max_length=MAX_DN_LENGTH, unique=True)
    issuer_dn = models.CharField(_("issuer DN"), max_length=MAX_DN_LENGTH, blank=True)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return display_from_canonical(self.dn)


class TokenIdentity(models.Model):
    """A bearer-token identity (issuer, subject) that signs in as a person
    (``glint.accounts.tokens``).

    The pair is the key, never the subject alone: two issuers may hand out the same ``sub``.
    """

    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="token_identities"
    )
    issuer = models.CharField(_("issuer"), max_length=512)
    subject = models.CharField(_("subject"), max_length=255)

    class Meta:
        ordering = ["issuer", "subject"]
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"],
                name="%(app_label)s_%(class)s_unique_issuer_subject",
                violation_error_message="This token identity already belongs to someone.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer}"
