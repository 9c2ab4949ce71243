"""Writing a job's target rows: the engine's progress hooks, outcomes and failures.

Every kind of job records its targets the same way, whether it is one of this app's
(``glint.jobs.execution``) or an app's own kind registered with
:func:`glint.jobs.execution.register_runner` (``glint.transfers.runner`` for uploads). So they
all share these few functions, and a target row means the same thing whoever ran it: a failure
carries its code, a message safe to show and, when the error is transient, the time of its
automatic retry.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import time

from django.conf import settings
from django.utils import timezone

from glint.clouds import CloudError, get_driver
from glint.jobs.models import JobTarget
from glint.replication import (
    ConflictPolicy,
    ContentCache,
    CopyObserver,
    CopyResult,
    CopyTarget,
    TargetState,
)

__all__ = [
    "InternalError",
    "TargetWriter",
    "content_cache",
    "fail_target",
    "fail_targets",
    "failure_values",
    "open_copy_targets",
    "record_outcomes",
    "retry_delay",
    "save_target",
]

log = logging.getLogger(__name__)

#: Seconds between a target's progress writes (the engine reports far more often).
PROGRESS_INTERVAL = 0.5


class InternalError(Exception):
    """An unexpected failure, shown to people without its details (those go to the log)."""

    code = "internal_error"
    retryable = False


def retry_delay(attempts: int) -> float:
    """Seconds before automatic try number ``attempts + 1``: exponential, capped."""
    return min(settings.GLINT_JOB_RETRY_BASE * 2 ** max(0, attempts - 1), settings.GLINT_JOB_RETRY_MAX)


def save_target(target: JobTarget, **values) -> None:
    """Set ``values`` on the row and on the in-memory object the runner keeps using."""
    for name, value in values.items():
        setattr(target, name, value)
    JobTarget.objects.filter(pk=target.pk).update(**values)


def failure_values(target: JobTarget, error: BaseException) -> dict:
    """The row values of a failed target, with an automatic retry if the error is transient."""
    retryable = bool(getattr(error, "retryable", False))
    next_at = None
    if retryable and target.attempts < settings.GLINT_JOB_RETRY_LIMIT:
        next_at = timezone.now() + datetime.timedelta(seconds=retry_delay(target.attempts))
    message = getattr(error, "message", None) or str(error)
    if next_at is None and retryable:
        message += f" (gave up after {target.attempts} attempts)"
    return {"state": TargetState.FAILED.value, "error_code": getattr(error, "code", "error"), "error": message,
            "next_attempt_at": next_at, "finished": timezone.now()}


def fail_target(target: JobTarget, error: BaseException, **values) -> None:
    """Record that ``target`` failed with ``error`` (and any other ``values``)."""
    save_target(target, **values, **failure_values(target, error))


def fail_targets(targets: list[JobTarget], error: BaseException) -> None:
    """Record that every one of ``targets`` failed with ``error`` (e.g. the source is gone)."""
    for target in targets:
        fail_target(target, error)


@functools.cache
def content_cache() -> ContentCache:
    """This process's content cache (settings ``cache_dir``, ``cache_quota_bytes``)."""
    return ContentCache(settings.GLINT_CACHE_DIR, quota_bytes=settings.GLINT_CACHE_QUOTA_BYTES)


class TargetWriter(CopyObserver):
    """The engine's hooks, written to the target rows (called in the worker's own thread)."""

    def __init__(self, targets: dict[str, JobTarget]):
        self.targets = targets
        self.started = time.monotonic()
        self.last_write: dict[str, float] = {}

    def image_created(self, target_key: str, image_id: str) -> None:
        # Recorded before a byte is written: a crash from here on leaves an id to clean up.
        JobTarget.objects.filter(pk=int(target_key)).update(image_id=image_id)
        self.targets[target_key].image_id = image_id

    def state_changed(self, target_key: str, state: TargetState) -> None:
        if state in (TargetState.WRITING, TargetState.VERIFYING):
            JobTarget.objects.filter(pk=int(target_key)).update(state=state.value)

    def progress(self, target_key: str | None, code: str, done: int, total: int | None) -> None:
        if target_key is None or code == "copy.verifying":
            return
        now = time.monotonic()
        if now - self.last_write.get(target_key, 0.0) < PROGRESS_INTERVAL and done != total:
            return
        self.last_write[target_key] = now
        rate = done / max(now - self.started, 1e-3)
        JobTarget.objects.filter(pk=int(target_key)).update(bytes_done=done, bytes_total=total, rate=rate)

    def warning(self, target_key: str | None, message: str) -> None:
        log.info("job target %s: %s", target_key, message)


def open_copy_targets(todo: list[JobTarget], stack: contextlib.ExitStack, *, visibility: str | None,
                      options: dict) -> list[CopyTarget]:
    """The engine's targets for ``todo``, each with a driver of its own closed by ``stack``.

    A target whose repo was removed fails here; the others go on.
    """
    policy = ConflictPolicy(options.get("conflict_policy") or ConflictPolicy.REPORT.value)
    targets = []
    for target in todo:
        if target.repo is None:
            fail_target(target, CloudError("the target repo was removed"))
            continue
        targets.append(CopyTarget(
            key=str(target.pk), driver=stack.enter_context(get_driver(target.repo.connection())),
            visibility=visibility, policy=policy, previous_image_id=target.image_id or None,
        ))
    return targets


def record_outcomes(by_key: dict[str, JobTarget], result: CopyResult) -> None:
    """Store the engine's verdict for each target of a copy (or an upload's fan-out)."""
    for key, outcome in result.targets.items():
        target = by_key[key]
        if outcome.state is TargetState.DONE:
            save_target(target, state=TargetState.DONE.value, outcome=outcome.outcome.value,
                        image_id=outcome.image_id or target.image_id, warnings=outcome.warnings,
                        finished=timezone.now(), error_code="", error="",
                        bytes_done=target.bytes_total or outcome.bytes_written)
        elif outcome.state is TargetState.CANCELLED:
            save_target(target, state=TargetState.CANCELLED.value, outcome="cancelled",
                        warnings=outcome.warnings, finished=timezone.now())
        else:
            fail_target(target, outcome.error or InternalError("no reason"), warnings=outcome.warnings)
