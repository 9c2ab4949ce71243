"""A group's matrix as people see it: the one place that builds it from the database.

Every page, htmx partial, API list and the planner read the matrix here. It gathers, in a fixed
number of queries whatever the size of the inventory, the group's repos with their inventory
bookkeeping, every copy in them as plain tuples, the Hide/Show choices, the acknowledgements and,
when asked, the job targets that speak for cells; the rules themselves are ``glint.matrix``'s.

It lives in the jobs app because jobs is the lowest app that sees both the inventory (below it)
and the jobs, and submitting a job needs the row it is about; ``glint.plans`` sits above.

Rows and conflicts depend only on the repos' listings, so they are kept in a small per-process
cache keyed by each repo's inventory version and listing fingerprint (the poller changes both with
every change it writes, and says so: :func:`warm_after_poll`). A page of an unchanged inventory
then costs three small queries; people's choices and the job cells are laid over the cached rows
on every request, never cached. Job cells are matched to rows by every key a row answers to
(``glint.matrix.rows.lay_job_cells``), so a job's cells follow its row when the row's key grows
stronger.
"""

from __future__ import annotations

import datetime
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, F, Q
from django.utils import timezone

from glint.accounts.access import visible_group
from glint.accounts.models import Group, User
from glint.errors import NotFound
from glint.inventory.models import (
    ConflictAcknowledgement,
    HiddenRow,
    Image,
    RepoInventory,
)
from glint.inventory.services import group_repos
from glint.jobs import states
from glint.jobs.models import Job, JobTarget
from glint.matrix.conflicts import Conflict, apply_acknowledgements, find_conflicts
from glint.matrix.rows import (
    Cell,
    CellState,
    Copy,
    JobCell,
    RepoColumn,
    Row,
    apply_hidden,
    build_rows,
    lay_job_cells,
)
from glint.repos.models import Repo

__all__ = [
    "FAILED_CELL_DAYS",
    "GroupMatrix",
    "cell_overlays",
    "failed_job_of_cell",
    "find_conflict",
    "find_row",
    "forget_cached_matrices",
    "group_matrix",
    "has_live_jobs",
    "warm_after_poll",
    "warm_every_matrix",
]

#: How long a failed target keeps showing as a "failed" cell (with Retry) in the matrix.
FAILED_CELL_DAYS = 7
#: Matrices kept per process (one per group and inventory state).
CACHE_SIZE = 16
_cache: OrderedDict[tuple, tuple[list[Row], list[Conflict]]] = OrderedDict()
_cache_lock = threading.Lock()
#: The lock of each matrix being built, by cache key.
_building: dict[tuple, threading.Lock] = {}


@dataclass
class GroupMatrix:
    """A group's matrix as of its last polls, with the cells jobs speak for if asked.

    Attributes:
        repos: The group's enabled repos (the columns), with ``inventory`` loaded.
        rows: The rows people see: Hide/Show choices applied, job cells laid over.
        versions: ``{repo_id: inventory version}``, what a page sends back with a change.
        polled: The same rows with the polled cells only (what the planner judges).
        job_cells: ``{(row id, repo id): Cell}`` of the cells jobs speak for.
    """

    group: Group
    repos: list[Repo]
    rows: list[Row]
    conflicts: list[Conflict]
    versions: dict[int, int]
    polled: list[Row] = field(default_factory=list)
    job_cells: dict[tuple[str, int], Cell] = field(default_factory=dict)

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
        state.append(
            (
                column,
                repo.created,
                inventory.version if inventory else -1,
                inventory.fingerprint if inventory else "",
            )
        )
    return (group.pk, tuple(state))


def _rows_and_conflicts(group: Group, repos: list[Repo], columns: list[RepoColumn]):
    key = _cache_key(group, repos, columns)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        building = _building.setdefault(key, threading.Lock())
    # One thread builds a matrix; the others asking for it meanwhile wait for that one. Without
    # this, every thread of a busy process rebuilt the same big matrix at once after each poll,
    # each slowed by the others, and requests piled up behind them.
    with building:
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        copies = [
            Copy(*values)
            for values in Image.objects.filter(repo__in=[r.pk for r in repos])
            .order_by()
            .values_list(*Image.COPY_FIELDS)
        ]
        rows = build_rows(group.pk, columns, copies)
        built = (rows, find_conflicts(rows, columns))
        with _cache_lock:
            _cache[key] = built
            _building.pop(key, None)
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return built


