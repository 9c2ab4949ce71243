"""What the inventory stores beside the listings: the group's columns and people's choices.

The matrix built from all this is ``glint.jobs.matrix``'s; here are only the queries and writes
of the inventory's own tables (the enabled repos of a group, Hide/Show choices, acknowledgements).
"""

from __future__ import annotations

from glint import audit
from glint.accounts.models import Group, User
from glint.inventory.models import ConflictAcknowledgement, HiddenRow
from glint.matrix.conflicts import Conflict
from glint.matrix.rows import Row
from glint.repos.models import Repo

__all__ = ["acknowledge", "group_repos", "refresh_pending", "set_hidden"]


def group_repos(group: Group) -> list[Repo]:
    """The enabled repos of a group, in column order, with their poll bookkeeping."""
    return list(
        Repo.objects.filter(group=group, enabled=True)
        .select_related("inventory")
        .order_by("name", "pk")
    )


def refresh_pending(repos) -> bool:
    """Some of ``repos`` (with ``inventory`` loaded) has a refresh asked for and not yet polled."""
    return any(getattr(getattr(r, "inventory", None), "refresh_requested_at", None) for r in repos)


def set_hidden(group: Group, row: Row, hidden: bool, user: User | None) -> None:
    """Record a Hide/Show choice for a row, under the row's current content key.

    Choices stored under the row's other keys (from before its key grew stronger) are removed, so
    exactly one choice speaks for the row.
    """
    HiddenRow.objects.filter(group=group, name=row.name, content_key__in=list(row.keys)).exclude(
        content_key=row.content_key
    ).delete()
    HiddenRow.objects.update_or_create(
        group=group,
        name=row.name,
        content_key=row.content_key,
        defaults={"hidden": hidden, "changed_by": user},
    )
    audit.record(
        "image.hide" if hidden else "image.show",
        user=user,
        group=group,
        image=row.name,
        details={"row": row.id},
    )


def acknowledge(group: Group, conflict: Conflict, user: User | None) -> None:
    """Accept a conflict group as it is now; it comes back if its members change."""
    ConflictAcknowledgement.objects.update_or_create(
        group=group,
        key=conflict.key,
        defaults={"signature": conflict.signature, "acknowledged_by": user},
    )
    audit.record("conflict.acknowledge", user=user, group=group, details={"conflict": conflict.key})
