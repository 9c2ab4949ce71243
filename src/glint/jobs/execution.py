"""Carry out one claimed job, from its claim to its next resting state.

Whichever dispatcher calls it (the embedded thread pool of ``glint serve``, a Celery task of
``glint worker``), the protocol is the same and needs nothing but the job id: claim the job
(``glint.jobs.claims``: compare-and-set on its row, which takes the lease), then
:func:`run_claimed` it. While it runs, a :class:`LeaseKeeper` thread renews the lease and watches
for a cancel; the job's kind (``glint.jobs.kinds``) does the work, and the engine's hooks write
the targets' states and throttled progress (``glint.jobs.runners``); at the end the job's state
is derived from its targets, automatic retries are scheduled for transient failures, the repos
involved are polled again, and a job that comes to rest is audited (``job.end``, in the
requester's name: a worker thread has no request).

Every final write is conditional on still holding the lease, so a worker that stalled past its
lease (and whose job the sweeper handed to another worker) never overwrites the newer run.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import F
from django.utils import timezone

from glint import audit
from glint.errors import internal_error_message
from glint.inventory.poller import request_refresh
from glint.jobs import states
from glint.jobs.heartbeat import worker_name
from glint.jobs.kinds import run_kind
from glint.jobs.models import Job, JobTarget
from glint.jobs.runners import discard_unfinished, fail_target
from glint.logs import job_context
from glint.replication import TargetState, UnexpectedError

__all__ = ["LeaseKeeper", "cancel_here", "run_claimed"]

log = logging.getLogger(__name__)

#: Seconds between looks at the job row for a cancel (also how often the lease is considered).
CANCEL_POLL_SECONDS = 1.0

_PENDING, _WRITING, _VERIFYING = (
    TargetState.PENDING.value,
    TargetState.WRITING.value,
    TargetState.VERIFYING.value,
)
_DONE, _FAILED = TargetState.DONE.value, TargetState.FAILED.value


# The lease

#: The lease keepers of the jobs this process runs now, by job id (see :func:`cancel_here`).
_keepers: dict[int, LeaseKeeper] = {}
_keepers_lock = threading.Lock()


def cancel_here(job_id: int) -> bool:
    """Stop job ``job_id`` now if this process runs it (a cancel made in this process, after
    commit); whether it does. A job running elsewhere sees the cancel at its next look at the
    row, within :data:`CANCEL_POLL_SECONDS`."""
    with _keepers_lock:
        keeper = _keepers.get(job_id)
    if keeper is None:
        return False
    keeper.cancel.set()
    return True


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
                    if not Job.objects.filter(
                        pk=self.job_id, lease_owner=self.owner, state=states.RUNNING
                    ).update(lease_expires=expires):
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


# One run


def _job_state(targets: list[JobTarget], cancelled: bool) -> str:
    # A cancel that lands after every target is done has nothing left to stop: the job is done.
    if all(t.state == _DONE for t in targets):
        return states.DONE
    if cancelled:
        return states.CANCELLED
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
    repos = [job.source_repo_id, *(t.repo_id for t in targets)]
    with job_context(job.pk, job.requester_dn, repos):
        return _run(job, targets, owner, stream)


def _run(job: Job, targets: list[JobTarget], owner: str, stream) -> str | None:
    # Redo what is not done: pending or interrupted targets, and failed ones whose automatic
    # retry is due (a person's Retry turned failed targets back into pending ones).
    todo = [
        t
        for t in targets
        if t.state in (_PENDING, _WRITING, _VERIFYING)
        or (t.state == _FAILED and t.next_attempt_at is not None)
    ]
    keeper = LeaseKeeper(job.pk, owner)
    keeper.start()
    with _keepers_lock:
        _keepers[job.pk] = keeper
    try:
        if job.cancel_requested is None and todo:
            now = timezone.now()
            JobTarget.objects.filter(pk__in=[t.pk for t in todo]).update(
                state=_PENDING,
                attempts=F("attempts") + 1,
                started=now,
                ran_by=worker_name(),
                finished=None,
                next_attempt_at=None,
                bytes_done=0,
                rate=None,
                error_code="",
                error="",
            )
            for target in todo:
                target.state, target.attempts, target.next_attempt_at = (
                    _PENDING,
                    target.attempts + 1,
                    None,
                )
            try:
                run_kind(job, todo, keeper.cancel, stream=stream)
            except Exception as exc:
                log.exception("job %s failed unexpectedly", job.pk)
                error = UnexpectedError(internal_error_message(exc))
                for target in todo:
                    if target.state not in states.TARGET_FINAL_STATES:
                        fail_target(target, error)
    finally:
        with _keepers_lock:
            _keepers.pop(job.pk, None)
        keeper.stop()
    if keeper.lost.is_set():
        log.warning("job %s: lease lost to another worker; leaving the job to it", job.pk)
        return None
    cancelled = Job.objects.filter(pk=job.pk, cancel_requested__isnull=False).exists()
    if cancelled:
        discard_unfinished(job, targets)
    return _finish(job, owner, targets, cancelled)


def _finish(job: Job, owner: str, targets: list[JobTarget], cancel_requested: bool) -> str | None:
    state = _job_state(targets, cancel_requested)
    cancelled = state == states.CANCELLED  # not when the cancel came after every target's end
    failed = [t for t in targets if t.state == _FAILED]
    retry_at = (
        None
        if cancelled
        else min((t.next_attempt_at for t in failed if t.next_attempt_at), default=None)
    )
    first = failed[0] if failed else None
    values = {
        "state": state,
        "finished": timezone.now(),
        "next_attempt_at": retry_at,
        "lease_owner": "",
        "lease_expires": None,
        "error_code": "cancelled" if cancelled else (first.error_code if first else ""),
        "error": "Cancelled."
        if cancelled
        else (f"{first.repo_name}: {first.error}" if first else ""),
    }
    if not Job.objects.filter(pk=job.pk, lease_owner=owner, state=states.RUNNING).update(**values):
        return None
    repos = {t.repo_id for t in targets if t.repo_id} | (
        {job.source_repo_id} if job.source_repo_id else set()
    )
    request_refresh(repos)
    if retry_at is None:  # the job has come to rest (not waiting for an automatic retry)
        audit.record(
            "job.end",
            outcome=audit.OK if state in (states.DONE, states.CANCELLED) else audit.FAILED,
            user=job.requester,
            dn=job.requester_dn,
            group=job.group,
            image=job.image_name,
            details={"job": job.pk, "kind": job.kind, "state": state, "error": values["error"]},
        )
    log.info(
        "job %s %s: %s%s",
        job.pk,
        job.kind,
        state,
        f", retrying at {retry_at:%H:%M:%S}" if retry_at else "",
    )
    return state