def forget_cached_matrices() -> None:
    """Drop every cached matrix (for code that writes images without bumping a version: tests)."""
    with _cache_lock:
        _cache.clear()


def warm_every_matrix() -> None:
    """Build every group's matrix into this process's cache (a serving process does this as it
    starts, so its first pages need not; a request meanwhile waits for the one build)."""
    try:
        for group in Group.objects.all():
            group_matrix(group)
    finally:
        connection.close()


def warm_after_poll(sender=None, repo_ids=(), **kwargs) -> None:
    """Rebuild the cached matrices of the groups whose repos a poll changed, so the next page
    load need not (the receiver of ``glint.inventory.signals.inventory_changed``)."""
    for group in Group.objects.filter(repos__in=list(repo_ids)).distinct():
        group_matrix(group)


def group_matrix(group: Group, *, with_jobs: bool = False, overlays=None) -> GroupMatrix:
    """Build ``group``'s matrix and conflicts (three queries, four when the inventory changed,
    one more with the jobs).

    Args:
        group: The group.
        with_jobs: Lay the cells that jobs speak for (:func:`cell_overlays`) over the polled ones,
            as the matrix page, the API list and the planner show them.
        overlays: Job cells to lay instead (``JobCell``\\ s, newest first), for callers that
            already have them; conflicts are always judged on the polled cells.
    """
    repos = group_repos(group)
    columns = [_column(repo) for repo in repos]
    rows, conflicts = _rows_and_conflicts(group, repos, columns)
    choices = {
        (name, key): hidden
        for name, key, hidden in HiddenRow.objects.filter(group=group).values_list(
            "name", "content_key", "hidden"
        )
    }
    acknowledged = dict(
        ConflictAcknowledgement.objects.filter(group=group).values_list("key", "signature")
    )
    versions = {}
    for repo in repos:
        inventory = _inventory(repo)
        versions[repo.pk] = inventory.version if inventory else 0
    polled = apply_hidden(rows, choices)
    if with_jobs and overlays is None:
        overlays = cell_overlays(group)
    shown, job_cells = lay_job_cells(polled, overlays) if overlays else (polled, {})
    conflicts = apply_acknowledgements(conflicts, acknowledged)
    return GroupMatrix(group, repos, shown, conflicts, versions, polled=polled, job_cells=job_cells)


# The cells of jobs


_COPY_CELLS = {
    states.TargetState.PENDING.value: CellState.QUEUED,
    states.TargetState.WRITING.value: CellState.COPYING,
    states.TargetState.VERIFYING.value: CellState.VERIFYING,
}


# A done target whose repo's poll, asked for by the job's end, has not run yet: its result is not
# in the listing. The stored listing must have begun before the job ended: a later job's end
# asks for a poll too, and the first job's result, listed since, must not look pending again
# (nor one whose copy was deleted meanwhile look queued to the planner). A refresh asked for
# more than a minute after the job's end is someone else's.
_LISTING_PENDING = Q(
    Q(repo__inventory__listed_from__isnull=True)
    | Q(repo__inventory__listed_from__lt=F("job__finished")),
    state=states.TargetState.DONE.value,
    repo__inventory__refresh_requested_at__gte=F("job__finished"),
    repo__inventory__refresh_requested_at__lte=F("job__finished") + datetime.timedelta(minutes=1),
)


