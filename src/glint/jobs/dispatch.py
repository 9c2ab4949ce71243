"""Runners: what turns queued job rows into work. The DB row is the truth; a message is a job id.

:class:`JobRunner` is the interface. Services call :func:`notify` after a job row is committed;
the runner of this process (if any) is told the job id and nothing else. ``GLINT_JOB_RUNNER``
picks the runner :func:`start_runner` starts:

- ``embedded`` (the default): :class:`EmbeddedRunner`, below, runs the jobs in ``glint serve``.
- ``celery``: :class:`CeleryRunner` only sends the job id to the broker; ``glint worker``
  processes (``glint.jobs.celery``) claim and run the jobs, with the same ``execution.claim`` and
  ``execution.run_claimed`` as the embedded threads, so the engine never notices the difference.

:class:`EmbeddedRunner` (``glint serve``) is a bounded thread pool (``GLINT_JOB_WORKERS``) fed by
one dispatcher thread. Each tick the dispatcher

1. re-queues jobs whose lease expired (their worker died: ``reconcile.sweep_expired_leases``),
2. claims claimable jobs (queued, or with an automatic retry due) up to its free workers,
   oldest first, skipping any that would exceed the per-target-repo or per-source-repo limits
   (``GLINT_JOB_PER_REPO_LIMIT``, ``GLINT_JOB_PER_SOURCE_LIMIT``); a job being cancelled is taken
   regardless of limits, so its clean-up is never stuck behind other work,
3. hands each claimed job to the pool.

Because claims are compare-and-set on the row, and the limits are checked and the claims made in
one :func:`execution.serialized_claims` transaction, several processes can share one database
without two of them taking a repo's last free slot; after a restart, queued jobs and jobs whose
lease expired are simply claimed again. A second, slow thread runs the orphan reconciler
(``reconcile.remove_orphans``).
"""

from __future__ import annotations

import abc
import logging
import os
import socket
import threading
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import F

from glint.config import redact_url
from glint.jobs import execution, reconcile, states
from glint.jobs.models import Job, JobTarget

__all__ = ["CeleryRunner", "EmbeddedRunner", "JobRunner", "OverLimits", "claim_one", "notify", "start_runner",
           "stop_runner", "within_limits", "worker_owner"]

log = logging.getLogger(__name__)

#: Longest the dispatcher sleeps between looks at the queue (a notify wakes it at once).
TICK_SECONDS = 1.0
#: Seconds between orphan reconciler rounds (the first runs shortly after start).
ORPHAN_INTERVAL = 300.0
ORPHAN_FIRST_DELAY = 30.0
#: Claimable jobs looked at per free worker in one tick (the rest may be over their limits).
CANDIDATES_PER_SLOT = 10


def worker_owner() -> str:
    """A lease owner name no other worker uses: host, process, and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def within_limits(candidates: list[Job], free: int, per_repo: int, per_source: int) -> list[Job]:
    """The first ``free`` of ``candidates`` (in the order given) that fit the concurrency limits.

    A job fits when starting it keeps every repo it reads from under ``per_source`` running jobs
    and every repo it still has to write to under ``per_repo``, counting the jobs running now (in
    any process: the rows say) and those picked before it. A job being cancelled always fits, so
    its clean-up is never stuck behind other work. Three queries.
    """
    busy_sources = Counter(Job.objects.filter(state=states.RUNNING).exclude(source_repo=None)
                           .values_list("source_repo_id", flat=True))
    busy_targets = Counter(JobTarget.objects.filter(job__state=states.RUNNING)
                           .exclude(state__in=states.TARGET_FINAL_STATES).values_list("repo_id", flat=True))
    repos_of: dict[int, set[int]] = {}
    for job_id, repo_id in (JobTarget.objects.filter(job__in=[j.pk for j in candidates]).exclude(
            state=states.TargetState.DONE.value).values_list("job_id", "repo_id")):
        repos_of.setdefault(job_id, set()).add(repo_id)
    picked = []
    for job in candidates:
        targets = repos_of.get(job.pk, set())
        if job.cancel_requested is None:
            if job.source_repo_id and busy_sources[job.source_repo_id] >= per_source:
                continue
            if any(busy_targets[repo] >= per_repo for repo in targets):
                continue
        picked.append(job)
        busy_sources[job.source_repo_id] += 1
        busy_targets.update(targets)
        if len(picked) >= free:
            break
    return picked


class OverLimits(Exception):
    """The job is claimable but would take a repo past its concurrency limit: try later."""


def claim_one(job_id: int, owner: str) -> bool:
    """Claim job ``job_id`` for ``owner`` if it is claimable and fits the limits (a runner that
    is handed one job id: ``glint worker``). Returns whether ``owner`` now holds it; False when
    the job is not claimable or another worker won it.

    Raises:
        OverLimits: it is claimable, but running it now would exceed a limit.
    """
    with execution.serialized_claims():
        job = Job.objects.filter(execution.claimable(), pk=job_id).first()
        if job is None:
            return False
        if not within_limits([job], 1, settings.GLINT_JOB_PER_REPO_LIMIT, settings.GLINT_JOB_PER_SOURCE_LIMIT):
            raise OverLimits(f"job {job_id} would exceed a repo's concurrency limit")
        return execution.claim(job, owner)


class JobRunner(abc.ABC):
    """How jobs get executed.

    Implementations receive job ids only and read everything else from the database, so a
    message never carries a secret and a lost message loses nothing (the row is still queued).
    """

    @abc.abstractmethod
    def submit(self, job_id: int) -> None:
        """A job was committed (queued, retried or cancelled): act on it soon."""

    @abc.abstractmethod
    def start(self) -> None:
        """Begin taking jobs; returns at once."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop taking jobs. Running jobs are abandoned to their lease (swept later)."""


