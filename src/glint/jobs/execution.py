"""Carry out one job: the adapter between the job rows and the replication engine.

Whatever runner calls it (the embedded thread pool now, a Celery task later), the protocol is
the same and needs nothing but the job id: :func:`claim` the job (compare-and-set on its row,
which takes the lease), then :func:`run_claimed` it. While it runs, a :class:`LeaseKeeper`
thread renews the lease and watches for a cancel; the engine's hooks write the targets' states
and throttled progress; at the end the job's state is derived from its targets, automatic
retries are scheduled for transient failures, the repos involved are polled again, and a job that
comes to rest is audited (``job.end``, in the requester's name: a worker thread has no request).

Every final write is conditional on still holding the lease, so a worker that stalled past its
lease (and whose job the sweeper handed to another worker) never overwrites the newer run.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from glint import audit
from glint.clouds import CloudError, NotFound, get_driver
from glint.inventory.poller import request_refresh
from glint.jobs import states
from glint.jobs.models import Job, JobTarget
from glint.jobs.targets import (
    InternalError,
    TargetWriter,
    content_cache,
    fail_target,
    fail_targets,
    open_copy_targets,
    record_outcomes,
    save_target,
)
from glint.replication import CopySource, TargetState, copy_image, sync_properties

__all__ = ["LeaseKeeper", "claim", "claimable", "register_runner", "run_claimed", "serialized_claims"]

log = logging.getLogger(__name__)

#: Key of the PostgreSQL advisory lock taken by :func:`serialized_claims` ("glint" in ASCII).
CLAIM_LOCK_KEY = 0x676C696E74

#: Seconds between looks at the job row for a cancel (also how often the lease is considered).
CANCEL_POLL_SECONDS = 1.0

_PENDING, _WRITING, _VERIFYING = TargetState.PENDING.value, TargetState.WRITING.value, TargetState.VERIFYING.value
_DONE, _FAILED, _CANCELLED = TargetState.DONE.value, TargetState.FAILED.value, TargetState.CANCELLED.value


class ImageProtected(CloudError):
    """The image to delete turned out to be protected when the worker asked the cloud."""

    code = "protected"


class NotOwned(CloudError):
    """The image to delete turned out to belong to another project."""

    code = "not_owned"


# Claiming and the lease


@contextlib.contextmanager
def serialized_claims():
    """One transaction in which a worker checks the concurrency limits and claims: workers in
    other processes (``glint worker``, a second ``glint serve``) wait at its start until it
    commits, so two of them never both see a repo's last free slot and both take it. Claim
    inside, start the jobs after it: the claims are only visible once it commits.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing more is needed, as every
    transaction begins IMMEDIATE there (settings.py) and so holds the database's one write lock.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK_KEY])
        yield


def claim(job: Job, owner: str) -> bool:
    """Take ``job`` for ``owner`` if it is still claimable in the state it was read in.

    A queued job is claimable; so is a partial or failed job whose automatic retry is due.
    Returns whether this caller won (another worker may have claimed it first).
    """
    now = timezone.now()
    query = Job.objects.filter(pk=job.pk, state=job.state)
    if job.state != states.QUEUED:
        query = query.filter(state__in=(states.PARTIAL, states.FAILED), next_attempt_at__lte=now)
    return bool(query.update(
        state=states.RUNNING, lease_owner=owner,
        lease_expires=now + datetime.timedelta(seconds=settings.GLINT_JOB_LEASE_SECONDS),
        attempts=F("attempts") + 1, started=Coalesce("started", now), finished=None, next_attempt_at=None,
    ))


class LeaseKeeper(threading.Thread):
    """Renews a running job's lease and sets ``cancel`` when a person cancels the job.

    If the lease turns out to be someone else's (this worker stalled past it and the sweeper
    re-queued the job), ``lost`` is set as well as ``cancel``: the engine stops and this worker
    writes nothing more.
    """

    def __init__(self, job_id: int, owner: str):
        super().__init__(name=f"glint-lease-{job_id}", daemon=True)
        self.job_id, self.owner = job_id, owner
        self.cancel = threading.Event()
        self.lost = threading.Event()
        self._stopping = threading.Event()

    def run(self) -> None:
        lease = settings.GLINT_JOB_LEASE_SECONDS
        renewed = time.monotonic()
        try:
            while not self._stopping.wait(CANCEL_POLL_SECONDS):
                if time.monotonic() - renewed >= lease / 3:
                    expires = timezone.now() + datetime.timedelta(seconds=lease)
                    if not Job.objects.filter(pk=self.job_id, lease_owner=self.owner, state=states.RUNNING).update(
                            lease_expires=expires):
                        self.lost.set()
                        self.cancel.set()
                        return
                    renewed = time.monotonic()
                if Job.objects.filter(pk=self.job_id, cancel_requested__isnull=False).exists():
                    self.cancel.set()
        except Exception:  # a database hiccup: the next renewal (or the sweeper) settles it
            log.exception("lease keeper of job %s failed", self.job_id)
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopping.set()
        self.join()


