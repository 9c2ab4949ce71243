"""The inventory as pages and the API use it: a group's matrix, its conflicts, and people's choices.

Everything a matrix page needs comes from a fixed number of queries (the group's repos with their
inventory bookkeeping, every copy in them as plain tuples, the Hide/Show choices, the
acknowledgements) whatever the size of the inventory; the rest is ``glint.inventory.matrix``.

Rows and conflicts depend only on the repos' listings, so they are kept in a small per-process
cache keyed by each repo's inventory version and listing fingerprint (the poller changes both with
every change it writes). A page of an unchanged inventory then costs three small queries;
people's choices (Hide/Show, acknowledgements) are laid over the cached rows on every request.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass

from django.http import Http404

from glint import audit
from glint.accounts.access import visible_group
from glint.accounts.models import Group, User
from glint.inventory.matrix import (
    Conflict,
    Copy,
    RepoColumn,
    Row,
    apply_acknowledgements,
    apply_hidden,
    build_rows,
    find_conflicts,
)
from glint.inventory.models import ConflictAcknowledgement, HiddenRow, Image, RepoInventory
from glint.repos.models import Repo

__all__ = ["GroupMatrix", "acknowledge", "forget_cached_matrices", "group_matrix", "group_repos", "polled_rows",
           "set_hidden"]

#: Matrices kept per process (one per group and inventory state).
CACHE_SIZE = 16
_cache: OrderedDict[tuple, tuple[list[Row], list[Conflict]]] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass
class GroupMatrix:
    """A group's matrix as of its last polls.

    Attributes:
        repos: The group's enabled repos (the columns), with ``inventory`` loaded.
        versions: ``{repo_id: inventory version}``, what a page sends back with a change.
        version: The same as one opaque token.
    """

    group: Group
    repos: list[Repo]
    rows: list[Row]
    conflicts: list[Conflict]
    versions: dict[int, int]

    @property
    def version(self) -> str:
        return ",".join(f"{repo_id}.{v}" for repo_id, v in sorted(self.versions.items()))

    @property
    def open_conflicts(self) -> list[Conflict]:
        return [c for c in self.conflicts if not c.acknowledged]

    def row(self, row_id: str) -> Row | None:
        """The row with this id, or that had it before its content key grew stronger."""
        found = next((r for r in self.rows if r.id == row_id), None)
        return found or next((r for r in self.rows if r.answers_to(self.group.pk, row_id)), None)

    def column_of(self, repo_id: int) -> Repo | None:
        return next((r for r in self.repos if r.pk == repo_id), None)


def group_repos(group: Group) -> list[Repo]:
    """The enabled repos of a group, in column order, with their poll bookkeeping."""
    return list(Repo.objects.filter(group=group, enabled=True).select_related("inventory").order_by("name", "pk"))


def _inventory(repo: Repo) -> RepoInventory | None:
    try:
        return repo.inventory
    except RepoInventory.DoesNotExist:
        return None


def _column(repo: Repo) -> RepoColumn:
    inventory = _inventory(repo)
    project_id = inventory.project_id if inventory and inventory.project_id else ""
    if not project_id and repo.cloud_project:
        project_id = repo.cloud_project.rpartition("#")[2]
    return RepoColumn(repo.pk, repo.name, project_id)


def _cache_key(group: Group, repos: list[Repo], columns: list[RepoColumn]) -> tuple:
    state = []
    for repo, column in zip(repos, columns):
        inventory = _inventory(repo)
        state.append((column, repo.created, inventory.version if inventory else -1,
                      inventory.fingerprint if inventory else ""))
    return (group.pk, tuple(state))


def _rows_and_conflicts(group: Group, repos: list[Repo], columns: list[RepoColumn]):
    key = _cache_key(group, repos, columns)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    copies = [Copy(*values) for values in
              Image.objects.filter(repo__in=[r.pk for r in repos]).order_by().values_list(*Image.COPY_FIELDS)]
    rows = build_rows(group.pk, columns, copies)
    built = (rows, find_conflicts(rows, columns))
    with _cache_lock:
        _cache[key] = built
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return built


def polled_rows(group: Group) -> list[Row]:
    """The group's rows as last polled, without Hide/Show choices or job cells (one query while
    the inventory is unchanged: the cached rows)."""
    repos = group_repos(group)
    return _rows_and_conflicts(group, repos, [_column(repo) for repo in repos])[0]


def _with_overlays(rows: list[Row], overlays) -> list[Row]:
    """Copies of the rows whose cells jobs speak for; each such cell keeps the copies it holds."""
    if not overlays:
        return rows
    result = []
    for row in rows:
        cells = {repo_id: dataclasses.replace(overlays[(row.id, repo_id)], copies=cell.copies)
                 for repo_id, cell in row.cells.items() if (row.id, repo_id) in overlays}
        result.append(dataclasses.replace(row, cells={**row.cells, **cells}) if cells else row)
    return result


def forget_cached_matrices() -> None:
    """Drop every cached matrix (for code that writes images without bumping a version: tests)."""
    with _cache_lock:
        _cache.clear()


def group_matrix(group: Group, *, overlays=None) -> GroupMatrix:
    """Build ``group``'s matrix and conflicts (three queries, four when the inventory changed).

    Args:
        group: The group.
        overlays: Job cells to lay over the polled ones, ``{(row_id, repo_id): Cell}``
            (``glint.jobs.services.cell_overlays``). They are laid over the cached rows on every
            call, never cached; conflicts are judged on the polled cells.
    """
    repos = group_repos(group)
    columns = [_column(repo) for repo in repos]
    rows, conflicts = _rows_and_conflicts(group, repos, columns)
    choices = {(name, key): hidden for name, key, hidden in
               HiddenRow.objects.filter(group=group).values_list("name", "content_key", "hidden")}
    acknowledged = dict(ConflictAcknowledgement.objects.filter(group=group).values_list("key", "signature"))
    versions = {}
    for repo in repos:
        inventory = _inventory(repo)
        versions[repo.pk] = inventory.version if inventory else 0
    return GroupMatrix(group, repos, _with_overlays(apply_hidden(rows, choices), overlays),
                       apply_acknowledgements(conflicts, acknowledged), versions)


def _split_object_id(user: User, object_id: str) -> tuple[Group, str]:
    """The group of a ``<group>-<key>`` row or conflict id (404 unless ``user`` sees it), and the key."""
    group_part, _, key = str(object_id).partition("-")
    if not key:
        raise Http404("Malformed id: expected <group>-<key>.")
    return visible_group(user, group_part), key


def find_row(user: User, row_id: str) -> tuple[GroupMatrix, Row]:
    """A matrix row by its id, as ``user`` may see it; 404 otherwise."""
    group, _key = _split_object_id(user, row_id)
    matrix = group_matrix(group)
    row = matrix.row(row_id)
    if row is None:
        raise Http404("No such image row: it may have changed since the page was loaded.")
    return matrix, row


def find_conflict(user: User, conflict_id: str) -> tuple[GroupMatrix, Conflict]:
    """A conflict group by its id, as ``user`` may see it; 404 otherwise."""
    group, key = _split_object_id(user, conflict_id)
    matrix = group_matrix(group)
    conflict = next((c for c in matrix.conflicts if c.key == key), None)
    if conflict is None:
        raise Http404("No such conflict: it may have been resolved since the page was loaded.")
    return matrix, conflict


def set_hidden(group: Group, row: Row, hidden: bool, user: User | None) -> None:
    """Record a Hide/Show choice for a row, under the row's current content key.

    Choices stored under the row's other keys (from before its key grew stronger) are removed, so
    exactly one choice speaks for the row.
    """
    HiddenRow.objects.filter(group=group, name=row.name, content_key__in=list(row.keys)).exclude(
        content_key=row.content_key).delete()
    HiddenRow.objects.update_or_create(
        group=group, name=row.name, content_key=row.content_key,
        defaults={"hidden": hidden, "changed_by": user},
    )
    audit.record("image.hide" if hidden else "image.show", user=user, group=group, image=row.name,
                 details={"row": row.id})


def acknowledge(group: Group, conflict: Conflict, user: User | None) -> None:
    """Accept a conflict group as it is now; it comes back if its members change."""
    ConflictAcknowledgement.objects.update_or_create(
        group=group, key=conflict.key, defaults={"signature": conflict.signature, "acknowledged_by": user},
    )
    audit.record("conflict.acknowledge", user=user, group=group, details={"conflict": conflict.key})
