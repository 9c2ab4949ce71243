"""The distributed dispatcher: Glint's Celery app, its tasks, its beat schedule (``glint worker``).

With ``GLINT_JOB_RUNNER=celery``, ``glint serve`` only sends job ids (``dispatch.CeleryDispatcher``)
and ``glint worker`` processes, on any number of machines that share the database and the data
directory's credential keys, run the jobs. The DB row stays the truth; a message is a job id and
nothing else (no secret ever travels through the broker), so a lost, late or duplicated message
costs nothing:

- :func:`run_job` claims the job with ``claims.claim_one`` (compare-and-set on the row, in one
  transaction with the limits check that workers take in turn): a job already running, ended,
  or not due yet makes the message a no-op. Over the per-repo or per-source limit
  (``claims.within_limits``, the embedded dispatcher's rule) it lets Celery retry the message after
  :data:`LIMIT_RETRY_SECONDS`. A run that ends waiting for an automatic retry sends the job again
  with that time as its ``eta``.
- A job of a site (``Job.site``, from its repos' sites) goes to that site's queue,
  :func:`site_queue`; ``glint worker --site NAME`` consumes it besides the default queue, and
  claims no other site's job even if a message reaches it. A job of no site goes to the default
  queue, which every worker consumes.
- Messages are acknowledged late (``task_acks_late``), when the task returns, and a worker
  prefetches one at a time, since a job may take an hour.
- Logging stays Glint's (:func:`keep_glint_logging`): a worker's lines are JSON too with
  ``GLINT_LOG_FORMAT=json``, and carry the job they are about.
- Beat (embedded in ``glint worker`` unless ``--no-beat``) runs the repairs that ``glint serve``
  runs itself in embedded mode: :func:`sweep` re-queues jobs whose worker died (lease expired)
  and sends them again; :func:`resend` sends every claimable job now and then, which covers a
  message lost to a broker restart or to a failed send; :func:`remove_orphans` runs the orphan
  reconciler. All three are idempotent, so several workers running beat do no harm.

Import this module only after ``django.setup()`` (``glint worker`` and ``glint serve`` do).
"""

from __future__ import annotations

import datetime
import logging

from celery import Celery
from celery.signals import setup_logging
from django.conf import settings
from kombu.exceptions import OperationalError as BrokerUnavailable

from glint.jobs import claims, execution, reconcile, states
from glint.jobs.heartbeat import worker_sites
from glint.jobs.models import Job

__all__ = [
    "BrokerUnavailable",
    "app",
    "check_broker",
    "remove_orphans",
    "resend",
    "run_job",
    "send_job",
    "site_queue",
    "sweep",
]

log = logging.getLogger(__name__)

#: Seconds before a job over its concurrency limits is looked at again.
LIMIT_RETRY_SECONDS = 5
#: Seconds between re-sends of every claimable job (lost messages, broker restarts).
RESEND_INTERVAL = 60
#: Limit retries of one message: it gives up about when the next re-send brings the job back,
#: so a job that waits long for its repos never has more than a couple of messages going round.
LIMIT_RETRIES = RESEND_INTERVAL // LIMIT_RETRY_SECONDS
#: Seconds between lease sweeps: as often as a lease is renewed, so a dead worker's job waits
#: at most about a third of a lease longer than the lease itself.
SWEEP_INTERVAL = max(1.0, settings.GLINT_JOB_LEASE_SECONDS / 3)
#: Seconds a job's message stays with its worker, unacknowledged, before Redis redelivers it.
VISIBILITY_TIMEOUT = 12 * 3600
#: Tries (and seconds) a send may take while the broker does not answer; a web request waits for it.
SEND_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0.5,
    "interval_step": 0.5,
    "interval_max": 1,
}


def _every(task: str, seconds: float) -> dict:
    """A beat entry whose message expires at the next one, so a busy worker never piles them up."""
    return {"task": task, "schedule": seconds, "options": {"expires": seconds}}