class EmbeddedRunner(JobRunner):
    """Runs jobs in this process: a dispatcher thread, a thread pool, an orphan reconciler."""

    def __init__(self, workers: int, per_repo: int, per_source: int):
        self.workers, self.per_repo, self.per_source = workers, per_repo, per_source
        self.owner = worker_owner()
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="glint-job")
        self.running: dict[int, Future] = {}
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._dispatch_loop, name="glint-jobs", daemon=True),
            threading.Thread(target=self._reconcile_loop, name="glint-orphans", daemon=True),
        ]

    def submit(self, job_id: int) -> None:
        self.wake.set()

    def start(self) -> None:
        for thread in self.threads:
            thread.start()
        log.info("job runner %s started with %d workers", self.owner, self.workers)

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self.wake.set()
        for thread in self.threads:
            thread.join(timeout)
        self.pool.shutdown(wait=False, cancel_futures=True)

    # The dispatcher

    def _dispatch_loop(self) -> None:
        try:
            while not self.stopping.is_set():
                close_old_connections()
                try:
                    self.tick()
                except Exception:  # a database hiccup must not end job processing for good
                    log.exception("job dispatcher round failed; retrying")
                self.wake.wait(TICK_SECONDS)
                self.wake.clear()
        finally:
            connection.close()

    def tick(self) -> list[int]:
        """One round: sweep, claim, start. Returns the ids of the jobs started."""
        self.running = {pk: f for pk, f in self.running.items() if not f.done()}
        reconcile.sweep_expired_leases()
        free = self.workers - len(self.running)
        if free <= 0:
            return []
        with execution.serialized_claims():
            claimed = [job.pk for job in self._pick(free) if execution.claim(job, self.owner)]
        for job_id in claimed:
            self.running[job_id] = self.pool.submit(self._run, job_id)
        return claimed

    def _pick(self, free: int) -> list[Job]:
        """Claimable jobs, oldest first, that fit the concurrency limits (four queries)."""
        candidates = list(Job.objects.filter(execution.claimable()).exclude(pk__in=list(self.running))
                          .order_by(F("cancel_requested").asc(nulls_last=True), "created", "pk")[: free * CANDIDATES_PER_SLOT])
        return within_limits(candidates, free, self.per_repo, self.per_source)

    def _run(self, job_id: int) -> None:
        try:
            execution.run_claimed(job_id, self.owner)
        except Exception:  # the lease expires and the sweeper re-queues the job
            log.exception("job %s: worker failed", job_id)
        finally:
            connection.close()
            self.wake.set()  # a worker is free again

    # The orphan reconciler

    def _reconcile_loop(self) -> None:
        delay = ORPHAN_FIRST_DELAY
        while not self.stopping.wait(delay):
            delay = ORPHAN_INTERVAL
            close_old_connections()
            try:
                reconcile.remove_orphans()
            except Exception:
                log.exception("orphan reconciler round failed")
            finally:
                connection.close()


class CeleryRunner(JobRunner):
    """Sends job ids to the Celery broker; ``glint worker`` processes run the jobs.

    This process runs no job, no lease sweeper and no orphan reconciler: the workers' beat does
    (``glint.jobs.celery``). A message that cannot be sent (the broker is down) is logged, not
    raised: the job row is committed and stays queued, and the workers' periodic re-send finds it.
    """

    def __init__(self):
        from glint.jobs import celery  # without Celery installed, glint serve stops here

        self.celery = celery

    def submit(self, job_id: int) -> None:
        try:
            self.celery.send_job(job_id)
        except self.celery.BrokerUnavailable as exc:
            log.warning("job %s: not sent to the broker (%s); a worker's periodic re-send will pick it up",
                        job_id, type(exc).__name__)

    def start(self) -> None:
        log.info("job runner: celery (jobs go to glint worker processes through the broker %s)",
                 redact_url(settings.GLINT_BROKER_URL))

    def stop(self) -> None:
        """Nothing to stop: the jobs run elsewhere."""


_runner: JobRunner | None = None
_runner_lock = threading.Lock()


def _new_runner() -> JobRunner:
    if settings.GLINT_JOB_RUNNER == "celery":
        return CeleryRunner()
    return EmbeddedRunner(settings.GLINT_JOB_WORKERS, settings.GLINT_JOB_PER_REPO_LIMIT,
                          settings.GLINT_JOB_PER_SOURCE_LIMIT)


def start_runner() -> JobRunner:
    """Start this process's runner, as ``GLINT_JOB_RUNNER`` says (idempotent); ``glint serve`` calls it."""
    global _runner
    with _runner_lock:
        if _runner is None:
            _runner = _new_runner()
            _runner.start()
        return _runner


def stop_runner() -> None:
    """Stop this process's runner, if it has one."""
    global _runner
    with _runner_lock:
        runner, _runner = _runner, None
    if runner is not None:
        runner.stop()


def notify(job_id: int) -> None:
    """Tell this process's runner about a committed job; without one, a runner elsewhere finds
    the row on its next tick."""
    runner = _runner
    if runner is not None:
        runner.submit(job_id)
