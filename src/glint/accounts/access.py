"""Who may see and change what: the one place views, partials and API calls ask.

Another group's objects are answered with 404, not 403, so their existence is not revealed: these
functions raise ``glint.errors.NotFound``, which every face answers with 404.
"""

from django.core.exceptions import PermissionDenied

from glint.accounts.choices import Role
from glint.accounts.models import Group, User
from glint.errors import NotFound


def visible_group(user: User, group_id) -> Group:
    """The group ``group_id`` if ``user`` may see it; :class:`~glint.errors.NotFound` otherwise."""
    try:
        return user.visible_groups().get(pk=int(group_id))
    except (Group.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such group.") from None


def require_manager(user: User, group: Group) -> None:
    """Refuse (403) unless ``user`` manages ``group`` or is an admin."""
    if user.role_in(group) != Role.MANAGER:
        raise PermissionDenied("Only managers of this group (or admins) may change it.")


def current_group(request) -> Group | None:
    """The group a page shows: ``?group=``, else the person's default, else their first group."""
    user = request.user
    if request.GET.get("group"):
        return visible_group(user, request.GET["group"])
    groups = user.visible_groups()
    if user.default_group_id and groups.filter(pk=user.default_group_id).exists():
        return user.default_group
    return groups.first()
