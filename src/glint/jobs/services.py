"""Creating, cancelling and retrying jobs (their cells in the matrix: ``glint.jobs.matrix``).

The planner (``/api/v1/plans/``), the pages and the command line all come here. Refusals that
depend on the matrix (last copy, protected, not owned, hidden row, stale page, ...) are the
planner's, decided before a job is submitted; these functions refuse only what makes a job
impossible (a repo of another group, a source that is also a target), and they make submitting
idempotent:

- a copy of a row to a repo that a live job is already copying it to is not repeated: the
  :class:`Submission` names the existing job instead;
- a copy to a repo whose current inventory already holds the row (cell ``present``) needs no
  work: the submission lists that repo under ``present``.

A job row is committed first and the runner is told after commit (``transaction.on_commit``), so
a worker never sees an uncommitted job. Members of a group may submit, cancel and retry the
group's jobs.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Iterable, Sequence

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from glint import audit
from glint.accounts.choices import CopiesRunAt
from glint.accounts.models import Group, User
from glint.inventory.models import Image
from glint.jobs import states
from glint.jobs.heartbeat import HEARTBEAT_SECONDS
from glint.jobs.matrix import FAILED_CELL_DAYS, cell_overlays, group_matrix
from glint.jobs.models import Job, JobTarget, Worker
from glint.matrix.rows import CellState, Row
from glint.replication import ConflictPolicy
from glint.repos.models import Repo

__all__ = [
    "JobRefused",
    "Submission",
    "submit_copy",
    "submit_delete",
    "submit_property_sync",
    "row_keys",
    "submit_conversion",
    "live_conversion",
    "cancel",
    "retry",
    "workers_with_jobs",
    "no_site_worker",
    "cell_overlays",  # built in glint.jobs.matrix, named here too for callers of this module
    "FAILED_CELL_DAYS",
]


class JobRefused(Exception):
    """The request cannot become a job (or the action does not apply to the job's state).

    Attributes:
        message: Safe to show a person. code: ``invalid`` (bad input) or ``state`` (conflict
            with the job's current state: the API answers 409).
    """

    def __init__(self, message: str, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclasses.dataclass
class Submission:
    """What a ``submit_*`` call did.

    Attributes:
        new_jobs: The jobs created now: one per site whose workers run some of the targets
            (``Repo.site``, ``Group.copies_run_at``), none when nothing new was needed.
        existing: ``{repo_id: job}``: repos a live job is already doing this for (not repeated).
        present: Repo ids whose current inventory already holds the row (copy: no work).
    """

    new_jobs: list[Job]
    existing: dict[int, Job] = dataclasses.field(default_factory=dict)
    present: list[int] = dataclasses.field(default_factory=list)

    @property
    def created(self) -> bool:
        return bool(self.new_jobs)

    @property
    def jobs(self) -> list[Job]:
        """The new jobs and the existing ones, each once."""
        found = {job.pk: job for job in self.existing.values()}
        found.update((job.pk, job) for job in self.new_jobs)
        return list(found.values())

    def describe(self) -> str:
        """One line for a person: what was queued, what was already under way or in place."""
        parts = [
            f"job {job.pk} queued for {', '.join(t.repo_name for t in job.targets.all())}"
            + (f" (site {job.site})" if job.site else "")
            for job in self.new_jobs
        ]
        for repo_id, job in sorted(self.existing.items()):
            parts.append(f"repo {repo_id}: already being done by job {job.pk}")
        if self.present:
            parts.append(
                f"repos {', '.join(map(str, self.present))}: already hold the image, nothing to do"
            )
        return "; ".join(parts) or "nothing to do"


def row_key(group: Group, kind: str, name: str, content_key: str) -> str:
    """The digest that finds live jobs for the same (group, kind, row)."""
    return hashlib.sha256(f"{group.pk}\0{kind}\0{name}\0{content_key}".encode()).hexdigest()


def row_keys(group: Group, kind: str, row: Row) -> list[str]:
    """The row keys a ``kind`` job for ``row`` may carry: one per content key the row answers to
    (a job planned before a copy made the row's key stronger carries the older one)."""
    return [row_key(group, kind, row.name, key) for key in sorted(row.keys)]


# Submitting


def _group_repos(group: Group, repos: Iterable[Repo]) -> list[Repo]:
    repos = list(repos)
    for repo in repos:
        if repo.group_id != group.pk:
            raise JobRefused(f"Repo {repo.pk} is not one of group {group.name}'s repos.")
        if not repo.enabled:
            raise JobRefused(f"Repo {repo.name} is disabled: it is no copy source or target.")
    if len({r.pk for r in repos}) != len(repos):
        raise JobRefused("A repo is named twice.")
    return repos


def _row_of(group: Group, images: Sequence[Image]) -> Row:
    """The matrix row holding every one of ``images`` (as polled, without job cells)."""
    wanted = {image.pk for image in images}
    for row in group_matrix(group).rows:
        held = {copy.pk for copy in row.copies}
        if wanted <= held:
            return row
        if wanted & held:
            raise JobRefused(
                "These images are not all copies of one image (name and content): one job per row."
            )
    raise JobRefused("The image is not in this group's inventory any more: reload and try again.")


def _live_targets(
    group: Group, kind: str, row: Row, repos: Sequence[Repo], image_ids: Sequence[str] | None = None
):
    """``{repo_id: job}`` of live ``kind`` jobs for ``row`` with an unfinished target in these
    repos.

    A job planned before a copy made the row's content key stronger carries the older key: every
    key the row answers to is looked for.
    """
    query = (
        JobTarget.objects.filter(
            job__row_key__in=row_keys(group, kind, row),
            job__kind=kind,
            repo__in=[r.pk for r in repos],
        )
        .filter(Q(job__state__in=states.JOB_ACTIVE_STATES) | Q(job__next_attempt_at__isnull=False))
        .exclude(state__in=(states.TargetState.DONE.value, states.TargetState.CANCELLED.value))
        .select_related("job")
    )
    found = {}
    for target in query:
        if image_ids is None or target.image_id in image_ids:
            found[target.repo_id] = target.job
    return found


def _create(group, kind, requester, row: Row, targets: list[tuple[Repo, str]], **fields) -> Job:
    sha256 = next((k.partition(":")[2] for k in sorted(row.keys) if k.startswith("sha256:")), "")
    job = Job.objects.create(
        kind=kind,
        group=group,
        requester=requester,
        requester_dn=requester.dn if requester else "",
        image_name=row.name,
        content_key=row.content_key,
        sha256=sha256,
        row_key=row_key(group, kind, row.name, row.content_key),
        **fields,
    )
    JobTarget.objects.bulk_create(
        [
            JobTarget(job=job, repo=repo, repo_name=repo.name, image_id=image_id)
            for repo, image_id in targets
        ]
    )
    audit.record(
        f"job.{kind}",
        user=requester,
        group=group,
        image=row.name,
        details={"job": job.pk, "targets": [repo.name for repo, _ in targets]},
    )
    transaction.on_commit(lambda: _notify(job.pk))
    return job


def _notify(job_id: int) -> None:
    from glint.jobs.dispatch import notify

    notify(job_id)


def _cancel_here(job_id: int) -> None:
    """Stop the job at once if this process runs it (the worker otherwise sees the cancel in the
    row within a second)."""
    from glint.jobs.execution import cancel_here

    cancel_here(job_id)


def _lock_group(group: Group) -> None:
    """Serialize submissions per group, so two identical requests cannot both create a job."""
    Group.objects.select_for_update().filter(pk=group.pk).first()


def _repos_of(group: Group, images: Sequence[Image]) -> list[Repo]:
    return _group_repos(group, {image.repo_id: image.repo for image in images}.values())


def _by_site(
    group: Group, targets: list[tuple[Repo, str]], source: Repo | None = None
) -> list[tuple[str, list[tuple[Repo, str]]]]:
    """The targets of one request, by the site whose workers will run them, one job per site.

    A target runs at its repo's site, unless the group runs copies at the source's site
    (``Group.copies_run_at``); a job with a source reads it once, so a copy to two sites reads
    the source once per site. A job's site never changes, so its messages always go to the
    same queue (``glint.jobs.celery``).
    """
    if source is not None and group.copies_run_at == CopiesRunAt.SOURCE:
        return [(source.site, targets)]
    by_site: dict[str, list[tuple[Repo, str]]] = {}
    for repo, image_id in targets:
        by_site.setdefault(repo.site, []).append((repo, image_id))
    return sorted(by_site.items())


def submit_copy(
    group: Group,
    *,
    source: Image,
    targets: Iterable[Repo],
    requester: User | None = None,
    visibility: str | None = None,
    conflict_policy: str = ConflictPolicy.REPORT.value,
    idempotency_key: str = "",
) -> Submission:
    """Copy one image to some of the group's repos: a job with a target per repo (one job per
    site, when the repos are at several sites: see :func:`_by_site`).

    The job is about the source's matrix row (name + content), so asking again for the same row
    and repo while a job is live returns that job instead of a second one.

    Args:
        group: The group whose repos are involved.
        source: The copy to read (an ``inventory.Image`` of one of the group's repos).
        targets: The repos to copy to.
        requester: Who asked (None: Glint itself).
        visibility: The copies' visibility once verified; None takes the source's.
        conflict_policy: ``report``, ``skip``, ``replace`` or ``rename-old`` (a name clash at a
            target).
        idempotency_key: The caller's key for this request, stored with the job.

    Returns:
        The :class:`Submission`: the new jobs (none when every target is already done or under
        way), the live jobs already copying to some targets, and the targets that already hold
        the row (cell ``present``: no work).

    Raises:
        JobRefused: A repo is not the group's or is disabled, the row is unverifiable or no longer
            in the inventory, the source is not active, the source repo is also a target, or an
            option is invalid.
    """
    try:
        policy = ConflictPolicy(conflict_policy)
    except ValueError:
        raise JobRefused(f"Unknown conflict policy {conflict_policy!r}.") from None
    if visibility not in (None, "private", "shared", "community", "public"):
        raise JobRefused(f"Unknown visibility {visibility!r}.")
    targets = _group_repos(group, targets)
    _repos_of(group, [source])
    if not targets:
        raise JobRefused("Name at least one repo to copy to.")
    if source.repo_id in {r.pk for r in targets}:
        raise JobRefused(f"Repo {source.repo.name} holds the source; it cannot also be a target.")
    if source.status != "active":
        raise JobRefused(f"The source image is {source.status}, not active: it cannot be copied.")
    row = _row_of(group, [source])
    if not row.verifiable:
        raise JobRefused(
            f"{row.name} has no content hash: it cannot be verified, so it is never copied."
        )
    present = [
        r.pk for r in targets if row.cells.get(r.pk) and row.cells[r.pk].state == CellState.PRESENT
    ]
    todo = [r for r in targets if r.pk not in present]
    with transaction.atomic():
        _lock_group(group)
        existing = _live_targets(group, states.COPY, row, todo)
        todo = [(r, "") for r in todo if r.pk not in existing]
        jobs = [
            _create(
                group,
                states.COPY,
                requester,
                row,
                site_targets,
                site=site,
                source_repo=source.repo,
                source_image_id=source.image_id,
                options={"visibility": visibility, "conflict_policy": policy.value},
                idempotency_key=idempotency_key,
            )
            for site, site_targets in _by_site(group, todo, source.repo)
        ]
    return Submission(jobs, existing, present)


def submit_delete(
    group: Group,
    *,
    images: Iterable[Image],
    requester: User | None = None,
    force: bool = False,
    idempotency_key: str = "",
) -> Submission:
    """Delete specific copies of one matrix row (``inventory.Image`` rows), as one job (per site).

    The planner has already refused what must not be deleted, against a fresh inventory; right
    before each delete the worker asks the cloud again and refuses a protected image or one the
    repo's project does not own. ``force`` (an admin's choice) is recorded with the job.

    Returns:
        The :class:`Submission` (``existing``: repos whose image a live job is already deleting).

    Raises:
        JobRefused: A repo is not the group's, the images are not of one row, or none was named.
    """
    images = list(images)
    if not images:
        raise JobRefused("Name at least one image to delete.")
    repos = _repos_of(group, images)
    row = _row_of(group, images)
    with transaction.atomic():
        _lock_group(group)
        existing = _live_targets(
            group, states.DELETE, row, repos, [image.image_id for image in images]
        )
        todo = [(image.repo, image.image_id) for image in images if image.repo_id not in existing]
        jobs = [
            _create(
                group,
                states.DELETE,
                requester,
                row,
                site_targets,
                site=site,
                options={"force": bool(force)},
                idempotency_key=idempotency_key,
            )
            for site, site_targets in _by_site(group, todo)
        ]
    return Submission(jobs, existing)


def submit_property_sync(
    group: Group,
    *,
    source: Image,
    copies: Iterable[Image],
    requester: User | None = None,
    idempotency_key: str = "",
) -> Submission:
    """Make the properties of ``copies`` equal to ``source``'s without copying bytes, as one job
    (per site).

    Only the properties the engine carries with a copy are set or removed
    (``glint.replication.sync_properties``).

    Returns:
        The :class:`Submission` (``existing``: repos a live sync of this row already covers).

    Raises:
        JobRefused: A repo is not the group's, the images are not of one row, no copy was named,
            or the source is among the copies.
    """
    copies = list(copies)
    if not copies:
        raise JobRefused("Name at least one copy to bring in line with the source.")
    if any(copy.pk == source.pk for copy in copies):
        raise JobRefused("The source copy cannot also be a target.")
    repos = _repos_of(group, copies)
    _repos_of(group, [source])
    row = _row_of(group, [source, *copies])
    with transaction.atomic():
        _lock_group(group)
        existing = _live_targets(
            group, states.PROPERTY_SYNC, row, repos, [copy.image_id for copy in copies]
        )
        todo = [(copy.repo, copy.image_id) for copy in copies if copy.repo_id not in existing]
        jobs = [
            _create(
                group,
                states.PROPERTY_SYNC,
                requester,
                row,
                site_targets,
                site=site,
                source_repo=source.repo,
                source_image_id=source.image_id,
                idempotency_key=idempotency_key,
            )
            for site, site_targets in _by_site(group, todo, source.repo)
        ]
    return Submission(jobs, existing)


def submit_conversion(
    group: Group,
    row: Row,
    *,
    source: Repo,
    image_id: str,
    disk_format: str,
    requester: User | None = None,
) -> Job:
    """Prepare ``row`` (read from ``image_id`` in ``source``) as a ``disk_format`` file in the
    content cache, for a download in that format; the live job doing it if there is one.

    The job's one target stands for the file (it has no repo).
    """
    with transaction.atomic():
        _lock_group(group)
        live = live_conversion(group, row, disk_format)
        if live is not None:
            return live
        job = _create(
            group,
            states.CONVERT,
            requester,
            row,
            [],
            source_repo=source,
            source_image_id=image_id,
            options={"format": disk_format},
        )
        JobTarget.objects.create(job=job, repo=None, repo_name=f"{disk_format} file")
    return job


def live_conversion(group: Group, row: Row, disk_format: str) -> Job | None:
    """The live job converting ``row`` to ``disk_format``, if any."""
    return (
        Job.objects.live()
        .filter(
            row_key__in=row_keys(group, states.CONVERT, row),
            kind=states.CONVERT,
            options__format=disk_format,
        )
        .first()
    )


# Acting on a job


def cancel(job: Job, user: User | None) -> Job:
    """Stop a job: a queued job is cancelled at once, a running one within about a second.

    The worker stops the engine (which deletes what it was writing) and deletes the images
    recorded for targets that are not done, so nothing half-made stays in any cloud. Targets
    already done keep their verified copies, and a job whose every target was done before the
    cancel reached it ends done. A job waiting for an automatic retry is cancelled the same way.

    Returns:
        The job, reloaded.

    Raises:
        JobRefused: The job has already ended (code ``state``).
    """
    now = timezone.now()
    if not Job.objects.filter(pk=job.pk).live().exists():
        raise JobRefused(f"Job {job.pk} has already ended ({job.state}).", code="state")
    Job.objects.filter(pk=job.pk, cancel_requested__isnull=True).update(cancel_requested=now)
    # Nothing was ever created for a job that never ran: cancel it here. Otherwise the worker
    # (running it now, or claiming it next) cleans up and writes the final state.
    never_ran = ~Q(targets__image_id__gt="") if job.kind in (states.COPY, states.UPLOAD) else Q()
    if Job.objects.filter(pk=job.pk, state=states.QUEUED).filter(never_ran).exists():
        with transaction.atomic():
            if Job.objects.filter(pk=job.pk, state=states.QUEUED).update(
                state=states.CANCELLED,
                finished=now,
                next_attempt_at=None,
                error_code="cancelled",
                error="Cancelled before it started.",
            ):
                job.targets.exclude(state=states.TargetState.DONE.value).update(
                    state=states.TargetState.CANCELLED.value, finished=now, next_attempt_at=None
                )
    elif job.state in (states.PARTIAL, states.FAILED):
        # Waiting for an automatic retry: hand it to a worker now, which sees the cancel.
        Job.objects.filter(pk=job.pk, state=job.state).update(
            state=states.QUEUED, next_attempt_at=None
        )
        transaction.on_commit(lambda: _notify(job.pk))
    else:
        transaction.on_commit(lambda: _notify(job.pk))
        transaction.on_commit(lambda: _cancel_here(job.pk))
    audit.record(
        "job.cancel", user=user, group=job.group, image=job.image_name, details={"job": job.pk}
    )
    job.refresh_from_db()
    return job


def retry(job: Job, user: User | None) -> Job:
    """Run a partial, failed or cancelled job again; only the targets that are not done are redone.

    Each such target starts over at attempt 0 (so automatic retries apply again); its recorded
    image, if any, is checked by the engine (kept if it is a verified copy, deleted otherwise).

    Returns:
        The job, reloaded (queued).

    Raises:
        JobRefused: The job is still queued or running, or every target is done (code ``state``).
    """
    allowed = (states.PARTIAL, states.FAILED, states.CANCELLED)
    with transaction.atomic():
        updated = Job.objects.filter(pk=job.pk, state__in=allowed).update(
            state=states.QUEUED,
            next_attempt_at=None,
            cancel_requested=None,
            finished=None,
            error_code="",
            error="",
            lease_owner="",
            lease_expires=None,
        )
        if not updated:
            job.refresh_from_db()
            raise JobRefused(
                f"Job {job.pk} is {job.state}: only partial, failed or cancelled jobs are retried.",
                code="state",
            )
        job.targets.exclude(state=states.TargetState.DONE.value).update(
            state=states.TargetState.PENDING.value,
            attempts=0,
            next_attempt_at=None,
            error_code="",
            error="",
            bytes_done=0,
            rate=None,
            finished=None,
        )
        audit.record(
            "job.retry", user=user, group=job.group, image=job.image_name, details={"job": job.pk}
        )
        transaction.on_commit(lambda: _notify(job.pk))
    job.refresh_from_db()
    return job


# The cluster


@dataclasses.dataclass(frozen=True)
class WorkerStatus:
    """A job runner as the cluster page shows it: its row, whether it is alive, and its jobs."""

    worker: Worker
    alive: bool
    running: list[Job]


def _gone_before() -> datetime.datetime:
    """A runner last heard of before this is gone (three heartbeats missed)."""
    return timezone.now() - datetime.timedelta(seconds=3 * HEARTBEAT_SECONDS)


def workers_with_jobs() -> list[WorkerStatus]:
    """Every job runner that has sent a heartbeat, alive ones first, with the jobs it runs."""
    gone = _gone_before()
    found = [
        WorkerStatus(w, w.last_seen >= gone, list(w.running_jobs().order_by("pk")))
        for w in Worker.objects.all()
    ]
    return sorted(found, key=lambda s: (not s.alive, s.worker.name))


def no_site_worker(job: Job) -> bool:
    """Whether ``job`` waits for a worker of its site and no runner that takes that site's jobs
    is alive (so it cannot start until one is: the job page says which ``glint worker`` to start).
    """
    if not job.site or job.state != states.QUEUED:
        return False
    alive = Worker.objects.filter(last_seen__gte=_gone_before())
    return not any(w.kind == "embedded" or job.site in w.sites for w in alive)
