"""Who may take which job: compare-and-set claims, their one-at-a-time transaction, and the
per-repo concurrency limits.

Both dispatchers (``glint.jobs.dispatch``: the threads of ``glint serve``, and the Celery tasks
of ``glint worker`` in ``glint.jobs.celery``) claim through here, so they follow one rule and
neither imports the other. A claim takes the job's lease; ``glint.jobs.execution`` then runs it.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import uuid
from collections import Counter

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from glint.jobs import states
from glint.jobs.heartbeat import worker_name
from glint.jobs.models import Job, JobTarget

__all__ = [
    "OverLimits",
    "claim",
    "claim_one",
    "claimable",
    "serialized_claims",
    "within_limits",
    "worker_owner",
]

#: Key of the PostgreSQL advisory lock taken by :func:`serialized_claims` ("glint" in ASCII).
CLAIM_LOCK_KEY = 0x676C696E74


def worker_owner() -> str:
    """A lease owner name no other worker uses: the runner's name (``heartbeat.worker_name``),
    the process, and a random part."""
    return f"{worker_name()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claimable() -> Q:
    """Jobs a worker may claim now: queued, or waiting for an automatic retry that is due."""
    return Q(state=states.QUEUED) | Q(
        state__in=(states.PARTIAL, states.FAILED), next_attempt_at__lte=timezone.now()
    )


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
    return bool(
        query.update(
            state=states.RUNNING,
            lease_owner=owner,
            lease_expires=now + datetime.timedelta(seconds=settings.GLINT_JOB_LEASE_SECONDS),
            attempts=F("attempts") + 1,
            started=Coalesce("started", now),
            finished=None,
            next_attempt_at=None,
        )
    )


def within_limits(candidates: list[Job], free: int, per_repo: int, per_source: int) -> list[Job]:
    """The first ``free`` of ``candidates`` (in the order given) that fit the concurrency limits.

    A job fits when starting it keeps every repo it reads from under ``per_source`` running jobs
    and every repo it still has to write to under ``per_repo``, counting the jobs running now (in
    any process: the rows say) and those picked before it. A job being cancelled always fits, so
    its clean-up is never stuck behind other work. Three queries.
    """
    busy_sources = Counter(
        Job.objects.filter(state=states.RUNNING)
        .exclude(source_repo=None)
        .values_list("source_repo_id", flat=True)
    )
    busy_targets = Counter(
        JobTarget.objects.filter(job__state=states.RUNNING)
        .exclude(state__in=states.TARGET_FINAL_STATES)
        .values_list("repo_id", flat=True)
    )
    repos_of: dict[int, set[int]] = {}
    for job_id, repo_id in (
        JobTarget.objects.filter(job__in=[j.pk for j in candidates])
        .exclude(state=states.TargetState.DONE.value)
        .values_list("job_id", "repo_id")
    ):
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


def claim_one(job_id: int, owner: str, sites: list[str] | None = None) -> bool:
    """Claim job ``job_id`` for ``owner`` if it is claimable and fits the limits (a dispatcher
    that is handed one job id: ``glint worker``). Returns whether ``owner`` now holds it; False
    when the job is not claimable, another worker won it, or it is a job of a site not in
    ``sites`` (None: any site), which only a worker of that site may run.

    Raises:
        OverLimits: it is claimable, but running it now would exceed a limit.
    """
    with serialized_claims():
        query = Job.objects.filter(claimable(), pk=job_id)
        if sites is not None:
            query = query.filter(site__in=["", *sites])
        job = query.first()
        if job is None:
            return False
        if not within_limits(
            [job], 1, settings.GLINT_JOB_PER_REPO_LIMIT, settings.GLINT_JOB_PER_SOURCE_LIMIT
        ):
            raise OverLimits(f"job {job_id} would exceed a repo's concurrency limit")
        return claim(job, owner)
