"""The planner: which of a person's cell changes become jobs, which are no-ops, which are refused.

Pure rules over the matrix (``glint.matrix.rows``) and a few facts about the repos, so every
rule is visible here and testable without a database; ``glint.plans.services`` gathers the facts
from a fresh inventory and stores the verdicts. ``docs/architecture.md`` ("The matrix, in one
place") and issue 4 "Delete" are the specification.

Copy (tick). The source is an active copy of a verifiable, shown row in an enabled repo whose last
poll succeeded, not one being deleted; an original is preferred to a copy Glint converted (a
qcow2 in Glance, not its raw copy in EC2: the target then gets the bytes the row stands for, and
a cloud that stores raw only gets them converted once), then a copy owned by one of the group's
projects (its owner can read it for sure), then the repo order. A converted copy is the source
only when the row has no original left. A copy in a cloud that hashes no whole image (an EC2 AMI)
is in a verifiable row only when Glint wrote its digest on it (``glint.matrix.rows``): then it is
a source like any other, since the copy can be verified against that digest; an AMI Glint did not
write is an unverifiable row of its own, and no copy is planned from it. A target that already
holds the row, or a copy already on its way there, is a no-op: copies are idempotent, so no
staleness rule applies.

Delete (untick). Deleting is the one irreversible act, so it is refused unless everything the
person saw still holds: the repo's inventory has not changed since their page was loaded, the row
is shown (not hidden), the repo's project owns the copy, it is not protected, not published to
others (public, shared, community) unless an admin forces it, not kept there by a subscription
(its next refresh would fetch it again: the subscription is what to change), and at least one
copy of the row stays in the group once the whole plan has run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from glint.matrix.rows import Cell, CellState, Copy, Row

__all__ = [
    "Change",
    "RepoFacts",
    "Verdict",
    "copy_delete_refusal",
    "parse_version",
    "plan_changes",
    "PUBLISHED",
    "MESSAGES",
]

COPY, DELETE = "copy", "delete"
PLANNED, NOOP, REFUSED = "planned", "noop", "refused"

#: Visibilities that mean other projects may be using the image.
PUBLISHED = frozenset({"public", "shared", "community"})
#: Overlay states of a copy on its way to a cell.
INCOMING = frozenset({CellState.QUEUED, CellState.COPYING, CellState.VERIFYING})

#: Every reason the planner gives, by code (tests and the API docs refer to them).
MESSAGES = {
    "gone": "{verb}: it changed since your page was loaded",
    "stale": "not deleted: it changed since your page was loaded",
    "repeated": "asked twice in one plan",
    "no_repo": "not {done}: {repo} is not an enabled repo of this group",
    "hidden": "not {done}: the row is hidden (hidden rows are never changed by an apply)",
    "present": "already there",
    "foreign": "already there (owned by another project, {visibility})",
    "queued": "already queued",
    "being_deleted": "not copied: it is being deleted there; try again when that ends",
    "unverifiable": (
        "not copied: the cloud has no hash for this image, so no copy of it could be verified"
    ),
    "no_source": "not copied: no active copy in a reachable repo to copy from",
    "absent": "already absent",
    "deleting": "already being deleted",
    "incoming": "not deleted: a copy to this repo is in progress",
    "project_unknown": (
        "not deleted: Glint does not know yet which project {repo} is; refresh it first"
    ),
    "not_owned": "not deleted: {repo}'s project does not own it (owner {owner})",
    "protected": "not deleted: it is protected in {repo}",
    "published": (
        "not deleted: it is {visibility} and others may use it; only an admin can force this"
    ),
    "last_copy": "not deleted: it is the last copy in the group",
    "managed": (
        "not deleted: subscription {subscription} keeps it in {repo}; change the subscription's"
        " repos or unsubscribe"
    ),
}


@dataclass(frozen=True)
class Change:
    """One cell a person changed: ``row`` (a matrix row id), ``repo`` (a repo id), ``action``."""

    row: str
    repo: int
    action: str


@dataclass(frozen=True)
class RepoFacts:
    """What the planner needs to know of a repo of the group.

    Attributes:
        project_id: The project the repo's credentials reach ('' while unknown).
        healthy: Its last poll succeeded (a copy source must be reachable).
        version: Its inventory version now.
    """

    id: int
    name: str
    project_id: str
    healthy: bool
    version: int


@dataclass
class Verdict:
    """The planner's answer for one change.

    Attributes:
        source: For a planned copy, the copy to read.
        images: For a planned delete, the copies to delete (the repo's own copies of the row).
    """

    change: Change
    status: str
    reason: str = ""
    name: str = ""
    content_key: str = ""
    repo_name: str = ""
    source: Copy | None = None
    images: tuple[Copy, ...] = field(default_factory=tuple)


def parse_version(text: str) -> dict[int, int]:
    """``"3.12,4.7"`` (``GroupMatrix.version``) → ``{3: 12, 4: 7}``.

    Raises:
        ValueError: The text is not such a version.
    """
    versions = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        repo, dot, version = part.partition(".")
        if not dot:
            raise ValueError(f"not an inventory version: {part!r}")
        versions[int(repo)] = int(version)
    return versions


def _message(code: str, **values) -> str:
    return MESSAGES[code].format(**values)


class _Planner:
    def __init__(self, rows, repos, overlays, shown, protected, managed, may_force):
        self.rows: Mapping[str, Row] = rows
        self.repos: Mapping[int, RepoFacts] = repos
        self.overlays: Mapping[tuple[str, int], Cell] = overlays
        self.shown: Mapping[int, int] = shown
        self.protected: set[int] = protected
        self.managed: Mapping[int, str] = managed
        self.may_force = may_force
        self.group_projects = {r.project_id for r in repos.values() if r.project_id}

    def overlay(self, row: Row, repo_id: int) -> CellState | None:
        cell = self.overlays.get((row.id, repo_id))
        return cell.state if cell is not None else None

    def judge(self, change: Change) -> Verdict:
        verb = "not copied" if change.action == COPY else "not deleted"
        done = "copied" if change.action == COPY else "deleted"
        repo = self.repos.get(change.repo)
        row = self.rows.get(change.row)
        verdict = Verdict(change, PLANNED, repo_name=repo.name if repo else str(change.repo))
        if repo is None:
            return self._refuse(verdict, "no_repo", done=done, repo=f"repo {change.repo}")
        if row is None:
            verdict.status, verdict.reason = REFUSED, _message("gone", verb=verb)
            return verdict
        verdict.name, verdict.content_key = row.name, row.content_key
        if row.hidden:
            return self._refuse(verdict, "hidden", done=done)
        return (
            self._copy(verdict, row, repo)
            if change.action == COPY
            else self._delete(verdict, row, repo)
        )

    @staticmethod
    def _refuse(verdict: Verdict, code: str, status: str = REFUSED, **values) -> Verdict:
        verdict.status, verdict.reason = status, _message(code, **values)
        return verdict

    def _copy(self, verdict: Verdict, row: Row, repo: RepoFacts) -> Verdict:
        overlay = self.overlay(row, repo.id)
        cell = row.cells.get(repo.id)
        if overlay in INCOMING:
            return self._refuse(verdict, "queued", NOOP)
        if overlay == CellState.DELETING:
            return self._refuse(verdict, "being_deleted")
        if cell is not None and cell.state == CellState.PRESENT:
            return self._refuse(verdict, "present", NOOP)
        if cell is not None and cell.state == CellState.FOREIGN:
            return self._refuse(
                verdict, "foreign", NOOP, visibility=cell.copies[0].visibility or "shared"
            )
        if not row.verifiable:
            return self._refuse(verdict, "unverifiable")
        return verdict  # the source is chosen once every delete of the plan is known

    def _delete(self, verdict: Verdict, row: Row, repo: RepoFacts) -> Verdict:
        if self.shown.get(repo.id) != repo.version:
            return self._refuse(verdict, "stale")
        overlay = self.overlay(row, repo.id)
        if overlay == CellState.DELETING:
            return self._refuse(verdict, "deleting", NOOP)
        if overlay in INCOMING:
            return self._refuse(verdict, "incoming")
        cell = row.cells.get(repo.id)
        if cell is None or not cell.copies:
            return self._refuse(verdict, "absent", NOOP)
        own = tuple(c for c in cell.copies if c.owner == repo.project_id)
        keeper = next((self.managed[c.pk] for c in cell.copies if c.pk in self.managed), None)
        if keeper is not None:
            return self._refuse(verdict, "managed", subscription=keeper, repo=repo.name)
        refusal = next(
            filter(
                None,
                (
                    copy_delete_refusal(c, repo, self.protected, self.may_force)
                    for c in own or cell.copies[:1]
                ),
            ),
            None,
        )
        if refusal:
            verdict.status, verdict.reason = REFUSED, refusal
            return verdict
        verdict.images = own
        return verdict

    def keep_last_copies(self, verdicts: list[Verdict]) -> None:
        """Refuse every delete of a row that would leave the group without a copy of it."""
        deleting: dict[str, set[int]] = defaultdict(set)
        for v in verdicts:
            if v.change.action == DELETE and v.status == PLANNED:
                deleting[v.change.row].add(v.change.repo)
        for row_id, repo_ids in deleting.items():
            row = self.rows[row_id]
            staying = [
                repo_id
                for repo_id, cell in row.cells.items()
                if cell.copies
                and repo_id not in repo_ids
                and self.overlay(row, repo_id) != CellState.DELETING
            ]
            if staying:
                continue
            for v in verdicts:
                if v.change.row == row_id and v.change.action == DELETE and v.status == PLANNED:
                    self._refuse(v, "last_copy")
                    v.images = ()

    def choose_sources(self, verdicts: list[Verdict]) -> None:
        """Pick each planned copy's source, avoiding copies this plan deletes."""
        deleted = {
            (v.change.row, v.change.repo)
            for v in verdicts
            if v.change.action == DELETE and v.status == PLANNED
        }
        order = {repo_id: i for i, repo_id in enumerate(self.repos)}
        for v in verdicts:
            if v.change.action != COPY or v.status != PLANNED:
                continue
            row = self.rows[v.change.row]
            candidates = [
                c
                for repo_id, cell in row.cells.items()
                if repo_id in self.repos
                and self.repos[repo_id].healthy
                and (row.id, repo_id) not in deleted
                and self.overlay(row, repo_id) != CellState.DELETING
                for c in cell.copies
                if c.status == "active"
            ]
            if not candidates:
                self._refuse(v, "no_source")
                continue
            v.source = min(
                candidates,
                key=lambda c: (
                    c.converted,
                    c.owner not in self.group_projects,
                    order[c.repo_id],
                    c.pk,
                ),
            )


def copy_delete_refusal(copy: Copy, repo: RepoFacts, protected: set[int], may_force: bool) -> str:
    """Why this one copy must not be deleted from ``repo`` ('' when it may be).

    The rules of a cell's delete that concern the copy itself; the matrix-apply rules (stale
    page, hidden row, last copy) are :func:`plan_changes`'. The conflicts page's "delete a
    duplicate" asks only these.
    """
    if not repo.project_id:
        return _message("project_unknown", repo=repo.name)
    if copy.owner != repo.project_id:
        return _message("not_owned", repo=repo.name, owner=copy.owner or "unknown")
    if copy.pk in protected:
        return _message("protected", repo=repo.name)
    if copy.visibility in PUBLISHED and not may_force:
        return _message("published", visibility=copy.visibility)
    return ""


def plan_changes(
    changes: Iterable[Change],
    rows: Mapping[str, Row],
    repos: Mapping[int, RepoFacts],
    *,
    shown: Mapping[int, int],
    overlays: Mapping[tuple[str, int], Cell] | None = None,
    protected: Iterable[int] = (),
    managed: Mapping[int, str] | None = None,
    may_force: bool = False,
) -> list[Verdict]:
    """Decide every change against the group's current matrix.

    Args:
        changes: The cells the person changed, in the order they sent them.
        rows: The group's rows as polled (no job overlays), by row id.
        repos: The group's enabled repos, in column order, by id.
        shown: ``{repo_id: version}`` the person's page showed (:func:`parse_version`).
        overlays: Cells of jobs in flight, ``{(row_id, repo_id): Cell}``.
        protected: pks of the copies Glance marks ``protected``.
        managed: pk → name of the subscription that keeps that copy in its repo.
        may_force: An admin forces deletes of published images.

    Returns:
        One verdict per change, in the same order.
    """
    planner = _Planner(rows, repos, overlays or {}, shown, set(protected), managed or {}, may_force)
    verdicts, seen = [], set()
    for change in changes:
        key = (change.row, change.repo)
        if key in seen:
            verdicts.append(Verdict(change, NOOP, _message("repeated")))
            continue
        seen.add(key)
        verdicts.append(planner.judge(change))
    planner.keep_last_copies(verdicts)
    planner.choose_sources(verdicts)
    return verdicts
