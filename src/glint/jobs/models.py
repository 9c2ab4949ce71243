"""Jobs and their targets: the rows that are the truth about every copy, delete and sync.

A job is created (``glint.jobs.services``), then a dispatcher claims it (``glint.jobs.dispatch``,
``glint.jobs.claims``) and executes it (``glint.jobs.execution``, with its kind's module in
``glint.jobs.kinds``). Everything a worker needs is in these rows and the repos
they point at; a queue message carries the job id only, and no row ever holds a secret (the
repo's credentials are decrypted from the repo row by the worker, never copied here).

Background code writes these rows with ``filter(pk=…, state=<expected>).update(…)`` and checks the
row count (compare-and-set), so a stale object in memory never overwrites a cancel, and a worker
that lost its lease never overwrites the worker that took over. The state machines are drawn in
``glint.jobs.states``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from glint.jobs import states
from glint.jobs.choices import JobKind, JobState, TargetStateChoices

__all__ = ["Counter", "Job", "JobTarget", "Worker"]


class JobQuerySet(models.QuerySet):
    def live(self):
        """Jobs that will still act: queued, running, or waiting for an automatic retry."""
        return self.filter(Q(state__in=states.JOB_ACTIVE_STATES) | Q(next_attempt_at__isnull=False))

    def visible_to(self, user):
        """Jobs of the groups ``user`` may see (members see and act on their group's jobs)."""
        return self.filter(group__in=user.visible_groups())


class Job(models.Model):
    """One thing a person asked for: copy a row to repos, delete copies, sync properties.

    State machine: see ``glint.jobs.states`` (queued → running → done | partial | failed |
    cancelled; sweeper and retries lead back to queued).

    Fields:
        kind: copy, delete, upload or property-sync.
        group: The group whose repos the job works on; members see it.
        requester, requester_dn: Who asked (the DN survives the user's removal).
        source_repo, source_image_id: The copy read from (copy, property-sync); empty for delete.
        image_name, content_key, sha256: The matrix row the job is about (its identity, never a
            cloud id); ``sha256`` once known (the engine computes it while streaming).
        row_key: Digest of (group, kind, name, content key): finds a live job for the same row.
        state, attempts: Where the job is, and how many times a worker started it.
        error_code, error: Why the job did not end done (the first failing target's reason).
        next_attempt_at: When a partial or failed job is retried automatically (transient
            errors only); None when no automatic retry is due.
        cancel_requested: Set by a cancel; the worker stops the engine and cleans up.
        lease_owner, lease_expires: The worker holding the job; an expired lease is swept back
            to queued.
        options: Plain JSON choices: ``visibility``, ``conflict_policy``, ``force``.
        idempotency_key: A caller's own key for a request (the API's ``Idempotency-Key``).
        site: The site whose workers run the job (``glint worker --site``), set when it is
            submitted from its repos' sites; empty: any worker.
    """

    kind = models.CharField(_("kind"), max_length=20, choices=JobKind.choices)
    group = models.ForeignKey("accounts.Group", on_delete=models.CASCADE, related_name="jobs")
    requester = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    requester_dn = models.CharField(_("requested by"), max_length=1024, blank=True)
    source_repo = models.ForeignKey(
        "repos.Repo", null=True, blank=True, on_delete=models.SET_NULL, related_name="source_jobs"
    )
    source_image_id = models.CharField(_("source image id"), max_length=255, blank=True)
    image_name = models.CharField(_("image name"), max_length=255, blank=True)
    content_key = models.CharField(_("content key"), max_length=300, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    row_key = models.CharField(max_length=64, db_index=True, editable=False)
    state = models.CharField(
        _("state"), max_length=20, choices=JobState.choices, default=JobState.QUEUED, db_index=True
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    error = models.TextField(_("error"), blank=True)
    created = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    started = models.DateTimeField(_("started"), null=True, blank=True)
    finished = models.DateTimeField(_("finished"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next automatic retry"), null=True, blank=True)
    cancel_requested = models.DateTimeField(_("cancel requested"), null=True, blank=True)
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires = models.DateTimeField(null=True, blank=True)
    options = models.JSONField(_("options"), default=dict, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    site = models.CharField(_("site"), max_length=100, blank=True, db_index=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return f"job {self.pk} {self.kind} {self.image_name} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state in states.JOB_ACTIVE_STATES or self.next_attempt_at is not None


class JobTarget(models.Model):
    """One repo a job changes, with its own state, progress and error.

    Fields:
        repo, repo_name: The target repo (the name survives the repo's removal).
        state: pending → writing → verifying → done | failed | cancelled.
        image_id: For a copy, the image being written, recorded before a byte is written (so a
            retry or the orphan reconciler can find and delete a half-written one); for a delete,
            the image to delete; for a property sync, the copy to update.
        outcome: How a done target got there (copied, exists, skipped, deleted, gone, synced).
        bytes_done, bytes_total, rate: Progress of the current attempt (rate in bytes/s).
        attempts, next_attempt_at: Tries so far; when the next automatic one is due.
        error_code, error: The last failure (a stable code and a message safe to show).
        warnings: Things a person should know that did not fail the target.
        ran_by: The runner (``Worker.name``) of the target's latest attempt.
    """

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="targets")
    repo = models.ForeignKey(
        "repos.Repo", null=True, on_delete=models.SET_NULL, related_name="job_targets"
    )
    repo_name = models.CharField(_("repo"), max_length=100)
    state = models.CharField(
        _("state"),
        max_length=20,
        choices=TargetStateChoices.choices,
        default=states.TargetState.PENDING.value,
    )
    image_id = models.CharField(_("image id"), max_length=255, blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, blank=True)
    bytes_done = models.BigIntegerField(_("bytes done"), default=0)
    bytes_total = models.BigIntegerField(_("bytes in all"), null=True, blank=True)
    rate = models.FloatField(_("rate (bytes/s)"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next automatic retry"), null=True, blank=True)
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    error = models.TextField(_("error"), blank=True)
    warnings = models.JSONField(_("warnings"), default=list, blank=True)
    started = models.DateTimeField(_("started"), null=True, blank=True)
    finished = models.DateTimeField(_("finished"), null=True, blank=True)
    ran_by = models.CharField(_("ran by"), max_length=200, blank=True)

    class Meta:
        ordering = ["job_id", "repo_name", "pk"]

    def __str__(self) -> str:
        return f"job {self.job_id} → {self.repo_name} ({self.state})"

    @property
    def progress(self) -> int | None:
        """Percent of bytes done, when the total is known."""
        if not self.bytes_total:
            return None
        return min(100, int(self.bytes_done * 100 / self.bytes_total))


class Worker(models.Model):
    """A process that runs jobs (the embedded runner of a ``glint serve``, or a ``glint worker``),
    as it last said it was alive (``glint.jobs.heartbeat``).

    Fields:
        name: ``host:pid`` of an embedded runner, ``glint-PID@host`` of a Celery worker: the
            prefix of the leases it takes (``Job.lease_owner``), so its running jobs are found.
        kind: ``embedded`` or ``celery``.
        sites: The sites whose jobs a Celery worker takes (``glint worker --site``), besides the
            jobs of no site; an embedded runner takes every job.
        started, last_seen: When it started, and its last heartbeat.
    """

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=20)
    host = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("process id"))
    sites = models.JSONField(_("sites"), default=list, blank=True)
    started = models.DateTimeField(_("started"), default=timezone.now)
    last_seen = models.DateTimeField(_("last heartbeat"), default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.kind} worker {self.name}"

    def running_jobs(self):
        return Job.objects.filter(state=states.RUNNING, lease_owner__startswith=f"{self.name}:")


class Counter(models.Model):
    """A Prometheus counter of ``/metrics`` that must never go down (``glint.jobs.counters``).

    Counting current job rows would lose what deleted or pruned jobs did, so the count is kept
    here and raised in the transaction that records what it counts.

    Fields:
        name: The series, with its labels (e.g. ``glint_copied_bytes_total``).
        value: Its total since the table was made.
    """

    name = models.CharField(_("name"), max_length=200, primary_key=True)
    value = models.FloatField(_("value"), default=0)

    def __str__(self) -> str:
        return f"{self.name} {self.value:g}"