# The kinds of job


def _run_copy(job: Job, todo: list[JobTarget], cancel: threading.Event) -> None:
    if job.source_repo is None:
        fail_targets(todo, CloudError("the source repo was removed"))
        return
    options = job.options or {}
    by_key = {str(t.pk): t for t in todo}
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(get_driver(job.source_repo.connection()))
        targets = open_copy_targets(todo, stack, visibility=options.get("visibility"), options=options)
        if not targets:
            return
        result = copy_image(CopySource(source, job.source_image_id, repo_ref=str(job.source_repo.pk)), targets,
                            cache=content_cache(), observer=TargetWriter(by_key), cancel=cancel)
    if result.sha256 and not job.sha256:
        Job.objects.filter(pk=job.pk).update(sha256=result.sha256)
    record_outcomes(by_key, result)


def _project_id(driver, repo) -> str:
    inventory = getattr(repo, "inventory", None)
    if inventory is not None and inventory.project_id:
        return inventory.project_id
    return driver.check().project_id


def _for_each_target(todo: list[JobTarget], cancel: threading.Event, work) -> None:
    """Run ``work(target, cloud)`` on each target's cloud until cancelled.

    A target whose repo was removed, or whose cloud raises, fails on its own; the others go on.
    """
    for target in todo:
        if cancel.is_set():
            return
        if target.repo is None:
            fail_target(target, CloudError("the repo was removed"))
            continue
        try:
            with get_driver(target.repo.connection()) as cloud:
                save_target(target, state=_WRITING)
                work(target, cloud)
        except CloudError as exc:
            fail_target(target, exc)


def _delete_one(target: JobTarget, cloud) -> None:
    try:
        record = cloud.get_image(target.image_id)
    except NotFound:
        save_target(target, state=_DONE, outcome="gone", finished=timezone.now(), error_code="", error="")
        return
    # The planner judged an inventory; the cloud may have changed since.
    if record.protected:
        fail_target(target, ImageProtected(
            f"image {record.id} is protected in {target.repo_name}: not deleted"))
        return
    if record.owner != _project_id(cloud, target.repo):
        fail_target(target, NotOwned(
            f"image {record.id} belongs to another project, not {target.repo_name}'s: not deleted"))
        return
    cloud.delete(target.image_id)
    save_target(target, state=_VERIFYING)
    try:
        cloud.get_image(target.image_id)
    except NotFound:
        save_target(target, state=_DONE, outcome="deleted", finished=timezone.now(), error_code="", error="")
    else:
        fail_target(target, CloudError(f"image {target.image_id} is still listed after delete"))


def _run_delete(job: Job, todo: list[JobTarget], cancel: threading.Event) -> None:
    _for_each_target(todo, cancel, _delete_one)


def _run_property_sync(job: Job, todo: list[JobTarget], cancel: threading.Event) -> None:
    if job.source_repo is None:
        fail_targets(todo, CloudError("the source repo was removed"))
        return
    try:
        with get_driver(job.source_repo.connection()) as source:
            record = source.get_image(job.source_image_id)
    except CloudError as exc:
        fail_targets(todo, exc)
        return

    def sync_one(target: JobTarget, cloud) -> None:
        result = sync_properties(record, cloud, target.image_id)
        save_target(target, state=_DONE, outcome="synced" if result.changed else "unchanged",
              warnings=list(result.warnings), finished=timezone.now(), error_code="", error="")

    _for_each_target(todo, cancel, sync_one)


_RUNNERS = {states.COPY: _run_copy, states.DELETE: _run_delete, states.PROPERTY_SYNC: _run_property_sync}


def register_runner(kind: str, runner) -> None:
    """Let another app carry out jobs of its own ``kind``.

    ``runner(job, todo, cancel)`` is called with the lease held, for the targets to (re)do; it
    records each one with the functions of :mod:`glint.jobs.targets`, and everything else
    (claim, lease, cancel, retries, the job's final state, the audit) stays here.
    """
    _RUNNERS.setdefault(kind, runner)


