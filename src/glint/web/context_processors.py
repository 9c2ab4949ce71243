"""Values every page needs: the person, their groups and the group being shown."""

from glint.accounts.access import current_group


def glint_context(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    try:
        group = current_group(request)
    except Exception:  # a bad ?group= is reported by the view itself, not by the menu
        group = None
    return {
        "groups": user.visible_groups(),
        "current_group": group,
        "managed_groups": user.is_admin or user.managed_groups().exists(),
    }