app = Celery("glint")
app.conf.update(
    broker_url=settings.GLINT_BROKER_URL,
    broker_connection_retry_on_startup=True,
    # An unacknowledged message (acks_late: a job still running) is handed to another worker
    # after the visibility timeout; Redis's default hour is shorter than a big transfer. The
    # redelivery would be a no-op (the job's lease is held), but it is noise: make it rare.
    broker_transport_options={
        "socket_connect_timeout": 5,
        "visibility_timeout": VISIBILITY_TIMEOUT,
    },
    task_acks_late=True,
    task_ignore_result=True,
    task_publish_retry_policy=SEND_RETRY_POLICY,
    worker_prefetch_multiplier=1,
    # Interval schedules need no state on disk: beat keeps it in memory.
    beat_scheduler="celery.beat:Scheduler",
    beat_schedule={
        "sweep-expired-leases": _every("glint.jobs.sweep", SWEEP_INTERVAL),
        "resend-claimable-jobs": _every("glint.jobs.resend", RESEND_INTERVAL),
        "remove-orphan-images": _every("glint.jobs.remove_orphans", reconcile.ORPHAN_INTERVAL),
    },
)


@setup_logging.connect
def keep_glint_logging(loglevel=None, **_kwargs) -> None:
    """Left alone, Celery replaces the root logger's handlers with its own plain-text ones, and
    ``glint worker`` would lose ``GLINT_LOG_FORMAT=json``; with a receiver here it configures
    nothing (nor redirects stdout), so the ``LOGGING`` that ``django.setup()`` applied stays, at
    the worker's ``--loglevel``."""
    if loglevel:
        logging.getLogger().setLevel(loglevel)


#: The queue of the jobs of no site; every worker consumes it.
DEFAULT_QUEUE = "celery"


def site_queue(site: str) -> str:
    """The queue of ``site``'s jobs (the default queue for no site)."""
    return f"glint.site.{site}" if site else DEFAULT_QUEUE


def send_job(job_id: int, eta: datetime.datetime | None = None, site: str | None = None) -> None:
    """Send ``job_id`` to the workers of its site (at ``eta``, if given).

    Args:
        site: The job's site, when the caller has read it; None reads it from the job's row.

    Raises:
        BrokerUnavailable: the broker did not answer within :data:`SEND_RETRY_POLICY`.
    """
    if site is None:
        site = Job.objects.filter(pk=job_id).values_list("site", flat=True).first() or ""
    run_job.apply_async((job_id,), eta=eta, queue=site_queue(site))


def check_broker(timeout: float = 5.0) -> None:
    """Connect to the broker once.

    Raises:
        BrokerUnavailable: it does not answer (or refuses the password).
    """
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)


@app.task(name="glint.jobs.run", bind=True, max_retries=LIMIT_RETRIES)
def run_job(self, job_id: int) -> str | None:
    """Claim job ``job_id`` and run it to its next resting state; returns that state, or None
    when the message was a no-op (the job is not claimable, or stays over its limits)."""
    owner = claims.worker_owner()
    try:
        if not claims.claim_one(job_id, owner, worker_sites()):
            return None
    except claims.OverLimits:
        if self.request.retries < self.max_retries:
            raise self.retry(countdown=LIMIT_RETRY_SECONDS) from None
        log.info("job %s still over its repo limits; the next re-send brings it back", job_id)
        return None
    state = execution.run_claimed(job_id, owner)
    retry_at, site = (
        Job.objects.filter(pk=job_id, state__in=(states.PARTIAL, states.FAILED))
        .values_list("next_attempt_at", "site")
        .first()
    ) or (None, "")
    if retry_at is not None:
        send_job(job_id, eta=retry_at, site=site)
    return state


@app.task(name="glint.jobs.sweep")
def sweep() -> int:
    """Re-queue the jobs whose worker died and send them again; returns how many were re-queued."""
    swept = reconcile.sweep_expired_leases()
    if swept:
        resend()
    return swept


@app.task(name="glint.jobs.resend")
def resend() -> int:
    """Send every claimable job again (duplicates are no-ops); returns how many were sent."""
    jobs = list(
        Job.objects.filter(claims.claimable()).order_by("created", "pk").values_list("pk", "site")
    )
    for job_id, site in jobs:
        send_job(job_id, site=site)
    return len(jobs)


@app.task(name="glint.jobs.remove_orphans")
def remove_orphans() -> int:
    """One round of the orphan reconciler; returns how many images it removed."""
    return len(reconcile.remove_orphans())