def _clean_up_cancelled(job: Job, targets: list[JobTarget]) -> None:
    """Delete what a cancelled copy recorded at targets that are not done, then mark them."""
    for target in targets:
        if target.state == _DONE:
            continue
        if job.kind in (states.COPY, states.UPLOAD) and target.image_id and target.repo is not None:
            try:
                with get_driver(target.repo.connection()) as cloud:
                    with contextlib.suppress(NotFound):
                        cloud.delete(target.image_id)
                save_target(target, image_id="")
            except CloudError as exc:  # the orphan reconciler deletes it later
                log.warning("job %s: could not delete %s in %s: %s", job.pk, target.image_id, target.repo_name, exc)
        save_target(target, state=_CANCELLED, outcome="cancelled", next_attempt_at=None,
              finished=target.finished or timezone.now())


# One run


def _job_state(targets: list[JobTarget], cancelled: bool) -> str:
    if cancelled:
        return states.CANCELLED
    if all(t.state == _DONE for t in targets):
        return states.DONE
    return states.PARTIAL if any(t.state == _DONE for t in targets) else states.FAILED


def run_claimed(job_id: int, owner: str, stream=None) -> str | None:
    """Run a job this worker has claimed, to its next resting state; return that state.

    ``stream`` is handed to the kind's runner as its ``stream`` argument: the bytes arriving
    in the request that claimed the job (an upload's first pass or resume); None elsewhere.

    Returns None when the lease was lost on the way (another worker now owns the job).
    """
    close_old_connections()
    job = Job.objects.select_related("source_repo", "group", "requester").get(pk=job_id)
    targets = list(job.targets.select_related("repo", "repo__inventory"))
    # Redo what is not done: pending or interrupted targets, and failed ones whose automatic
    # retry is due (a person's Retry turned failed targets back into pending ones).
    todo = [t for t in targets if t.state in (_PENDING, _WRITING, _VERIFYING)
            or (t.state == _FAILED and t.next_attempt_at is not None)]
    keeper = LeaseKeeper(job.pk, owner)
    keeper.start()
    try:
        if job.cancel_requested is None and todo:
            now = timezone.now()
            JobTarget.objects.filter(pk__in=[t.pk for t in todo]).update(
                state=_PENDING, attempts=F("attempts") + 1, started=now, finished=None, next_attempt_at=None,
                bytes_done=0, rate=None, error_code="", error="")
            for target in todo:
                target.state, target.attempts, target.next_attempt_at = _PENDING, target.attempts + 1, None
            try:
                extra = {} if stream is None else {"stream": stream}
                _RUNNERS[job.kind](job, todo, keeper.cancel, **extra)
            except Exception as exc:
                log.exception("job %s failed unexpectedly", job.pk)
                error = InternalError(f"internal error ({type(exc).__name__}); see the server log")
                for target in todo:
                    if target.state not in states.TARGET_FINAL_STATES:
                        fail_target(target, error)
    finally:
        keeper.stop()
    if keeper.lost.is_set():
        log.warning("job %s: lease lost to another worker; leaving the job to it", job.pk)
        return None
    cancelled = Job.objects.filter(pk=job.pk, cancel_requested__isnull=False).exists()
    if cancelled:
        _clean_up_cancelled(job, targets)
    return _finish(job, owner, targets, cancelled)


def _finish(job: Job, owner: str, targets: list[JobTarget], cancelled: bool) -> str | None:
    state = _job_state(targets, cancelled)
    failed = [t for t in targets if t.state == _FAILED]
    retry_at = None if cancelled else min((t.next_attempt_at for t in failed if t.next_attempt_at), default=None)
    first = failed[0] if failed else None
    values = {
        "state": state, "finished": timezone.now(), "next_attempt_at": retry_at, "lease_owner": "",
        "lease_expires": None,
        "error_code": "cancelled" if cancelled else (first.error_code if first else ""),
        "error": "Cancelled." if cancelled else (f"{first.repo_name}: {first.error}" if first else ""),
    }
    if not Job.objects.filter(pk=job.pk, lease_owner=owner, state=states.RUNNING).update(**values):
        return None
    repos = {t.repo_id for t in targets if t.repo_id} | ({job.source_repo_id} if job.source_repo_id else set())
    request_refresh(repos)
    if retry_at is None:  # the job has come to rest (not waiting for an automatic retry)
        audit.record("job.end", outcome=audit.OK if state in (states.DONE, states.CANCELLED) else audit.FAILED,
                     user=job.requester, dn=job.requester_dn, group=job.group, image=job.image_name,
                     details={"job": job.pk, "kind": job.kind, "state": state, "error": values["error"]})
    log.info("job %s %s: %s%s", job.pk, job.kind, state, f", retrying at {retry_at:%H:%M:%S}" if retry_at else "")
    return state


def claimable() -> Q:
    """Jobs a worker may claim now: queued, or waiting for an automatic retry that is due."""
    return Q(state=states.QUEUED) | Q(state__in=(states.PARTIAL, states.FAILED), next_attempt_at__lte=timezone.now())
