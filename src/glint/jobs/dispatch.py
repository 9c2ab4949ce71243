"""Dispatch: what turns queued job rows into work. The DB row is the truth; a message is a job id.

:class:`Dispatcher` is the interface. Services call :func:`notify` after a job row is committed;
the dispatcher of this process (if any) is told the job id and nothing else. ``GLINT_JOB_RUNNER``
picks the dispatcher :func:`start_dispatcher` starts:

- ``embedded`` (the default): :class:`EmbeddedDispatcher`, below, runs the jobs in ``glint serve``.
- ``celery``: :class:`CeleryDispatcher` only sends the job id to the broker; ``glint worker``
  processes (``glint.jobs.celery``) claim and run the jobs, with the same ``claims.claim`` and
  ``execution.run_claimed`` as the embedded threads, so the engine never notices the difference.

:class:`EmbeddedDispatcher` (``glint serve``) is a bounded thread pool (``GLINT_JOB_WORKERS``)
fed by one dispatcher thread. Each tick the dispatcher

1. re-queues jobs whose lease expired (their worker died: ``reconcile.sweep_expired_leases``),
2. claims claimable jobs (queued, or with an automatic retry due) up to its free workers,
   oldest first, skipping any that would exceed the per-target-repo or per-source-repo limits
   (``GLINT_JOB_PER_REPO_LIMIT``, ``GLINT_JOB_PER_SOURCE_LIMIT``); a job being cancelled is taken
   regardless of limits, so its clean-up is never stuck behind other work,
3. hands each claimed job to the pool.

Because claims are compare-and-set on the row, and the limits are checked and the claims made in
one :func:`claims.serialized_claims` transaction, several processes can share one database
without two of them taking a repo's last free slot; after a restart, queued jobs and jobs whose
lease expired are simply claimed again. A second, slow thread runs the orphan reconciler
(``reconcile.remove_orphans``).
"""

from __future__ import annotations

import abc
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import F

from glint.config import redact_url
from glint.jobs import claims, execution, reconcile
from glint.jobs.heartbeat import Heartbeat
from glint.jobs.models import Job

__all__ = [
    "CeleryDispatcher",
    "Dispatcher",
    "EmbeddedDispatcher",
    "notify",
    "start_dispatcher",
    "stop_dispatcher",
]

log = logging.getLogger(__name__)

#: Longest the dispatcher sleeps between looks at the queue (a notify wakes it at once).
TICK_SECONDS = 1.0
#: Seconds before the first orphan reconciler round (later rounds: ``reconcile.ORPHAN_INTERVAL``).
ORPHAN_FIRST_DELAY = 30.0
#: Claimable jobs looked at per free worker in one tick (the rest may be over their limits).
CANDIDATES_PER_SLOT = 10


class Dispatcher(abc.ABC):
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


class EmbeddedDispatcher(Dispatcher):
    """Runs jobs in this process: a dispatcher thread, a thread pool, an orphan reconciler."""

    def __init__(self, workers: int, per_repo: int, per_source: int):
        self.workers, self.per_repo, self.per_source = workers, per_repo, per_source
        self.owner = claims.worker_owner()
        self.heartbeat = Heartbeat("embedded")
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
        self.heartbeat.start()
        log.info("job dispatcher %s started with %d workers", self.owner, self.workers)

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self.wake.set()
        for thread in self.threads:
            thread.join(timeout)
        self.heartbeat.stop(timeout)
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
        with claims.serialized_claims():
            claimed = [job.pk for job in self._pick(free) if claims.claim(job, self.owner)]
        for job_id in claimed:
            self.running[job_id] = self.pool.submit(self._run, job_id)
        return claimed

    def _pick(self, free: int) -> list[Job]:
        """Claimable jobs, oldest first, that fit the concurrency limits (four queries)."""
        candidates = list(
            Job.objects.filter(claims.claimable())
            .exclude(pk__in=list(self.running))
            .order_by(F("cancel_requested").asc(nulls_last=True), "created", "pk")[
                : free * CANDIDATES_PER_SLOT
            ]
        )
        return claims.within_limits(candidates, free, self.per_repo, self.per_source)

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
            delay = reconcile.ORPHAN_INTERVAL
            close_old_connections()
            try:
                reconcile.remove_orphans()
            except Exception:
                log.exception("orphan reconciler round failed")
            finally:
                connection.close()


class CeleryDispatcher(Dispatcher):
    """Sends job ids to the Celery broker; ``glint worker`` processes run the jobs.

    This process runs no job, no lease sweeper and no orphan reconciler: the workers' beat does
    (``glint.jobs.celery``). A message that cannot be sent (the broker is down) is logged, not
    raised: the job row is committed and stays queued, and the workers' periodic re-send finds it.
    """

    def __init__(self):
        from glint.jobs import (
            celery,  # without Celery installed, glint serve stops here
        )

        self.celery = celery

    def submit(self, job_id: int) -> None:
        try:
            self.celery.send_job(job_id)
        except self.celery.BrokerUnavailable as exc:
            log.warning(
                "job %s: not sent to the broker (%s); a worker's periodic re-send will pick it up",
                job_id,
                type(exc).__name__,
            )

    def start(self) -> None:
        log.info(
            "job dispatcher: celery (jobs go to glint worker processes through the broker %s)",
            redact_url(settings.GLINT_BROKER_URL),
        )

    def stop(self) -> None:
        """Nothing to stop: the jobs run elsewhere."""


_dispatcher: Dispatcher | None = None
_dispatcher_lock = threading.Lock()


def _new_dispatcher() -> Dispatcher:
    if settings.GLINT_JOB_RUNNER == "celery":
        return CeleryDispatcher()
    return EmbeddedDispatcher(
        settings.GLINT_JOB_WORKERS,
        settings.GLINT_JOB_PER_REPO_LIMIT,
        settings.GLINT_JOB_PER_SOURCE_LIMIT,
    )


def start_dispatcher() -> Dispatcher:
    """Start this process's dispatcher, as ``GLINT_JOB_RUNNER`` says (idempotent); ``glint serve``
    calls it."""
    global _dispatcher
    with _dispatcher_lock:
        if _dispatcher is None:
            _dispatcher = _new_dispatcher()
            _dispatcher.start()
        return _dispatcher


def stop_dispatcher() -> None:
    """Stop this process's dispatcher, if it has one."""
    global _dispatcher
    with _dispatcher_lock:
        dispatcher, _dispatcher = _dispatcher, None
    if dispatcher is not None:
        dispatcher.stop()


def notify(job_id: int) -> None:
    """Tell this process's dispatcher about a committed job; without one, a dispatcher elsewhere
    finds the row on its next tick."""
    dispatcher = _dispatcher
    if dispatcher is not None:
        dispatcher.submit(job_id)