def cell_overlays(group: Group) -> list[JobCell]:
    """What jobs say of the group's cells now, newest job first, in one query.

    A cell's most recent copy or delete job speaks for it: queued / copying n% / verifying for a
    copy under way, deleting for a delete under way, and failed (with the reason) for a target
    that failed within the last :data:`FAILED_CELL_DAYS` days and is not being retried
    automatically right now (then it shows queued). A done target whose repo has not been polled
    since keeps showing verifying (deleting) until the poll lists the result. Cells of other
    finished, cancelled or done targets are the inventory's (``cell`` None).

    Returns:
        One :class:`~glint.matrix.rows.JobCell` per job target, named by the job's row as it was
        planned (name and content key); ``lay_job_cells`` finds the row that answers to it now.
    """
    since = timezone.now() - datetime.timedelta(days=FAILED_CELL_DAYS)
    targets = (
        JobTarget.objects.filter(
            job__group=group,
            job__kind__in=(states.COPY, states.UPLOAD, states.DELETE),
            repo__isnull=False,
        )
        .filter(
            Q(job__state__in=states.JOB_ACTIVE_STATES)
            | Q(job__next_attempt_at__isnull=False)
            | Q(state=states.TargetState.FAILED.value, job__finished__gte=since)
            | _LISTING_PENDING
        )
        .annotate(listing_pending=ExpressionWrapper(_LISTING_PENDING, BooleanField()))
        .order_by("-job__created", "-job_id")
        .values_list(
            "repo_id",
            "state",
            "bytes_done",
            "bytes_total",
            "error",
            "next_attempt_at",
            "job__kind",
            "job__image_name",
            "job__content_key",
            "job__state",
            "listing_pending",
        )
    )
    found = []
    for (
        repo_id,
        state,
        done,
        total,
        error,
        next_at,
        kind,
        name,
        content_key,
        job_state,
        listing_pending,
    ) in targets:
        progress = min(100, int(done * 100 / total)) if total else None
        if listing_pending and job_state not in states.JOB_ACTIVE_STATES:
            # Done, but the repo's poll that will list the result has not run yet: the cell
            # keeps what the job was doing rather than flash back to what the listing showed.
            shown = CellState.DELETING if kind == states.DELETE else CellState.VERIFYING
            cell = Cell(shown, reason="done; waiting for the repo's listing")
        elif state == states.TargetState.FAILED.value:
            if next_at is not None:
                cell = Cell(CellState.QUEUED, reason=f"retrying: {error}")
            else:
                cell = Cell(CellState.FAILED, reason=error)
        elif state in _COPY_CELLS and job_state in states.JOB_ACTIVE_STATES:
            shown = CellState.DELETING if kind == states.DELETE else _COPY_CELLS[state]
            cell = Cell(shown, progress=progress if shown is CellState.COPYING else None)
        else:
            cell = None  # done or cancelled: the inventory speaks, older jobs do not
        found.append(JobCell(name, content_key, repo_id, cell))
    return found


def failed_job_of_cell(group: Group, row_id: str, repo_id: int) -> Job | None:
    """The job whose failed target the matrix shows in this cell (what its Retry retries).

    Jobs carry the row's content key of when they were planned; the row may answer to a stronger
    one since (a copy's sha256), so the job is looked for under every key the row answers to.
    """
    row = group_matrix(group).row(row_id)
    if row is None:
        return None
    target = (
        JobTarget.objects.filter(
            job__group=group,
            repo_id=repo_id,
            state=states.TargetState.FAILED.value,
            job__image_name=row.name,
            job__content_key__in=row.keys,
        )
        .select_related("job")
        .order_by("-job__created", "-job_id")
        .first()
    )
    return target.job if target else None


def has_live_jobs(group: Group) -> bool:
    """Some job of the group is queued, running or waiting for an automatic retry."""
    return Job.objects.filter(group=group).live().exists()


# Finding one row or conflict, as a person may see it


def _split_object_id(user: User, object_id: str) -> tuple[Group, str]:
    """The group of a ``<group>-<key>`` row or conflict id (not found unless ``user`` sees it),
    and the key."""
    group_part, _, key = str(object_id).partition("-")
    if not key:
        raise NotFound("Malformed id: expected <group>-<key>.")
    return visible_group(user, group_part), key


def find_row(user: User, row_id: str) -> tuple[GroupMatrix, Row]:
    """A matrix row by its id, as ``user`` may see it (polled cells).

    Raises:
        NotFound: No such row, or not one of ``user``'s groups.
    """
    group, _key = _split_object_id(user, row_id)
    matrix = group_matrix(group)
    row = matrix.row(row_id)
    if row is None:
        raise NotFound("No such image row: it may have changed since the page was loaded.")
    return matrix, row


def find_conflict(user: User, conflict_id: str) -> tuple[GroupMatrix, Conflict]:
    """A conflict group by its id, as ``user`` may see it.

    Raises:
        NotFound: No such conflict, or not one of ``user``'s groups.
    """
    group, key = _split_object_id(user, conflict_id)
    matrix = group_matrix(group)
    conflict = next((c for c in matrix.conflicts if c.key == key), None)
    if conflict is None:
        raise NotFound("No such conflict: it may have been resolved since the page was loaded.")
    return matrix, conflict
