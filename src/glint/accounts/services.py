"""Account operations shared by the command line, the admin pages and the API."""

from django.db import transaction

from glint.accounts.choices import Role
from glint.accounts.dn import canonical_from_string
from glint.accounts.models import AccessRequest, Group, Membership, User


class AccountError(Exception):
    """An account operation was refused; the message says why."""


@transaction.atomic
def add_user(dn: str, *, admin: bool = False, group_name: str | None = None, role: str = Role.MEMBER):
    """Add (or update) a person by DN; returns (user, created)."""
    canonical = canonical_from_string(dn)
    user, created = User.objects.get_or_create(dn=canonical)
    if created:
        user.set_unusable_password()
    if admin:
        user.is_admin = True
    user.save()
    if group_name:
        group = Group.objects.filter(name=group_name).first()
        if group is None:
            raise AccountError(f"there is no group named {group_name!r} (create it with `glint group add`)")
        Membership.objects.update_or_create(user=user, group=group, defaults={"role": role})
    AccessRequest.objects.filter(dn=canonical).delete()
    return user, created


def add_group(name: str, description: str = "") -> Group:
    name = name.strip()
    if not name:
        raise AccountError("a group needs a name")
    if Group.objects.filter(name=name).exists():
        raise AccountError(f"a group named {name!r} already exists")
    return Group.objects.create(name=name, description=description)
